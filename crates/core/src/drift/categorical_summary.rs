//! The bounded summary of one categorical feature over a window: counts per category, the
//! reference's categories always counted by name, and at most `max_categories` new ones
//! (later new categories are counted together as overflow).

use std::collections::{BTreeMap, HashMap};

use super::common::{FeatureLayout, SummaryConfig, rate};
use crate::schema::is_missing;

/// Summary of one categorical feature over a window.
#[derive(Debug, Clone)]
pub struct CategoricalSummary {
    pub name: String,
    pub count: u64,
    pub missing: u64,
    pub counts: HashMap<String, u64>,
    /// Categories counted by name beyond the known ones.
    new_categories: usize,
    max_new_categories: usize,
    /// Values of new categories past the cap, counted together.
    pub overflow: u64,
}

impl CategoricalSummary {
    /// An empty summary that counts the layout's known categories by name, and up to the
    /// configuration's `max_categories` new ones.
    pub(super) fn new(layout: &FeatureLayout, config: &SummaryConfig) -> CategoricalSummary {
        CategoricalSummary {
            name: layout.name.clone(),
            count: 0,
            missing: 0,
            counts: layout
                .known_categories
                .iter()
                .map(|c| (c.clone(), 0))
                .collect(),
            new_categories: 0,
            max_new_categories: config.max_categories,
            overflow: 0,
        }
    }

    /// Adds a value (`None` or a missing marker is missing).
    #[inline]
    pub fn push(&mut self, value: Option<&str>) {
        let Some(v) = value.map(str::trim).filter(|v| !is_missing(v)) else {
            self.missing += 1;
            return;
        };
        self.count += 1;
        if let Some(c) = self.counts.get_mut(v) {
            *c += 1;
        } else if self.new_categories < self.max_new_categories {
            self.counts.insert(v.to_owned(), 1);
            self.new_categories += 1;
        } else {
            self.overflow += 1;
        }
    }

    pub fn push_missing(&mut self) {
        self.missing += 1;
    }

    pub fn missing_rate(&self) -> f64 {
        rate(self.missing, self.count + self.missing)
    }

    /// Categories seen at least once, with counts, by name.
    pub fn observed(&self) -> BTreeMap<&str, u64> {
        self.counts
            .iter()
            .filter(|(_, c)| **c > 0)
            .map(|(k, c)| (k.as_str(), *c))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_categories_are_always_counted_and_new_ones_up_to_the_cap() {
        let layout = FeatureLayout {
            known_categories: vec!["a".into(), "b".into()],
            ..FeatureLayout::categorical("colour")
        };
        let config = SummaryConfig {
            max_categories: 2,
            ..SummaryConfig::default()
        };
        let mut s = CategoricalSummary::new(&layout, &config);
        // Two new categories fit (x, y); z comes after the cap. Values are trimmed; a repeat of
        // a new category counted by name is still counted by name.
        for v in ["a", " a ", "x", "y", "z", "x"] {
            s.push(Some(v));
        }
        // Missing: no value, the missing markers, and one counted directly.
        s.push(None);
        s.push(Some(" NA "));
        s.push(Some(""));
        s.push_missing();
        assert_eq!((s.count, s.missing, s.overflow), (6, 4, 1));
        assert_eq!(s.counts.get("b"), Some(&0));
        assert!(!s.counts.contains_key("z"));
        // `b` was never seen: known, but not observed.
        let observed: Vec<(&str, u64)> = s.observed().into_iter().collect();
        assert_eq!(observed, vec![("a", 2), ("x", 2), ("y", 1)]);
        assert_eq!(s.missing_rate(), 0.4);
    }

    #[test]
    fn a_cap_of_zero_pools_every_new_category_into_the_overflow() {
        let layout = FeatureLayout {
            known_categories: vec!["a".into()],
            ..FeatureLayout::categorical("c")
        };
        let config = SummaryConfig {
            max_categories: 0,
            ..SummaryConfig::default()
        };
        let mut s = CategoricalSummary::new(&layout, &config);
        for v in ["a", "b", "c", "b"] {
            s.push(Some(v));
        }
        assert_eq!((s.count, s.overflow), (4, 3));
        assert_eq!(s.counts.len(), 1);
        assert_eq!(s.missing_rate(), 0.0);
    }
}
