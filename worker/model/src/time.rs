//! Times as Prometheus's HTTP API takes and prints them.
//!
//! Input: Unix seconds with an optional fraction (`1709250077.3`) or RFC 3339
//! (`2024-03-01T00:41:17.3Z`, `2024-03-01T02:41:17+02:00`). Output: Prometheus's
//! JSON timestamp form, whole seconds then up to three decimals, written the
//! way Prometheus's `jsonutil.MarshalTimestamp` writes them (`1.5` → `1.500`,
//! `2` → `2`), and sample values in Go's shortest `'f'` form with `NaN`,
//! `+Inf`, `-Inf`.

/// A time that is neither Unix seconds nor RFC 3339.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("cannot parse {0:?} to a valid timestamp")]
pub struct TimeError(pub String);

/// Parses a time parameter into Unix milliseconds (rounded to the nearest ms).
pub fn parse_time_ms(text: &str) -> Result<i64, TimeError> {
    let bad = || TimeError(text.to_string());
    if let Ok(secs) = text.parse::<f64>() {
        if !secs.is_finite() || secs.abs() > 9.2e15 {
            return Err(bad());
        }
        return Ok((secs * 1000.0).round() as i64);
    }
    parse_rfc3339_ms(text).ok_or_else(bad)
}

fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, min, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_ms = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
        // Milliseconds from the first three digits, rounding on the fourth.
        let digits = &s[start..i];
        let mut ms = 0i64;
        for (k, c) in digits.bytes().take(3).enumerate() {
            ms += i64::from(c - b'0') * [100, 10, 1][k];
        }
        if digits.as_bytes().get(3).is_some_and(|c| *c >= b'5') {
            ms += 1;
        }
        frac_ms = ms;
    }
    let offset_secs = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1, 2)?, num(i + 4, 2)?);
            let off = oh * 3600 + om * 60;
            if *sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset_secs;
    Some(secs * 1000 + frac_ms)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 → (year, month 1..=12, day 1..=31), proleptic
/// Gregorian (Howard Hinnant's algorithm; the inverse of `days_from_civil`).
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Writes a timestamp the way Prometheus's JSON API does: `1435781451.781`, `2`, `1.500`.
pub fn format_timestamp_secs(t_ms: i64) -> String {
    let sign = if t_ms < 0 { "-" } else { "" };
    let abs = t_ms.unsigned_abs();
    let (secs, frac) = (abs / 1000, abs % 1000);
    if frac == 0 {
        format!("{sign}{secs}")
    } else {
        format!("{sign}{secs}.{frac:03}")
    }
}

/// Writes a sample value the way Prometheus's JSON API does (Go's
/// `strconv.FormatFloat(v, 'f', -1, 64)`, with `NaN`, `+Inf`, `-Inf`).
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        // Rust's Display is the shortest round-trip form without an exponent,
        // exactly Go's 'f' with precision -1 (`-0` included).
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_unix_and_rfc3339() {
        assert_eq!(parse_time_ms("1709250077.3"), Ok(1_709_250_077_300));
        assert_eq!(parse_time_ms("0"), Ok(0));
        assert_eq!(
            parse_time_ms("2024-03-01T00:41:17.3Z"),
            Ok(1_709_253_677_300)
        );
        assert_eq!(
            parse_time_ms("2024-03-01T02:41:17+02:00"),
            Ok(1_709_253_677_000)
        );
        assert_eq!(parse_time_ms("1970-01-01T00:00:00Z"), Ok(0));
        for bad in [
            "",
            "yesterday",
            "2024-13-01T00:00:00Z",
            "2024-03-01T00:41:17",
            "NaN",
            "inf",
        ] {
            assert!(parse_time_ms(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn formats_like_prometheus_json() {
        assert_eq!(format_timestamp_secs(1_435_781_451_781), "1435781451.781");
        assert_eq!(format_timestamp_secs(1_500), "1.500");
        assert_eq!(format_timestamp_secs(2_000), "2");
        assert_eq!(format_timestamp_secs(-1_005), "-1.005");
        assert_eq!(format_value(1e21), "1000000000000000000000");
        assert_eq!(format_value(0.1), "0.1");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(-0.0), "-0");
    }
}
