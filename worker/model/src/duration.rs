//! Prometheus durations: `1y2w3d4h5m6s7ms`, units in that order, each at most once.
//!
//! As in Prometheus's `model.ParseDuration`, a year is 365 days and a week 7
//! days; `0` alone is allowed; anything else needs a unit.

/// A duration that could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("not a valid duration string: {0:?}")]
pub struct DurationError(pub String);

const UNITS: [(&str, i64); 7] = [
    ("y", 365 * 24 * 3_600_000),
    ("w", 7 * 24 * 3_600_000),
    ("d", 24 * 3_600_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Parses a Prometheus duration into milliseconds.
pub fn parse_duration_ms(text: &str) -> Result<i64, DurationError> {
    let bad = || DurationError(text.to_string());
    if text == "0" {
        return Ok(0);
    }
    if text.is_empty() {
        return Err(bad());
    }
    let mut rest = text;
    let mut next_unit = 0;
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: i64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        // "ms" must be tried before "m".
        let (idx, unit) = UNITS
            .iter()
            .enumerate()
            .filter(|(_, (u, _))| rest.starts_with(u))
            .max_by_key(|(_, (u, _))| u.len())
            .ok_or_else(bad)?;
        if idx < next_unit {
            return Err(bad());
        }
        next_unit = idx + 1;
        rest = &rest[unit.0.len()..];
        total = n
            .checked_mul(unit.1)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    Ok(total)
}

/// Formats milliseconds the way Prometheus prints durations (`1h30m`, `500ms`, `0s`).
pub fn format_duration_ms(mut ms: i64) -> String {
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    if ms < 0 {
        out.push('-');
        ms = -ms;
    }
    for (unit, size) in UNITS {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_durations() {
        assert_eq!(parse_duration_ms("5s"), Ok(5_000));
        assert_eq!(parse_duration_ms("1m30s"), Ok(90_000));
        assert_eq!(parse_duration_ms("1h5ms"), Ok(3_600_005));
        assert_eq!(parse_duration_ms("2w1d"), Ok(15 * 86_400_000));
        assert_eq!(parse_duration_ms("0"), Ok(0));
        for bad in [
            "",
            "5",
            "s",
            "1s1m",
            "1m1m",
            "-1s",
            "1.5s",
            "99999999999999999999s",
        ] {
            assert!(parse_duration_ms(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn formats_like_prometheus() {
        assert_eq!(format_duration_ms(90_000), "1m30s");
        assert_eq!(format_duration_ms(0), "0s");
        assert_eq!(format_duration_ms(86_400_000 * 8), "1w1d");
        assert_eq!(format_duration_ms(1), "1ms");
    }
}
