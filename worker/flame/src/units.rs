//! Value formatting with pprof's rules (its `internal/measurement`
//! package): unit conversion and auto-scaling (`4.72s`, `38.59MB`,
//! `647.80ms`), percentages with at least two significant digits, and Go's
//! `%.2f` / `%5.2g` spellings.
//!
//! Edge cases, as pprof: a value that prints as `0.00` (or `-0.00`) is
//! `0`; a unit no table knows (`count`, `samples`, …) prints the bare
//! number; `i64::MIN` is scaled without overflowing.

/// A unit: its printed name, the aliases it is recognised by, and its size
/// in the category's base unit.
struct Unit {
    name: &'static str,
    aliases: &'static [&'static str],
    factor: f64,
}

/// A family of convertible units (memory, time, GCU) and the unit used
/// when a value cannot be auto-scaled (zero).
struct UnitType {
    default: &'static str,
    default_factor: f64,
    units: &'static [Unit],
}

const UNIT_TYPES: &[UnitType] = &[
    UnitType {
        default: "B",
        default_factor: 1.0,
        units: &[
            Unit {
                name: "B",
                aliases: &["b", "byte"],
                factor: 1.0,
            },
            Unit {
                name: "kB",
                aliases: &["kb", "kbyte", "kilobyte"],
                factor: (1u64 << 10) as f64,
            },
            Unit {
                name: "MB",
                aliases: &["mb", "mbyte", "megabyte"],
                factor: (1u64 << 20) as f64,
            },
            Unit {
                name: "GB",
                aliases: &["gb", "gbyte", "gigabyte"],
                factor: (1u64 << 30) as f64,
            },
            Unit {
                name: "TB",
                aliases: &["tb", "tbyte", "terabyte"],
                factor: (1u64 << 40) as f64,
            },
            Unit {
                name: "PB",
                aliases: &["pb", "pbyte", "petabyte"],
                factor: (1u64 << 50) as f64,
            },
        ],
    },
    UnitType {
        default: "s",
        default_factor: 1e9,
        units: &[
            Unit {
                name: "ns",
                aliases: &["ns", "nanosecond"],
                factor: 1.0,
            },
            Unit {
                name: "us",
                aliases: &["μs", "us", "microsecond"],
                factor: 1e3,
            },
            Unit {
                name: "ms",
                aliases: &["ms", "millisecond"],
                factor: 1e6,
            },
            Unit {
                name: "s",
                aliases: &["s", "sec", "second"],
                factor: 1e9,
            },
            Unit {
                name: "hrs",
                aliases: &["hour", "hr"],
                factor: 3600e9,
            },
        ],
    },
    UnitType {
        default: "GCU",
        default_factor: 1.0,
        units: &[
            Unit {
                name: "n*GCU",
                aliases: &["nanogcu"],
                factor: 1e-9,
            },
            Unit {
                name: "u*GCU",
                aliases: &["microgcu"],
                factor: 1e-6,
            },
            Unit {
                name: "m*GCU",
                aliases: &["milligcu"],
                factor: 1e-3,
            },
            Unit {
                name: "GCU",
                aliases: &["gcu"],
                factor: 1.0,
            },
            Unit {
                name: "k*GCU",
                aliases: &["kilogcu"],
                factor: 1e3,
            },
            Unit {
                name: "M*GCU",
                aliases: &["megagcu"],
                factor: 1e6,
            },
            Unit {
                name: "G*GCU",
                aliases: &["gigagcu"],
                factor: 1e9,
            },
            Unit {
                name: "T*GCU",
                aliases: &["teragcu"],
                factor: 1e12,
            },
            Unit {
                name: "P*GCU",
                aliases: &["petagcu"],
                factor: 1e15,
            },
        ],
    },
];

impl UnitType {
    /// The unit `alias` names: lowercased, and a trailing `s` dropped when
    /// longer than two characters (`Bytes` → `byte`).
    fn sniff(&self, alias: &str) -> Option<&Unit> {
        let lower = alias.to_lowercase();
        let key = if lower.chars().count() > 2 {
            lower.strip_suffix('s').unwrap_or(&lower)
        } else {
            &lower
        };
        self.units.iter().find(|u| u.aliases.contains(&key))
    }

    fn auto_scale(&self, value: f64) -> Option<(f64, &'static str)> {
        let mut best: Option<&Unit> = None;
        for u in self.units {
            if u.factor >= best.map_or(0.0, |b| b.factor) && value / u.factor >= 1.0 {
                best = Some(u);
            }
        }
        best.map(|u| (value / u.factor, u.name))
    }

    fn convert(&self, value: i64, from: &str, to: &str) -> Option<(f64, String)> {
        let from = self.sniff(from)?;
        let v = value as f64 * from.factor;
        if to == "minimum" || to == "auto" {
            if let Some((v, u)) = self.auto_scale(v) {
                return Some((v, u.to_string()));
            }
            return Some((v / self.default_factor, self.default.to_string()));
        }
        match self.sniff(to) {
            Some(t) => Some((v / t.factor, t.name.to_string())),
            None => Some((v / self.default_factor, self.default.to_string())),
        }
    }
}

/// Converts `value` in `from` units to `to` units (`minimum` or `auto`:
/// the largest unit the value is at least 1 of). Returns the value and the
/// unit to print, empty for uninteresting units (`count`, …).
pub fn scale(value: i64, from: &str, to: &str) -> (f64, String) {
    if value < 0 && value.checked_neg().is_some() {
        let (v, u) = scale(-value, from, to);
        return (-v, u);
    }
    for ut in UNIT_TYPES {
        if let Some(r) = ut.convert(value, from, to) {
            return r;
        }
    }
    match to {
        "count" | "sample" | "unit" | "minimum" | "auto" => (value as f64, String::new()),
        _ => (value as f64, to.to_string()),
    }
}

/// `value` (in `from` units) as pprof prints it in `to` units: two
/// decimals, `.00` dropped, then the unit (`4.72s`, `10ms`, `0`).
pub fn scaled_label(value: i64, from: &str, to: &str) -> String {
    let (v, u) = scale(value, from, to);
    let s = format!("{v:.2}");
    let s = s.strip_suffix(".00").unwrap_or(&s);
    if s == "0" || s == "-0" {
        return "0".to_string();
    }
    format!("{s}{u}")
}

/// `value` auto-scaled (`Duration: 15s`).
pub fn label(value: i64, unit: &str) -> String {
    scaled_label(value, unit, "auto")
}

/// `value` as a share of `total`, six characters wide like pprof's
/// (`  100%`, `11.65%`, ` 0.21%`, `0.0021%`).
pub fn percentage(value: i64, total: i64) -> String {
    let ratio = if total != 0 {
        (value as f64 / total as f64).abs() * 100.0
    } else {
        0.0
    };
    if (99.95..=100.05).contains(&ratio) {
        "  100%".to_string()
    } else if ratio >= 1.0 {
        format!("{ratio:5.2}%")
    } else {
        format!("{:>5}%", go_g2(ratio))
    }
}

/// Go's `%.2g` of a finite, non-negative number: two significant digits,
/// trailing zeros dropped, exponent form below 1e-4.
pub fn go_g2(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return if x == 0.0 { "0".into() } else { format!("{x}") };
    }
    // Rust's `{:.1e}` rounds the exact binary value correctly, as Go does.
    let e = format!("{:.1e}", x.abs());
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    let nd = digits.len() as i32;
    let dp = exp + 1;
    let sign = if x < 0.0 { "-" } else { "" };
    let mut eprec = 2;
    if eprec > nd && nd >= dp {
        eprec = nd;
    }
    if exp < -4 || exp >= eprec {
        let mut s = String::from(sign);
        s.push_str(&digits[..1]);
        if nd > 1 {
            s.push('.');
            s.push_str(&digits[1..]);
        }
        let (es, ea) = if exp < 0 { ('-', -exp) } else { ('+', exp) };
        s.push_str(&format!("e{es}{ea:02}"));
        return s;
    }
    // Fixed notation with max(nd - dp, 0) decimals.
    let decimals = (nd - dp).max(0) as usize;
    format!("{sign}{:.*}", decimals, x.abs())
}

/// A Unix time in nanoseconds as pprof's `Time:` header spells it in UTC:
/// `Nov 21, 2026 at 10:47pm (UTC)`.
pub fn format_time_utc(time_nanos: i64) -> String {
    let secs = time_nanos.div_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = emberlens_model::civil_from_days(days);
    let (h, min) = (rem / 3600, (rem % 3600) / 60);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let h12 = match h % 12 {
        0 => 12,
        x => x,
    };
    let ampm = if h < 12 { "am" } else { "pm" };
    let month = MONTHS[((m - 1).clamp(0, 11)) as usize];
    format!("{month} {d}, {y} at {h12}:{min:02}{ampm} (UTC)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_scale_like_pprof() {
        assert_eq!(scaled_label(4_720_000_000, "nanoseconds", "s"), "4.72s");
        assert_eq!(scaled_label(10_000_000, "nanoseconds", "ms"), "10ms");
        assert_eq!(scaled_label(400_000_000, "nanoseconds", "s"), "0.40s");
        assert_eq!(scaled_label(40_464_000, "bytes", "MB"), "38.59MB");
        assert_eq!(scaled_label(0, "nanoseconds", "s"), "0");
        assert_eq!(scaled_label(1234, "count", "count"), "1234");
        assert_eq!(scaled_label(-1, "nanoseconds", "s"), "0");
        assert_eq!(scale(1, "widgets", "widgets").1, "widgets");
        assert_eq!(label(15_000_000_000, "nanoseconds"), "15s");
        assert_eq!(scale(2048, "bytes", "minimum"), (2.0, "kB".to_string()));
        assert_eq!(scale(i64::MIN, "bytes", "B").1, "B");
    }

    #[test]
    fn percentages_use_go_g_below_one() {
        assert_eq!(percentage(1165, 10000), "11.65%");
        assert_eq!(percentage(1, 1), "  100%");
        assert_eq!(percentage(0, 10), "    0%");
        assert_eq!(percentage(5, 1000), "  0.5%");
        assert_eq!(percentage(21, 10000), " 0.21%");
        assert_eq!(percentage(1, 100_000), "0.001%");
        assert_eq!(percentage(1, 10_000_000), "1e-05%");
        assert_eq!(percentage(123, 10_000_000), "0.0012%");
        assert_eq!(go_g2(0.0996), "0.1");
        assert_eq!(go_g2(0.000_012_34), "1.2e-05");
        assert_eq!(percentage(5, 0), "    0%");
    }

    #[test]
    fn time_header_in_utc() {
        // 2026-11-21T22:47:05Z
        assert_eq!(
            format_time_utc(1_795_301_225_000_000_000),
            "Nov 21, 2026 at 10:47pm (UTC)"
        );
        assert_eq!(format_time_utc(0), "Jan 1, 1970 at 12:00am (UTC)");
    }
}
