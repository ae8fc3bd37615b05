//! Progress display: a spinner on stderr for steps that may take over a second. It only draws
//! on a terminal, so pipes and `--json` output stay clean.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Runs `f` under a spinner labelled `what`.
pub fn step<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        bar.set_style(style);
    }
    bar.set_message(what.to_owned());
    // Only show it if the step outlives a second.
    bar.enable_steady_tick(Duration::from_millis(120));
    let out = f();
    bar.finish_and_clear();
    out
}
