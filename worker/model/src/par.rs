//! Data parallelism where there are threads: natively, [`par_map`] spreads
//! independent per-item work (decoding series, evaluating range queries'
//! step ranges) over rayon's pool; in Wasm, where the worker has one
//! thread, it is a plain sequential map. The results are in item order
//! either way, so callers see no difference but time.
//!
//! [`MaybeSync`] / [`MaybeSend`] are `Sync` / `Send` natively and nothing
//! in Wasm, so generic code can call [`par_map`] with the bounds that each
//! target needs (the worker's byte sources hold JS objects and are not
//! `Sync`).

/// `Sync` on native targets, no bound in Wasm.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSync: Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Sync + ?Sized> MaybeSync for T {}
/// `Sync` on native targets, no bound in Wasm.
#[cfg(target_arch = "wasm32")]
pub trait MaybeSync {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSync for T {}

/// `Send` on native targets, no bound in Wasm.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSend: Send {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + ?Sized> MaybeSend for T {}
/// `Send` on native targets, no bound in Wasm.
#[cfg(target_arch = "wasm32")]
pub trait MaybeSend {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSend for T {}

/// Threads [`par_map`] can use: rayon's pool natively, 1 in Wasm.
pub fn threads() -> usize {
    #[cfg(not(target_arch = "wasm32"))]
    return rayon::current_num_threads();
    #[cfg(target_arch = "wasm32")]
    1
}

/// `f` over `items`, results in item order: in parallel natively when there
/// are at least `min_parallel` items (below that, thread hand-offs cost more
/// than they save), sequentially otherwise and always in Wasm.
pub fn par_map<T, R, F>(items: &[T], min_parallel: usize, f: F) -> Vec<R>
where
    T: MaybeSync,
    R: MaybeSend,
    F: Fn(&T) -> R + MaybeSync + MaybeSend,
{
    #[cfg(not(target_arch = "wasm32"))]
    if items.len() >= min_parallel.max(2) && rayon::current_num_threads() > 1 {
        use rayon::prelude::*;
        return items.par_iter().map(f).collect();
    }
    let _ = min_parallel;
    items.iter().map(f).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_item_order_in_parallel_and_sequentially() {
        let items: Vec<u64> = (0..10_000).collect();
        let want: Vec<u64> = items.iter().map(|x| x * x).collect();
        assert_eq!(par_map(&items, 1, |x| x * x), want);
        assert_eq!(par_map(&items, usize::MAX, |x| x * x), want);
        assert!(par_map(&[] as &[u64], 1, |x| *x).is_empty());
    }
}
