//! Drift detection: is the data a model sees now distributed like the data it learned from?
//!
//! - [`special`]: log-gamma, incomplete gamma, chi-square, normal and Kolmogorov tails.
//! - Statistics, each as scipy computes it: [`ks`] (two-sample Kolmogorov-Smirnov),
//!   [`chisquare`], [`ztest`] (two proportions), [`wasserstein`] (W1, normed by the reference
//!   std), [`divergence`] (Jensen-Shannon distance, PSI).
//! - [`policy`]: which test judges a feature, with what threshold (Evidently's default rule,
//!   overridable per feature).
//! - [`reservoir`] (the row sampler) and [`summary`]: bounded summaries of a window of rows.
//! - [`reference`](mod@reference): the reference side, from a model's profile or from reference data.
//! - [`compare`](mod@compare) and [`report`]: window against reference, into a serialisable [`DriftReport`].
//! - [`verdict`]: the verdicts (feature, dataset, prediction, performance drift) worded the
//!   same on every surface.
//!
//! Verdicts follow Evidently's data drift preset so users keep their intuitions; the reference
//! is the artifact's profile (never the training rows) and the window is a bounded summary, so
//! memory does not grow with rows.

pub mod chisquare;
pub mod compare;
pub mod divergence;
pub mod ks;
pub mod policy;
pub mod reference;
pub mod report;
pub mod reservoir;
pub mod special;
pub mod summary;
pub mod verdict;
pub mod wasserstein;
pub mod ztest;

pub use compare::{compare, compare_reference};
pub use policy::{DriftPolicy, FeaturePolicy, StatTest};
pub use reference::{DriftReference, ReferenceFeature};
pub use report::{DriftReport, FeatureDrift, PredictionDrift};
pub use summary::{FeatureLayout, SummaryConfig, WindowSummary};
pub use verdict::Verdict;
