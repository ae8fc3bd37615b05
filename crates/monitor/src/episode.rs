//! Once per episode: a drift kind is announced when it starts drifting and not again until a
//! window without that drift closes the episode, or a new champion starts everything over.

use mend_bus::events::DriftKind;
use serde::{Deserialize, Serialize};

/// The drift kinds the monitor tracks (the event's [`DriftKind`]).
pub type Kind = DriftKind;

/// Which kinds are in an open episode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Episodes {
    pub data: bool,
    pub prediction: bool,
    pub performance: bool,
}

impl Episodes {
    fn flag(&mut self, kind: Kind) -> &mut bool {
        match kind {
            Kind::Data => &mut self.data,
            Kind::Prediction => &mut self.prediction,
            Kind::Performance => &mut self.performance,
        }
    }

    pub fn is_open(&self, kind: Kind) -> bool {
        match kind {
            Kind::Data => self.data,
            Kind::Prediction => self.prediction,
            Kind::Performance => self.performance,
        }
    }

    pub fn open(&mut self, kind: Kind) {
        *self.flag(kind) = true;
    }

    /// Records a verdict; `true` when it starts an episode (the one time to announce it).
    pub fn observe(&mut self, kind: Kind, drifted: bool) -> bool {
        let flag = self.flag(kind);
        let starts = drifted && !*flag;
        *flag = drifted;
        starts
    }

    /// Records drift without a clean verdict to close on (a streaming detector's alarm).
    pub fn alarm(&mut self, kind: Kind) -> bool {
        let flag = self.flag(kind);
        let starts = !*flag;
        *flag = true;
        starts
    }

    /// A new champion: every episode ends.
    pub fn clear(&mut self) {
        *self = Episodes::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announces_once_per_episode() {
        let mut episodes = Episodes::default();
        let verdicts = [false, true, true, true, false, true, true];
        let announced: Vec<bool> = verdicts
            .iter()
            .map(|&drifted| episodes.observe(Kind::Data, drifted))
            .collect();
        assert_eq!(announced, [false, true, false, false, false, true, false]);
        assert!(!episodes.is_open(Kind::Prediction), "kinds are independent");
        assert!(
            !episodes.alarm(Kind::Data),
            "an alarm inside an episode is not news"
        );
        assert!(episodes.alarm(Kind::Performance));
        episodes.clear();
        assert!(
            episodes.observe(Kind::Data, true),
            "a new champion starts over"
        );
    }
}
