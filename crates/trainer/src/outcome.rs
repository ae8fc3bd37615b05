//! How a retrain run ended ([`RunOutcome`]): made by `heal`, read by the flight
//! (retries, alerts), the intake (settling the trigger) and the metrics.

/// How a run ended, for the events that asked for it.
#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome {
    /// The candidate passed the gate and is the champion now.
    Promoted { version: u64 },
    /// The candidate was registered but did not pass the gate (or lost a race).
    Rejected { version: u64, reason: String },
    /// A past version beat the fresh candidate and the champion and is the champion again
    /// (see [`crate::recall`]).
    Recalled { version: u64 },
    /// An earlier attempt of the same events already produced this version.
    Reused { version: u64 },
    /// A run that started after the event happened already covered it.
    Covered,
    /// Nothing to train on; an alert says why.
    Skipped { reason: String },
    /// Given up after retries; an alert says why.
    Failed { reason: String },
}

impl RunOutcome {
    /// `promoted`, `recalled`, `rejected`, `reused`, `covered`, `skipped` or `failed`.
    pub fn name(&self) -> &'static str {
        match self {
            RunOutcome::Promoted { .. } => "promoted",
            RunOutcome::Recalled { .. } => "recalled",
            RunOutcome::Rejected { .. } => "rejected",
            RunOutcome::Reused { .. } => "reused",
            RunOutcome::Covered => "covered",
            RunOutcome::Skipped { .. } => "skipped",
            RunOutcome::Failed { .. } => "failed",
        }
    }

    /// The version the run registered or reused, if any.
    pub fn version(&self) -> Option<u64> {
        match self {
            RunOutcome::Promoted { version }
            | RunOutcome::Recalled { version }
            | RunOutcome::Rejected { version, .. }
            | RunOutcome::Reused { version } => Some(*version),
            _ => None,
        }
    }
}
