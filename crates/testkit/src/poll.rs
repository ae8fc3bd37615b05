//! [`eventually`]: polls a check until it holds or a deadline passes, instead of sleeping a
//! fixed time and hoping.

use std::future::Future;
use std::time::Duration;

/// How long [`eventually`] keeps trying, and how often it looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patience {
    /// The test fails once this has passed without the check holding.
    pub within: Duration,
    /// The pause between two looks.
    pub every: Duration,
}

impl Patience {
    /// Up to `seconds`, looking every 20 ms.
    pub const fn seconds(seconds: u64) -> Patience {
        Patience {
            within: Duration::from_secs(seconds),
            every: Duration::from_millis(20),
        }
    }

    /// The same deadline, looking every `every` instead.
    pub const fn polling_every(self, every: Duration) -> Patience {
        Patience {
            within: self.within,
            every,
        }
    }
}

/// What a check of [`eventually`] answers: `bool` (whether the condition holds) or
/// `Option<T>` (the value it waited for, once it is there).
pub trait Settled {
    /// What [`eventually`] returns once the check holds.
    type Value;

    /// `Some` once the check holds.
    fn settled(self) -> Option<Self::Value>;
}

impl Settled for bool {
    type Value = ();

    fn settled(self) -> Option<()> {
        self.then_some(())
    }
}

impl<T> Settled for Option<T> {
    type Value = T;

    fn settled(self) -> Option<T> {
        self
    }
}

/// Runs `check` until it holds (`true`, or `Some(value)`: the value is returned), pausing
/// `patience.every` between two runs; fails the test, naming `what`, when it still does not
/// hold once `patience.within` has passed. The check always runs at least once.
pub async fn eventually<C, F, Fut>(patience: Patience, what: &str, mut check: F) -> C::Value
where
    C: Settled,
    F: FnMut() -> Fut,
    Fut: Future<Output = C>,
{
    let deadline = tokio::time::Instant::now() + patience.within;
    loop {
        if let Some(value) = check().await.settled() {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {} s",
            patience.within.as_secs_f64()
        );
        tokio::time::sleep(patience.every).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    const QUICK: Patience = Patience::seconds(2).polling_every(Duration::from_millis(1));

    #[tokio::test]
    async fn returns_the_value_once_the_check_yields_it() {
        let runs = AtomicU32::new(0);
        let value = eventually(QUICK, "the third run", || async {
            let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
            (run >= 3).then_some(run * 10)
        })
        .await;
        assert_eq!(value, 30);
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_condition_that_holds_returns_at_once() {
        let runs = AtomicU32::new(0);
        eventually(QUICK, "anything", || async {
            runs.fetch_add(1, Ordering::SeqCst);
            true
        })
        .await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    #[should_panic(expected = "the impossible: not within 0.05 s")]
    async fn a_condition_that_never_holds_fails_naming_it() {
        let patience = Patience {
            within: Duration::from_millis(50),
            every: Duration::from_millis(5),
        };
        eventually(patience, "the impossible", || async { false }).await;
    }
}
