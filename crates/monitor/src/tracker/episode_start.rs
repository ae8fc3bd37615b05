//! Where an announced drift began. An episode's first announcement records its start in the
//! saved episodes; one after a rejection re-armed the episode names that same start, so the
//! retrain it asks for reads every row since the drift began, not only the latest evidence.

use super::Announcement;
use crate::episode::{EpisodeStart, Episodes};

/// Ties an announcement to its episode's start: records it when the episode has none yet,
/// else names it in the announcement's window (dropping the row count, which described the
/// evidence window, not the whole episode).
pub(super) fn anchor(episodes: &mut Episodes, announcement: &mut Announcement) {
    let kind = announcement.event.kind;
    let window = &mut announcement.event.window;
    match episodes.start(kind) {
        Some(start) if window.from_seq != Some(start.from_seq) => {
            window.from_seq = Some(start.from_seq);
            window.from_time_ms = start.from_time_ms;
            // The count described the evidence window, not the whole episode.
            window.rows = None;
        }
        Some(_) => {}
        None => {
            if let Some(from_seq) = window.from_seq {
                let start = EpisodeStart {
                    from_seq,
                    from_time_ms: window.from_time_ms,
                };
                episodes.set_start(kind, start);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::collections::BTreeMap;

    use mend_bus::events::{DataWindow, DriftDetected, DriftKind};

    use super::*;

    fn announcement(kind: DriftKind, window: DataWindow) -> Announcement {
        Announcement {
            id: "evidence".to_owned(),
            event: DriftDetected {
                kind,
                window,
                features: Vec::new(),
                dataset_share: 0.0,
                dataset_drift: false,
                report_id: None,
                champion_version: Some(3),
                metrics: BTreeMap::new(),
            },
        }
    }

    /// Sequences `from_seq..=to_seq`, logged from `from_seq * 10` ms.
    fn window(from_seq: u64, to_seq: u64, rows: u64) -> DataWindow {
        DataWindow {
            from_time_ms: Some(from_seq as i64 * 10),
            ..DataWindow::sequence(from_seq, to_seq, rows)
        }
    }

    #[test]
    fn the_first_announcement_records_the_start() {
        let mut episodes = Episodes::default();
        let mut first = announcement(DriftKind::Data, window(101, 300, 200));
        anchor(&mut episodes, &mut first);
        assert_eq!(first.event.window, window(101, 300, 200), "left as it is");
        assert_eq!(
            episodes.start(DriftKind::Data),
            Some(EpisodeStart {
                from_seq: 101,
                from_time_ms: Some(1_010),
            })
        );
        assert_eq!(episodes.start(DriftKind::Performance), None, "per kind");
    }

    #[test]
    fn a_later_announcement_names_the_recorded_start() {
        let mut episodes = Episodes::default();
        anchor(
            &mut episodes,
            &mut announcement(DriftKind::Data, window(101, 300, 200)),
        );
        // After a re-arm: the new evidence, from the episode's start, without its count.
        let mut again = announcement(DriftKind::Data, window(501, 600, 100));
        anchor(&mut episodes, &mut again);
        assert_eq!(
            again.event.window,
            DataWindow {
                from_seq: Some(101),
                from_time_ms: Some(1_010),
                to_seq: Some(600),
                to_time_ms: None,
                rows: None,
                last_rows: None,
            }
        );
        assert_eq!(again.id, "evidence", "the id is the evidence's");
        // One that already starts there keeps its count.
        let mut same = announcement(DriftKind::Data, window(101, 700, 600));
        anchor(&mut episodes, &mut same);
        assert_eq!(same.event.window, window(101, 700, 600));
        // Another kind's episode has its own start.
        let mut other = announcement(DriftKind::Prediction, window(401, 600, 200));
        anchor(&mut episodes, &mut other);
        assert_eq!(other.event.window, window(401, 600, 200));
        assert_eq!(
            episodes.start(DriftKind::Prediction).map(|s| s.from_seq),
            Some(401)
        );
    }

    #[test]
    fn an_announcement_without_a_start_records_none() {
        let mut episodes = Episodes::default();
        let mut open = announcement(DriftKind::Performance, DataWindow::default());
        anchor(&mut episodes, &mut open);
        assert_eq!(episodes.start(DriftKind::Performance), None);
        assert_eq!(open.event.window, DataWindow::default());
    }
}
