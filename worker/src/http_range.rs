//! A snapshot on a static web host, read with HTTP range requests from the
//! worker (synchronous `XMLHttpRequest`, which workers may use and which the
//! synchronous [`ByteSource`] trait needs), so opening a 2 GB `.tar` by URL
//! downloads only the tar headers and the byte ranges queries touch.
//!
//! [`HttpRangeSource`] makes one range request per read; [`open_url`] puts
//! it behind the worker's [`Paged`] cache, so the TSDB reader's many small
//! reads become a few requests of whole 64 KiB pages, with memory bounded.
//!
//! Edge cases: a server that ignores `Range` (answers 200 with the whole
//! body) is refused with a message saying so rather than downloading the
//! file; a short answer, or a file whose length changed between requests,
//! is an error naming the URL and the range (wasm32 only).

use std::borrow::Cow;
use std::cell::Cell;
use std::rc::Rc;

use emberlens_tsdb::archive::{ArchiveKind, TarFileSet, read_tar_gz, sniff};
use emberlens_tsdb::{ByteSource, MemFileSet, SourceError, TsdbError};
use web_sys::{XmlHttpRequest, XmlHttpRequestResponseType};

use crate::paged::Paged;

/// Requests made and bytes fetched, shared by clones.
#[derive(Default)]
struct Counts {
    requests: Cell<u64>,
    bytes_fetched: Cell<u64>,
}

/// One URL as a random-access byte source: one range request per read.
#[derive(Clone)]
pub struct HttpRangeSource {
    url: String,
    len: u64,
    counts: Rc<Counts>,
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
            counts: Rc::new(Counts::default()),
        })
    }

    /// HTTP requests made so far (the probe excluded).
    pub fn requests(&self) -> u64 {
        self.counts.requests.get()
    }

    /// Bytes downloaded so far (the probe excluded).
    pub fn bytes_fetched(&self) -> u64 {
        self.counts.bytes_fetched.get()
    }
}

impl ByteSource for HttpRangeSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>, SourceError> {
        let end = emberlens_tsdb::source::read_end(offset, len, self.len)
            .map_err(|e| SourceError(format!("{}: {e}", self.url)))?;
        if len == 0 {
            return Ok(Cow::Borrowed(&[]));
        }
        let (status, body, _) = range_request(&self.url, offset, end - 1)?;
        if status != 206 || body.len() != len {
            return Err(SourceError(format!(
                "{}: bytes {offset}-{}: HTTP {status} with {} bytes, expected 206 with {len} (did the file change?)",
                self.url,
                end - 1,
                body.len()
            )));
        }
        self.counts.requests.set(self.counts.requests.get() + 1);
        self.counts
            .bytes_fetched
            .set(self.counts.bytes_fetched.get() + len as u64);
        Ok(Cow::Owned(body))
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
    /// A `.tar`, read in place with range requests through a page cache.
    Tar(TarFileSet<Paged<HttpRangeSource>>),
    /// A `.tar.gz`, downloaded and unpacked into memory (gzip has no random access).
    Unpacked(MemFileSet),
}

/// Opens the snapshot archive at `url`.
pub fn open_url(url: &str) -> Result<UrlSource, TsdbError> {
    let src = Paged::in_cache(
        HttpRangeSource::open(url).map_err(|detail| TsdbError::Read {
            file: url.to_string(),
            detail,
        })?,
        crate::paged::HTTP_PAGE,
        &crate::paged::PageCache::new(crate::paged::SOURCE_CACHE_BYTES),
    );
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
