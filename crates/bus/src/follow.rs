//! Following the bus for as long as a service runs: [`follow_forever`], the resubscribe loop
//! every follower shares (a bus that is down at start, or a consumer that cannot be created, is
//! tried again until shutdown), and [`consumer_name`], the durable name of one replica's
//! consumer.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::bus::MAX_DURABLE_LEN;

/// A subscription that failed is tried again after this long.
pub const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(2);

/// Runs `follow` (subscribe, then consume until `shutdown`) until it returns `Ok` or `shutdown`
/// fires. Each `Err` is logged as a warning, `retrying` its message (say what still covers for
/// the missed events), and `follow` is called again [`RESUBSCRIBE_AFTER`] later.
pub async fn follow_forever<F, Fut, E>(shutdown: CancellationToken, retrying: &str, mut follow: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    loop {
        match follow().await {
            Ok(()) => return,
            Err(error) => tracing::warn!(%error, "{}", retrying),
        }
        tokio::select! {
            () = tokio::time::sleep(RESUBSCRIBE_AFTER) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// The durable consumer name of one replica of `service`: `<service>-<instance>`
/// (`mend-server-pod-7`). Per replica, because replicas sharing a durable name would split the
/// events between them like a work queue.
pub fn consumer_name(service: &str, instance: &str) -> String {
    format!("{service}-{instance}")
}

/// The longest instance name that keeps [`consumer_name`]`(service, instance)` within
/// [`MAX_DURABLE_LEN`].
pub fn max_instance_len(service: &str) -> usize {
    MAX_DURABLE_LEN.saturating_sub(consumer_name(service, "").len())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[test]
    fn names_fit_the_durable_limit() {
        assert_eq!(consumer_name("mend-server", "pod-7"), "mend-server-pod-7");
        let longest = "x".repeat(max_instance_len("mend-monitor"));
        assert_eq!(
            consumer_name("mend-monitor", &longest).len(),
            MAX_DURABLE_LEN
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_subscription_is_retried_until_it_follows() {
        let calls = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        follow_forever(CancellationToken::new(), "retrying", || {
            let call = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if call < 2 {
                    Err("the bus is down")
                } else {
                    Ok(())
                }
            }
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert!(started.elapsed() >= RESUBSCRIBE_AFTER * 2);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_ends_the_retries() {
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        let calls = AtomicU32::new(0);
        follow_forever(shutdown, "retrying", || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>("the bus is down") }
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
