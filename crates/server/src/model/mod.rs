//! Models as served: [`LoadedModel`] (a verified artifact with its flattened preprocessing
//! plan) and [`ModelStore`] (per model a swappable champion and a small version cache).

mod loaded;
mod store;

pub(crate) use loaded::FeaturePlan;
pub use loaded::{LoadError, LoadedModel};
pub use store::{ModelEntry, ModelStore};
