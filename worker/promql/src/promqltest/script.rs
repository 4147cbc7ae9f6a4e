//! Parses promqltest files (being written).
