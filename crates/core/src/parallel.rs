//! Independent per-feature work spread over the machine's cores with scoped std threads (no
//! pool to keep): profiling, building a drift reference and comparing features sort large
//! samples, which dominates on big data and is idle time on the other cores otherwise.

/// `f` applied to every item, results in item order: on every core when `parallel` (callers
/// pass whether the work is big enough to pay for threads) and there is more than one item,
/// else on the calling thread.
pub fn map<T: Sync, R: Send>(items: &[T], parallel: bool, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = if parallel {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(items.len())
    } else {
        1
    };
    if threads <= 1 {
        return items.iter().map(&f).collect();
    }
    let per_thread = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(per_thread)
            .map(|chunk| {
                (
                    chunk,
                    s.spawn(move || chunk.iter().map(f).collect::<Vec<_>>()),
                )
            })
            .collect();
        // A thread that panicked is redone here, so its panic surfaces on the caller's thread.
        handles
            .into_iter()
            .flat_map(|(chunk, h)| h.join().unwrap_or_else(|_| chunk.iter().map(f).collect()))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_item_order_in_both_modes() {
        let items: Vec<u64> = (0..37).collect();
        let squares: Vec<u64> = items.iter().map(|x| x * x).collect();
        assert_eq!(map(&items, true, |x| x * x), squares);
        assert_eq!(map(&items, false, |x| x * x), squares);
        assert!(map(&Vec::<u64>::new(), true, |x| x + 1).is_empty());
    }
}
