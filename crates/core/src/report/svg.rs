//! Inline SVG charts, drawn by hand so a report needs no script or stylesheet from elsewhere.

use std::fmt::Write;

use super::escape::escape;
use crate::drift::report::Distribution;

/// Colour of the reference series.
pub const REFERENCE_COLOR: &str = "#7a8ca3";
/// Colour of the current series.
pub const CURRENT_COLOR: &str = "#e07b39";

const WIDTH: f64 = 520.0;
const HEIGHT: f64 = 220.0;
const MARGIN_LEFT: f64 = 44.0;
const MARGIN_RIGHT: f64 = 10.0;
const MARGIN_TOP: f64 = 10.0;
/// Room under the plot for x labels: a rotated 14-character bin label reaches about 45px
/// below the axis, a level one 14px.
const MARGIN_BOTTOM: f64 = 66.0;
/// A tick character's width at the tick font size (10px), generously: what keeps labels from
/// crossing the chart's edge or each other.
const TICK_CHAR_WIDTH: f64 = 6.0;
/// Characters of a line chart's x label that are kept (the point's tooltip has them all).
const LINE_LABEL_CHARS: usize = 24;
/// Space between two x labels of the line chart.
const LABEL_GAP: f64 = 8.0;

/// Paired bars per bin: reference and current share side by side, each with a tooltip.
pub fn bar_chart(distribution: &Distribution) -> String {
    let bins = distribution.labels.len();
    if bins == 0 {
        return String::from("<p class=\"muted\">no distribution to plot</p>");
    }
    let top = distribution
        .reference
        .iter()
        .chain(&distribution.current)
        .copied()
        .filter(|x| x.is_finite())
        .fold(0.0_f64, f64::max)
        .max(1e-9);
    let plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
    let plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM;
    let slot = plot_w / bins as f64;
    let bar = (slot * 0.4).max(1.0);
    let mut svg = open_svg("reference and current distribution");
    axes(&mut svg, top, plot_w, plot_h, |v| {
        format!("{:.0}%", v * 100.0)
    });
    // Label every bin when few, else about eight evenly spaced ones.
    let every = bins.div_ceil(8).max(1);
    let rotate = distribution.edges.is_none();
    for i in 0..bins {
        let x0 = MARGIN_LEFT + slot * i as f64 + (slot - 2.0 * bar) / 2.0;
        let label = escape(&distribution.labels[i]);
        for (j, (series, color, name)) in [
            (&distribution.reference, REFERENCE_COLOR, "reference"),
            (&distribution.current, CURRENT_COLOR, "current"),
        ]
        .into_iter()
        .enumerate()
        {
            let share = series.get(i).copied().unwrap_or(0.0).max(0.0);
            let h = plot_h * share / top;
            let _ = write!(
                svg,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{} {}: {:.2}%</title></rect>",
                x0 + bar * j as f64,
                MARGIN_TOP + plot_h - h,
                bar,
                h,
                color,
                name,
                label,
                share * 100.0
            );
        }
        if i % every == 0 || (rotate && bins <= 16) {
            let cx = MARGIN_LEFT + slot * (i as f64 + 0.5);
            let cy = MARGIN_TOP + plot_h + 12.0;
            // A rotated label runs left of its bin: no longer than the room there.
            let room = ((cx - 2.0) / (TICK_CHAR_WIDTH * 0.866)).floor().max(2.0) as usize;
            let shown = truncate(
                &distribution.labels[i],
                if rotate { room.min(14) } else { 14 },
            );
            if rotate {
                let _ = write!(
                    svg,
                    "<text x=\"{cx:.1}\" y=\"{cy:.1}\" class=\"tick\" text-anchor=\"end\" transform=\"rotate(-30 {cx:.1} {cy:.1})\">{}</text>",
                    escape(&shown)
                );
            } else {
                let _ = write!(
                    svg,
                    "<text x=\"{cx:.1}\" y=\"{cy:.1}\" class=\"tick\" text-anchor=\"middle\">{}</text>",
                    escape(&shown)
                );
            }
        }
    }
    svg.push_str("</svg>");
    svg
}

/// A line through `(label, value)` points, with an optional dashed baseline.
pub fn line_chart(points: &[(String, f64)], baseline: Option<f64>) -> String {
    let values: Vec<f64> = points
        .iter()
        .map(|p| p.1)
        .chain(baseline)
        .filter(|v| v.is_finite())
        .collect();
    if values.is_empty() {
        return String::from("<p class=\"muted\">no points to plot</p>");
    }
    let (mut lo, mut hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let pad = ((hi - lo) * 0.1).max(0.01);
    lo -= pad;
    hi += pad;
    let plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
    let plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM;
    let x_of = |i: usize| {
        if points.len() <= 1 {
            MARGIN_LEFT + plot_w / 2.0
        } else {
            MARGIN_LEFT + plot_w * i as f64 / (points.len() - 1) as f64
        }
    };
    let y_of = |v: f64| MARGIN_TOP + plot_h * (1.0 - (v - lo) / (hi - lo));
    let mut svg = open_svg("performance over time");
    // Axis with ticks at lo/hi/middle, drawn in value units.
    let _ = write!(
        svg,
        "<line x1=\"{MARGIN_LEFT}\" y1=\"{MARGIN_TOP}\" x2=\"{MARGIN_LEFT}\" y2=\"{:.1}\" class=\"axis\"/><line x1=\"{MARGIN_LEFT}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" class=\"axis\"/>",
        MARGIN_TOP + plot_h,
        MARGIN_TOP + plot_h,
        MARGIN_LEFT + plot_w,
        MARGIN_TOP + plot_h
    );
    for v in [lo + pad, (lo + hi) / 2.0, hi - pad] {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"end\">{:.3}</text>",
            MARGIN_LEFT - 4.0,
            y_of(v) + 3.0,
            v
        );
    }
    if let Some(b) = baseline.filter(|b| b.is_finite()) {
        let _ = write!(
            svg,
            "<line x1=\"{MARGIN_LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" class=\"baseline\"><title>baseline {b:.4}</title></line>",
            MARGIN_LEFT + plot_w,
            y = y_of(b)
        );
    }
    let path: Vec<String> = points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.1.is_finite())
        .map(|(i, p)| format!("{:.1},{:.1}", x_of(i), y_of(p.1)))
        .collect();
    let _ = write!(
        svg,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"{CURRENT_COLOR}\" stroke-width=\"2\"/>",
        path.join(" ")
    );
    for (i, (label, v)) in points.iter().enumerate() {
        if !v.is_finite() {
            continue;
        }
        let _ = write!(
            svg,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{CURRENT_COLOR}\"><title>{}: {:.4}</title></circle>",
            x_of(i),
            y_of(*v),
            escape(label),
            v
        );
    }
    for label in x_labels(points, x_of) {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"middle\">{}</text>",
            label.center,
            MARGIN_TOP + plot_h + 14.0,
            escape(&label.text)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// An x label of the line chart, placed.
#[derive(Debug, Clone, PartialEq)]
struct XLabel {
    center: f64,
    text: String,
}

impl XLabel {
    fn half_width(&self) -> f64 {
        self.text.chars().count() as f64 * TICK_CHAR_WIDTH / 2.0
    }
}

/// The line chart's x labels: each whole (up to [`LINE_LABEL_CHARS`]), under its point but
/// moved inwards where it would cross the chart's edge, and only as many as fit side by side.
/// The newest point is always labelled.
fn x_labels(points: &[(String, f64)], x_of: impl Fn(usize) -> f64) -> Vec<XLabel> {
    let place = |i: usize| {
        let text = truncate(&points[i].0, LINE_LABEL_CHARS);
        let half = text.chars().count() as f64 * TICK_CHAR_WIDTH / 2.0;
        let center = x_of(i).max(half + 2.0).min(WIDTH - half - 2.0);
        XLabel { center, text }
    };
    let finite: Vec<usize> = (0..points.len())
        .filter(|&i| points[i].1.is_finite())
        .collect();
    let Some((&last, rest)) = finite.split_last() else {
        return Vec::new();
    };
    let newest = place(last);
    let limit = newest.center - newest.half_width() - LABEL_GAP;
    let mut labels = Vec::new();
    let mut right = f64::NEG_INFINITY;
    for &i in rest {
        let label = place(i);
        let (from, to) = (
            label.center - label.half_width(),
            label.center + label.half_width(),
        );
        if from >= right + LABEL_GAP && to <= limit {
            right = to;
            labels.push(label);
        }
    }
    labels.push(newest);
    labels
}

fn open_svg(title: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" aria-label=\"{}\">",
        escape(title)
    )
}

fn axes(svg: &mut String, top: f64, plot_w: f64, plot_h: f64, fmt: impl Fn(f64) -> String) {
    let _ = write!(
        svg,
        "<line x1=\"{MARGIN_LEFT}\" y1=\"{MARGIN_TOP}\" x2=\"{MARGIN_LEFT}\" y2=\"{:.1}\" class=\"axis\"/><line x1=\"{MARGIN_LEFT}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" class=\"axis\"/>",
        MARGIN_TOP + plot_h,
        MARGIN_TOP + plot_h,
        MARGIN_LEFT + plot_w,
        MARGIN_TOP + plot_h
    );
    for fraction in [0.0, 0.5, 1.0] {
        let y = MARGIN_TOP + plot_h * (1.0 - fraction);
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"end\">{}</text>",
            MARGIN_LEFT - 4.0,
            y + 3.0,
            fmt(top * fraction)
        );
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut t: String = text.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(n: usize) -> Vec<(String, f64)> {
        (0..n)
            .map(|i| (format!("labels to #{}", 1000 * (i + 1)), 0.9))
            .collect()
    }

    #[test]
    fn line_chart_labels_stay_whole_inside_the_chart_and_apart() {
        for n in [1, 2, 3, 8, 30, 60] {
            let points = points(n);
            let plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
            let labels = x_labels(&points, |i| {
                MARGIN_LEFT + plot_w * i as f64 / (n.max(2) - 1) as f64
            });
            assert!(!labels.is_empty());
            // The newest point is labelled, in full.
            assert_eq!(
                labels.last().map(|l| l.text.as_str()),
                Some(format!("labels to #{}", 1000 * n).as_str())
            );
            for label in &labels {
                assert!(!label.text.contains('…'), "{label:?}");
                assert!(label.center - label.half_width() >= 0.0, "{n}: {label:?}");
                assert!(label.center + label.half_width() <= WIDTH, "{n}: {label:?}");
            }
            for pair in labels.windows(2) {
                let gap = (pair[1].center - pair[1].half_width())
                    - (pair[0].center + pair[0].half_width());
                assert!(gap >= LABEL_GAP, "{n}: overlapping {pair:?}");
            }
        }
    }

    #[test]
    fn the_line_chart_draws_its_labels_in_its_view_box() {
        let svg = line_chart(&points(12), Some(0.9));
        assert!(svg.contains(&format!("viewBox=\"0 0 {WIDTH} {HEIGHT}\"")));
        assert!(svg.contains(">labels to #12000</text>"), "{svg}");
        assert!(!svg.contains("labels to #…"), "{svg}");
    }
}
