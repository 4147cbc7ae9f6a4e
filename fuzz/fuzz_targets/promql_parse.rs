//! The PromQL lexer, parser and type checker must never panic, and a parsed
//! expression must evaluate (over empty storage, at t=0 and as a short range
//! query) without panicking either.
#![no_main]

use emberlens_model::{Matcher, Series, Storage, StorageError};
use libfuzzer_sys::fuzz_target;

struct Empty;

impl Storage for Empty {
    fn select(&self, _: &[Matcher], _: i64, _: i64) -> Result<Vec<Series>, StorageError> {
        Ok(Vec::new())
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(expr) = emberlens_promql::parse(src) {
        let opts = emberlens_promql::EngineOpts::default();
        let _ = emberlens_promql::engine::instant_query_expr(&Empty, &opts, src, &expr, 0);
        let _ = emberlens_promql::engine::range_query_expr(
            &Empty, &opts, src, &expr, 0, 120_000, 60_000,
        );
    }
});
