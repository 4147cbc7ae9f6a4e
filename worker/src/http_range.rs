//! A snapshot on a static web host, read with HTTP range requests from the
//! worker (synchronous `XMLHttpRequest`, which workers may use and which the
//! synchronous [`ByteSource`] trait needs), so opening a 2 GB `.tar` by URL
//! downloads only the tar headers and the byte ranges queries touch.
//!
//! Reads go through a page cache: every request fetches whole 64 KiB pages
//! (the TSDB reader makes many small reads close together: TOC, symbols,
//! postings, series, chunks), and up to [`MAX_CACHED_PAGES`] pages are kept,
//! oldest dropped first, so memory stays bounded.
//!
//! Edge cases: a server that ignores `Range` (answers 200 with the whole
//! body) is refused with a message saying so rather than downloading the
//! file; a short answer, or a file whose length changed between requests,
//! is an error naming the URL and the range (wasm32 only).

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use emberlens_tsdb::archive::{ArchiveKind, TarFileSet, read_tar_gz, sniff};
use emberlens_tsdb::{ByteSource, MemFileSet, SourceError, TsdbError};
use web_sys::{XmlHttpRequest, XmlHttpRequestResponseType};

/// Bytes fetched per request (and the cache's unit).
pub const PAGE: u64 = 64 * 1024;
/// Pages kept in memory (16 MiB).
pub const MAX_CACHED_PAGES: usize = 256;

#[derive(Default)]
struct Cache {
    pages: BTreeMap<u64, Rc<Vec<u8>>>,
    order: VecDeque<u64>,
    requests: u64,
    bytes_fetched: u64,
}

/// One URL as a random-access byte source.
#[derive(Clone)]
pub struct HttpRangeSource {
    url: String,
    len: u64,
    cache: Rc<RefCell<Cache>>,
}

/// The total length from a `Content-Range: bytes a-b/total` header.
fn total_from_content_range(v: &str) -> Option<u64> {
    v.trim()
        .strip_prefix("bytes ")?
        .rsplit_once('/')?
        .1
        .trim()
        .parse()
        .ok()
}

impl HttpRangeSource {
    /// Probes `url` with a one-byte range request to learn its length and
    /// check that the server honours ranges.
    pub fn open(url: &str) -> Result<Self, SourceError> {
        let (status, body, content_range) = range_request(url, 0, 0)?;
        if status == 200 {
            return Err(SourceError(format!(
                "{url}: the server ignored the Range header (answered 200 with {} bytes); \
                 serve the snapshot from a host that supports range requests, or open the file locally",
                body.len()
            )));
        }
        if status != 206 {
            return Err(SourceError(format!("{url}: HTTP {status}")));
        }
        let len = content_range
            .as_deref()
            .and_then(total_from_content_range)
            .ok_or_else(|| {
                SourceError(format!(
                    "{url}: 206 answer without a usable Content-Range header ({content_range:?}); \
                     a cross-origin host must list it in Access-Control-Expose-Headers"
                ))
            })?;
        Ok(HttpRangeSource {
            url: url.to_string(),
            len,
            cache: Rc::new(RefCell::new(Cache::default())),
        })
    }

    /// HTTP requests made so far (the probe excluded).
    pub fn requests(&self) -> u64 {
        self.cache.borrow().requests
    }

    /// Bytes downloaded so far (the probe excluded).
    pub fn bytes_fetched(&self) -> u64 {
        self.cache.borrow().bytes_fetched
    }

    /// Fetches pages `first..=last` in one request and caches them.
    fn fetch(&self, first: u64, last: u64) -> Result<(), SourceError> {
        let start = first * PAGE;
        let end = ((last + 1) * PAGE).min(self.len) - 1;
        let (status, body, _) = range_request(&self.url, start, end)?;
        let want = end - start + 1;
        if status != 206 || body.len() as u64 != want {
            return Err(SourceError(format!(
                "{}: bytes {start}-{end}: HTTP {status} with {} bytes, expected 206 with {want} (did the file change?)",
                self.url,
                body.len()
            )));
        }
        let mut c = self.cache.borrow_mut();
        c.requests += 1;
        c.bytes_fetched += want;
        for (i, page) in (first..=last).enumerate() {
            let lo = i * PAGE as usize;
            let hi = (lo + PAGE as usize).min(body.len());
            if c.pages
                .insert(page, Rc::new(body[lo..hi].to_vec()))
                .is_none()
            {
                c.order.push_back(page);
            }
        }
        Ok(())
    }
}

impl ByteSource for HttpRangeSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>, SourceError> {
        let end = offset
            .checked_add(len as u64)
            .filter(|e| *e <= self.len)
            .ok_or_else(|| {
                SourceError(format!(
                    "{}: read of {len} bytes at {offset} past the end ({} bytes)",
                    self.url, self.len
                ))
            })?;
        if len == 0 {
            return Ok(Cow::Borrowed(&[]));
        }
        let (first, last) = (offset / PAGE, (end - 1) / PAGE);
        if last - first + 1 > (MAX_CACHED_PAGES / 2) as u64 {
            // Too big to cache: fetch exactly the range.
            let (status, body, _) = range_request(&self.url, offset, end - 1)?;
            if status != 206 || body.len() != len {
                return Err(SourceError(format!(
                    "{}: bytes {offset}-{}: HTTP {status} with {} bytes, expected 206 with {len}",
                    self.url,
                    end - 1,
                    body.len()
                )));
            }
            let mut c = self.cache.borrow_mut();
            c.requests += 1;
            c.bytes_fetched += len as u64;
            return Ok(Cow::Owned(body));
        }
        // Make room first, so this read's pages are never the ones evicted
        // (the cache may exceed its bound by at most one read, half its size).
        {
            let mut c = self.cache.borrow_mut();
            while c.order.len() > MAX_CACHED_PAGES {
                if let Some(old) = c.order.pop_front() {
                    c.pages.remove(&old);
                }
            }
        }
        // One request for the run of missing pages.
        let missing: Vec<u64> = {
            let c = self.cache.borrow();
            (first..=last)
                .filter(|p| !c.pages.contains_key(p))
                .collect()
        };
        if let (Some(&lo), Some(&hi)) = (missing.first(), missing.last()) {
            self.fetch(lo, hi)?;
        }
        let c = self.cache.borrow();
        let mut out = Vec::with_capacity(len);
        for p in first..=last {
            let page = c.pages.get(&p).ok_or_else(|| {
                SourceError(format!(
                    "{}: read of {len} bytes at {offset} spans more than the page cache holds",
                    self.url
                ))
            })?;
            let page_start = p * PAGE;
            let lo = offset.saturating_sub(page_start) as usize;
            let hi = ((end - page_start) as usize).min(page.len());
            out.extend_from_slice(page.get(lo..hi).unwrap_or_default());
        }
        if out.len() != len {
            return Err(SourceError(format!(
                "{}: read of {len} bytes at {offset} got {}",
                self.url,
                out.len()
            )));
        }
        Ok(Cow::Owned(out))
    }
}

/// One synchronous ranged GET: status, body, `Content-Range`.
fn range_request(
    url: &str,
    start: u64,
    end: u64,
) -> Result<(u16, Vec<u8>, Option<String>), SourceError> {
    let err = |what: &str, e: wasm_bindgen::JsValue| {
        SourceError(format!("{url}: bytes {start}-{end}: {what}: {e:?}"))
    };
    let xhr = XmlHttpRequest::new().map_err(|e| err("XMLHttpRequest", e))?;
    xhr.open_with_async("GET", url, false)
        .map_err(|e| err("open", e))?;
    // Windows may not set responseType on synchronous requests; workers may.
    xhr.set_response_type(XmlHttpRequestResponseType::Arraybuffer);
    xhr.set_request_header("Range", &format!("bytes={start}-{end}"))
        .map_err(|e| err("setRequestHeader", e))?;
    xhr.send().map_err(|e| err("network error", e))?;
    let status = xhr.status().map_err(|e| err("status", e))?;
    let response = xhr.response().map_err(|e| err("response", e))?;
    let body = if response.is_null() || response.is_undefined() {
        Vec::new()
    } else {
        js_sys::Uint8Array::new(&response).to_vec()
    };
    let content_range = xhr
        .get_response_header("Content-Range")
        .map_err(|e| err("Content-Range", e))?;
    Ok((status, body, content_range))
}

/// A snapshot opened by URL.
pub enum UrlSource {
    /// A `.tar`, read in place with range requests.
    Tar(TarFileSet<HttpRangeSource>),
    /// A `.tar.gz`, downloaded and unpacked into memory (gzip has no random access).
    Unpacked(MemFileSet),
}

/// Opens the snapshot archive at `url`.
pub fn open_url(url: &str) -> Result<UrlSource, TsdbError> {
    let src = HttpRangeSource::open(url).map_err(|detail| TsdbError::Read {
        file: url.to_string(),
        detail,
    })?;
    match sniff(&src) {
        ArchiveKind::Tar => Ok(UrlSource::Tar(TarFileSet::open(url, src)?)),
        ArchiveKind::TarGz => Ok(UrlSource::Unpacked(read_tar_gz(
            url,
            &src,
            crate::blob::MAX_TAR_GZ_BYTES,
        )?)),
        ArchiveKind::Unknown => Err(TsdbError::Unsupported {
            file: url.to_string(),
            what: "a snapshot URL must name a .tar or .tar.gz archive".into(),
        }),
    }
}
