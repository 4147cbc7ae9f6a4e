//! Prometheus byte sizes (`body_size_limit`): `alecthomas/units`'s
//! `ParseBase2Bytes`, where every multiple is a power of 1024.
//!
//! Accepted units: `B`, `KB`/`KiB`, `MB`/`MiB`, `GB`/`GiB`, `TB`/`TiB`,
//! `PB`/`PiB`, `EB`/`EiB`; a number may have a fraction (`1.5MB`) and
//! components add up (`1GB512MB`); `0` alone needs no unit. A negative size
//! is rejected (Prometheus would take it as "no limit" by accident).

/// A byte size that could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error(
    "not a valid byte size: {0:?} (want a number and a unit: B, KB, MB, GB, TB, PB, EB, or KiB, MiB, ...)"
)]
pub struct ByteSizeError(pub String);

fn unit_bytes(unit: &str) -> Option<f64> {
    let power = match unit {
        "B" => 0,
        "KB" | "KiB" => 1,
        "MB" | "MiB" => 2,
        "GB" | "GiB" => 3,
        "TB" | "TiB" => 4,
        "PB" | "PiB" => 5,
        "EB" | "EiB" => 6,
        _ => return None,
    };
    Some(1024f64.powi(power))
}

/// Parses a Prometheus byte size into bytes.
pub fn parse_byte_size(text: &str) -> Result<u64, ByteSizeError> {
    let bad = || ByteSizeError(text.to_string());
    let s = text.strip_prefix('+').unwrap_or(text);
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(bad());
    }
    let mut rest = s;
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        let num = &rest[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(bad());
        }
        let n: f64 = num.parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .bytes()
            .take_while(|b| !(b.is_ascii_digit() || *b == b'.'))
            .count();
        let unit = unit_bytes(&rest[..unit_len]).ok_or_else(bad)?;
        rest = &rest[unit_len..];
        total += n * unit;
    }
    if !total.is_finite() || total >= u64::MAX as f64 {
        return Err(bad());
    }
    // Truncates like Go's int64(f).
    Ok(total as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_base2_units() {
        assert_eq!(parse_byte_size("0"), Ok(0));
        assert_eq!(parse_byte_size("10MB"), Ok(10 << 20));
        assert_eq!(parse_byte_size("10MiB"), Ok(10 << 20));
        assert_eq!(parse_byte_size("1.5KiB"), Ok(1536));
        assert_eq!(parse_byte_size("1GB512MB"), Ok((1 << 30) + (512 << 20)));
        assert_eq!(parse_byte_size("100B"), Ok(100));
        for bad in [
            "",
            "100",
            "10mb",
            "-1MB",
            "1.2.3MB",
            "MB",
            ".MB",
            "1ZB",
            "99999999EB",
        ] {
            assert!(parse_byte_size(bad).is_err(), "{bad:?} should fail");
        }
    }
}
