//! Once per episode: a drift kind is announced when it starts drifting and not again until a
//! window without that drift closes the episode, or a new champion starts everything over.
//!
//! One exception: when the retrain an episode asked for is rejected (`model.rejected`), the
//! champion keeps serving while the drift goes on, and nothing else would ever ask again. So
//! a rejection re-arms the open episodes: the next verdict that still shows the drift
//! announces it once more, naming the episode's original start, so the trainer again reads
//! every row since the drift began.

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
    /// Open episodes a rejected retrain re-armed: announced again by their next drifted
    /// verdict.
    #[serde(default)]
    pub rearmed: Flags,
    /// Where each open episode began: the start its first announcement named.
    #[serde(default)]
    pub starts: Starts,
}

/// One flag per drift kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flags {
    pub data: bool,
    pub prediction: bool,
    pub performance: bool,
}

impl Flags {
    fn flag(&mut self, kind: Kind) -> &mut bool {
        match kind {
            Kind::Data => &mut self.data,
            Kind::Prediction => &mut self.prediction,
            Kind::Performance => &mut self.performance,
        }
    }
}

/// The start of one open episode, as its first announcement named it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpisodeStart {
    pub from_seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_time_ms: Option<i64>,
}

/// One start per drift kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Starts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<EpisodeStart>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<EpisodeStart>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub performance: Option<EpisodeStart>,
}

impl Starts {
    fn start(&mut self, kind: Kind) -> &mut Option<EpisodeStart> {
        match kind {
            Kind::Data => &mut self.data,
            Kind::Prediction => &mut self.prediction,
            Kind::Performance => &mut self.performance,
        }
    }
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

    /// Records a verdict; `true` when it starts an episode, or continues one a rejection
    /// re-armed (the times to announce it).
    pub fn observe(&mut self, kind: Kind, drifted: bool) -> bool {
        if !drifted {
            self.close(kind);
            return false;
        }
        self.alarm(kind)
    }

    /// Records drift without a clean verdict to close on (a streaming detector's alarm).
    pub fn alarm(&mut self, kind: Kind) -> bool {
        let flag = self.flag(kind);
        let starts = !*flag;
        *flag = true;
        let rearmed = std::mem::take(self.rearmed.flag(kind));
        starts || rearmed
    }

    fn close(&mut self, kind: Kind) {
        *self.flag(kind) = false;
        *self.rearmed.flag(kind) = false;
        *self.starts.start(kind) = None;
    }

    /// A retrain was rejected: every open episode is announced again by its next drifted
    /// verdict (once, however many rejections come before it). Returns the kinds re-armed.
    pub fn rearm(&mut self) -> Vec<Kind> {
        let mut rearmed = Vec::new();
        for kind in [Kind::Data, Kind::Prediction, Kind::Performance] {
            if self.is_open(kind) {
                *self.rearmed.flag(kind) = true;
                rearmed.push(kind);
            }
        }
        rearmed
    }

    /// Where the open episode of `kind` began, if its announcement recorded it.
    pub fn start(&self, kind: Kind) -> Option<EpisodeStart> {
        match kind {
            Kind::Data => self.starts.data,
            Kind::Prediction => self.starts.prediction,
            Kind::Performance => self.starts.performance,
        }
    }

    /// Records where the open episode of `kind` began (its first announcement's start).
    pub fn set_start(&mut self, kind: Kind, start: EpisodeStart) {
        *self.starts.start(kind) = Some(start);
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

    #[test]
    fn a_rejection_rearms_open_episodes_once() {
        let mut episodes = Episodes::default();
        assert!(
            episodes.rearm().is_empty(),
            "nothing open, nothing re-armed"
        );
        assert!(episodes.observe(Kind::Data, true));
        episodes.set_start(
            Kind::Data,
            EpisodeStart {
                from_seq: 7,
                from_time_ms: None,
            },
        );
        assert_eq!(episodes.rearm(), [Kind::Data]);
        assert_eq!(episodes.rearm(), [Kind::Data], "two rejections, one re-arm");
        assert!(
            episodes.observe(Kind::Data, true),
            "the drift goes on: announced again"
        );
        assert_eq!(episodes.start(Kind::Data).map(|s| s.from_seq), Some(7));
        assert!(!episodes.observe(Kind::Data, true), "and only once");
        episodes.rearm();
        assert!(
            !episodes.observe(Kind::Data, false),
            "a clean verdict ends the episode"
        );
        assert_eq!(episodes.start(Kind::Data), None);
        assert!(episodes.observe(Kind::Data, true), "a new episode");
        assert!(
            !episodes.observe(Kind::Data, true),
            "the re-arm ended with its episode"
        );
        episodes.rearm();
        assert!(
            episodes.alarm(Kind::Data),
            "an alarm continuing a re-armed episode announces it"
        );
    }
}
