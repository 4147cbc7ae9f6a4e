//! `emberlens tsdb ls|dump`: the layouts of `promtool tsdb list` and
//! `promtool tsdb dump`, so scripts and eyes used to promtool read ours.

use std::fmt::Write as _;

use emberlens_model::{Matcher, format_go_g, labels_go_string};
use emberlens_tsdb::{ByteSource, Db};

/// `promtool tsdb list [-r]`: one line per block, tab-aligned like Go's
/// `tabwriter` (minimum cell width 13, padding 2).
pub fn list<S: ByteSource + Clone>(db: &Db<S>, human: bool) -> String {
    let mut rows = vec![vec![
        "BLOCK ULID".to_string(),
        "MIN TIME".into(),
        "MAX TIME".into(),
        "DURATION".into(),
        "NUM SAMPLES".into(),
        "NUM CHUNKS".into(),
        "NUM SERIES".into(),
        "SIZE".into(),
    ]];
    for b in db.blocks() {
        let m = b.meta();
        let bytes = b.size_bytes();
        rows.push(vec![
            m.ulid.clone(),
            time_cell(m.min_time, human),
            time_cell(m.max_time, human),
            go_duration_ms(m.max_time - m.min_time),
            m.stats.num_samples.to_string(),
            m.stats.num_chunks.to_string(),
            m.stats.num_series.to_string(),
            if human {
                base2_bytes(bytes)
            } else {
                bytes.to_string()
            },
        ]);
    }
    tabwrite(&rows, 13, 2)
}

fn time_cell(ms: i64, human: bool) -> String {
    if !human {
        return ms.to_string();
    }
    // Go: time.Unix(ms/1000, 0).UTC().String()
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, mo, d) = emberlens_model::civil_from_days(days);
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02} +0000 UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Go's `time.Duration.String()` for a duration in milliseconds.
pub fn go_duration_ms(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let neg = ms < 0;
    let ms = ms.unsigned_abs();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if ms < 1000 {
        out.push_str(&format!("{ms}ms"));
        return out;
    }
    let (h, m) = (ms / 3_600_000, ms % 3_600_000 / 60_000);
    let (s, frac) = (ms % 60_000 / 1000, ms % 1000);
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if h > 0 || m > 0 {
        let _ = write!(out, "{m}m");
    }
    let _ = write!(out, "{s}");
    if frac > 0 {
        let f = format!("{frac:03}");
        let _ = write!(out, ".{}", f.trim_end_matches('0'));
    }
    out.push('s');
    out
}

/// `units.Base2Bytes(n).String()` of the alecthomas/units package: `951KiB882B`.
fn base2_bytes(mut n: u64) -> String {
    const UNITS: [(&str, u64); 6] = [
        ("EiB", 1 << 60),
        ("PiB", 1 << 50),
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    if n == 0 {
        return "0B".into();
    }
    let mut out = String::new();
    for (name, size) in UNITS {
        if n >= size {
            let _ = write!(out, "{}{name}", n / size);
            n %= size;
        }
    }
    if n > 0 {
        let _ = write!(out, "{n}B");
    }
    out
}

/// Go's `text/tabwriter` with `minwidth`, `padding`, space padding, no flags:
/// every column but the last is padded to its widest cell plus `padding`.
fn tabwrite(rows: &[Vec<String>], minwidth: usize, padding: usize) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max((c.chars().count() + padding).max(minwidth));
        }
    }
    let mut out = String::new();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                out.push_str(c);
            } else {
                out.push_str(c);
                out.push_str(&" ".repeat(widths[i] - c.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

/// `promtool tsdb dump`: one line per sample, `{labels} value timestamp_ms`,
/// series in label order, samples in time order. Native-histogram samples
/// print the histogram as Prometheus's `FloatHistogram.String()` does (the
/// layout of Prometheus 3's promtool; 2.42's skips histograms, so that part
/// has no promtool to compare with here).
pub fn dump<S: ByteSource + Clone>(
    db: &Db<S>,
    matchers: &[Matcher],
    min_t: i64,
    max_t: i64,
    out: &mut impl std::io::Write,
) -> Result<(), DumpError> {
    for series in db.select_series(matchers, min_t, max_t)? {
        let labels = labels_go_string(&series.labels);
        let mut hists = series.histograms.iter().peekable();
        for s in &series.samples {
            while let Some(h) = hists.next_if(|h| h.t_ms < s.t_ms) {
                writeln!(out, "{labels} {} {}", h.h, h.t_ms)?;
            }
            writeln!(out, "{labels} {} {}", format_go_g(s.v), s.t_ms)?;
        }
        for h in hists {
            writeln!(out, "{labels} {} {}", h.h, h.t_ms)?;
        }
    }
    Ok(())
}

/// Why a dump stopped.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// The data could not be read.
    #[error(transparent)]
    Tsdb(#[from] emberlens_tsdb::TsdbError),
    /// Writing the output failed.
    #[error("writing the dump: {0}")]
    Io(#[from] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration_ms(601_388), "10m1.388s");
        assert_eq!(go_duration_ms(7_200_000), "2h0m0s");
        assert_eq!(go_duration_ms(500), "500ms");
        assert_eq!(go_duration_ms(21_585_000), "5h59m45s");
    }

    #[test]
    fn base2_sizes() {
        assert_eq!(base2_bytes(951 * 1024 + 882), "951KiB882B");
        assert_eq!(base2_bytes(1 << 20), "1MiB");
    }

    #[test]
    fn human_times() {
        assert_eq!(
            time_cell(1_795_301_193_122, true),
            "2026-11-21 22:46:33 +0000 UTC"
        );
        assert_eq!(time_cell(1_795_301_193_122, false), "1795301193122");
    }
}
