//! Self-contained HTML drift reports: one page, no external assets (inline CSS and SVG), so a
//! report can be mailed, archived or served as it is.
//!
//! - [`html`](mod@html): the page (summary, per-feature table, prediction drift, distribution plots,
//!   optional performance over time).
//! - [`svg`]: the inline charts: paired bar charts of reference vs current shares, and a line
//!   chart.
//! - [`escape`]: HTML escaping of everything that comes from data (names, categories).

pub mod escape;
pub mod html;
pub mod svg;

pub use html::{PageOptions, html};
