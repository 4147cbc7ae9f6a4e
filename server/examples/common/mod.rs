//! What the memory examples share: reading this process's memory figures
//! and the numeric command-line arguments.

/// A `/proc/self/status` field in KiB (`VmRSS:`, `VmHWM:`), 0 if unreadable.
pub fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The command line's numeric arguments: `(first or a, second or b)`.
pub fn two_numbers(a: u64, b: u64) -> (u64, u64) {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    (
        args.first().copied().unwrap_or(a),
        args.get(1).copied().unwrap_or(b),
    )
}
