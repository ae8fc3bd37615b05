//! mend-worlds: seeded synthetic classification data that drifts on cue, for tests, benchmarks,
//! the demos and `mend synth`.
//!
//! - [`world`]: the shape of a world ([`SyntheticSpec`]), its seeded ground truth
//!   ([`Generator`]), the [`Regime`]s that bend it (covariate shift, an abrupt flip, a rotating
//!   boundary; [`HalfTurn`] for the benches' gradual turns) and the rows drawn ([`Sample`]).
//! - [`export`]: those rows as a CSV-like table, CSV text, or data-log rows and labels.

pub mod export;
pub mod world;

pub use export::{fmt, table_to_csv};
pub use world::{Generator, HalfTurn, Regime, Sample, SyntheticSpec};
