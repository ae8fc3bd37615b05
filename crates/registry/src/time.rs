//! Wall-clock time as the registry records it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the unix epoch; 0 if the clock is before 1970 (never in practice).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
