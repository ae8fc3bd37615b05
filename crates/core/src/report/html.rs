//! The drift report page.

use std::fmt::Write;

use super::escape::escape;
use super::svg::{CURRENT_COLOR, REFERENCE_COLOR, bar_chart, line_chart};
use crate::drift::report::{DriftReport, FeatureDrift, PredictionDrift};
use crate::drift::verdict::Verdict;
use crate::schema::FeatureKind;

/// What the page shows beyond the report itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct PageOptions<'a> {
    pub title: &'a str,
    /// A line under the title: what was compared with what, when.
    pub subtitle: Option<&'a str>,
    /// Performance over time as `(window, accuracy)`; the chart is left out when empty.
    pub performance: &'a [(String, f64)],
    /// The accuracy to compare with (the champion's holdout accuracy), drawn dashed.
    pub performance_baseline: Option<f64>,
    /// The verdicts the page opens with, one line each (the monitor's: its alarm and
    /// performance drift too). `None`: the report's own, [`DriftReport::verdicts`]. Whoever
    /// prints a report's verdicts elsewhere prints these same lines.
    pub verdicts: Option<&'a [Verdict]>,
}

const STYLE: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 10px}
.muted{color:#6b7685}.sub{margin:0 0 16px}
.verdict{padding:6px 12px;border-radius:6px;font-weight:600;margin:0 0 6px}
.bad{background:#fde2e1;color:#9b1c1c}.good{background:#dff3e4;color:#1f6b37}
.unmeasured{background:#eef0f3;color:#4b5563}
.summary{background:#fff;border:1px solid #e2e5ea;border-radius:8px;padding:16px}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #e2e5ea}
th,td{padding:6px 8px;border-bottom:1px solid #eef0f3;text-align:left;vertical-align:top}
th{background:#f0f2f5;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.drifted td:first-child{border-left:3px solid #d9534f}
.tag{padding:1px 6px;border-radius:4px;font-size:12px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(540px,1fr));gap:14px}
.card{background:#fff;border:1px solid #e2e5ea;border-radius:8px;padding:12px}
.card h3{font-size:15px;margin:0 0 6px}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px;vertical-align:middle}
svg .axis{stroke:#9aa3ae;stroke-width:1}svg .tick{font-size:10px;fill:#5b6573}
svg .baseline{stroke:#1f6b37;stroke-dasharray:5 4;stroke-width:1.5}
";

/// Renders a drift report as one self-contained HTML page.
pub fn html(report: &DriftReport, page: &PageOptions<'_>) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let title = if page.title.is_empty() {
        "Drift report"
    } else {
        page.title
    };
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{}</title><style>{STYLE}</style></head><body><main>",
        escape(title)
    );
    let _ = write!(out, "<h1>{}</h1>", escape(title));
    if let Some(sub) = page.subtitle {
        let _ = write!(out, "<p class=\"muted sub\">{}</p>", escape(sub));
    }
    let own;
    let verdicts = match page.verdicts {
        Some(verdicts) => verdicts,
        None => {
            own = report.verdicts();
            own.as_slice()
        }
    };
    summary(&mut out, report, verdicts);
    feature_table(&mut out, report);
    if let Some(prediction) = &report.prediction {
        prediction_section(&mut out, prediction);
    }
    if !page.performance.is_empty() {
        out.push_str("<h2>Performance over time</h2><div class=\"card\">");
        out.push_str(&line_chart(page.performance, page.performance_baseline));
        if let Some(b) = page.performance_baseline {
            let _ = write!(
                out,
                "<p class=\"muted\">accuracy per window; dashed: baseline {b:.4}</p>"
            );
        }
        out.push_str("</div>");
    }
    distributions(&mut out, report);
    out.push_str("</main></body></html>\n");
    out
}

/// The verdicts, one line each, worded exactly as the CLI prints them.
fn summary(out: &mut String, report: &DriftReport, verdicts: &[Verdict]) {
    out.push_str("<div class=\"summary\">");
    for verdict in verdicts {
        let class = match verdict.drifted {
            Some(true) => "bad",
            Some(false) => "good",
            None => "unmeasured",
        };
        let _ = write!(
            out,
            "<p class=\"verdict {class}\">{}</p>",
            escape(&verdict.line())
        );
    }
    let _ = write!(
        out,
        "<p class=\"muted\">reference: {} rows · current: {} rows</p></div>",
        report.reference_rows, report.current_rows
    );
}

fn feature_table(out: &mut String, report: &DriftReport) {
    out.push_str(
        "<h2>Features</h2><table><thead><tr><th>feature</th><th>kind</th><th>test</th>\
         <th>score</th><th>threshold</th><th>feature drift</th><th>PSI</th><th>JS</th>\
         <th>missing (ref → cur)</th><th>notes</th></tr></thead><tbody>",
    );
    for (i, f) in report.features.iter().enumerate() {
        let drift = if f.ignored {
            "<span class=\"tag\">ignored</span>".to_owned()
        } else if f.drifted {
            "<span class=\"tag bad\">drifted</span>".to_owned()
        } else if f.score.is_some() {
            "<span class=\"tag good\">ok</span>".to_owned()
        } else {
            "<span class=\"tag\">not tested</span>".to_owned()
        };
        let mut notes: Vec<String> = f.notes.iter().map(|n| escape(n)).collect();
        if let Some(u) = &f.unseen {
            let names: Vec<String> = u.top.iter().take(5).map(|(c, _)| escape(c)).collect();
            notes.insert(
                0,
                format!(
                    "{} unseen categor{} ({:.1}% of values): {}",
                    u.distinct,
                    if u.distinct == 1 { "y" } else { "ies" },
                    u.share * 100.0,
                    names.join(", ")
                ),
            );
        }
        let _ = write!(
            out,
            "<tr class=\"{}\"><td><a href=\"#f-{i}\">{}</a></td><td>{}</td><td>{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td>{drift}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.1}% → {:.1}%</td><td>{}</td></tr>",
            if f.drifted { "drifted" } else { "" },
            escape(&f.name),
            kind_name(f.kind),
            f.test.map(|t| t.label()).unwrap_or("-"),
            number(f.score),
            if f.test.is_some() {
                number(Some(f.threshold))
            } else {
                "-".into()
            },
            number(f.psi),
            number(f.jensen_shannon),
            f.reference.missing_rate * 100.0,
            f.current.missing_rate * 100.0,
            notes.join("<br>")
        );
    }
    out.push_str("</tbody></table>");
}

fn prediction_section(out: &mut String, p: &PredictionDrift) {
    let _ = write!(
        out,
        "<h2>Prediction drift</h2><p>{} predictions; drift when the Jensen-Shannon distance of a \
         class's probability histogram is at least {:.2}.</p><div class=\"cards\">",
        p.rows, p.threshold
    );
    for c in &p.classes {
        let _ = write!(
            out,
            "<div class=\"card\"><h3>P({}) <span class=\"muted\">JS {} · PSI {} · mean {:.3} → {:.3}</span></h3>{}{}</div>",
            escape(&c.class),
            number(c.jensen_shannon),
            number(c.psi),
            c.reference_mean,
            c.current_mean,
            legend(),
            bar_chart(&c.distribution)
        );
    }
    out.push_str("</div>");
}

fn distributions(out: &mut String, report: &DriftReport) {
    out.push_str("<h2>Distributions</h2><div class=\"cards\">");
    for (i, f) in report.features.iter().enumerate() {
        let _ = write!(
            out,
            "<div class=\"card\" id=\"f-{i}\"><h3>{} {}</h3>{}{}{}</div>",
            escape(&f.name),
            verdict_tag(f),
            side_line(f),
            legend(),
            bar_chart(&f.distribution)
        );
    }
    out.push_str("</div>");
}

fn verdict_tag(f: &FeatureDrift) -> &'static str {
    if f.drifted {
        "<span class=\"tag bad\">drifted</span>"
    } else {
        ""
    }
}

fn side_line(f: &FeatureDrift) -> String {
    match (f.reference.mean, f.current.mean) {
        (Some(a), Some(b)) => format!(
            "<p class=\"muted\">mean {} → {} · std {} → {}</p>",
            number(Some(a)),
            number(Some(b)),
            number(f.reference.std),
            number(f.current.std)
        ),
        _ => format!(
            "<p class=\"muted\">{} → {} values</p>",
            f.reference.count, f.current.count
        ),
    }
}

fn legend() -> String {
    format!(
        "<div class=\"legend muted\"><span style=\"background:{REFERENCE_COLOR}\"></span>reference<span style=\"background:{CURRENT_COLOR}\"></span>current</div>"
    )
}

fn kind_name(kind: FeatureKind) -> &'static str {
    match kind {
        FeatureKind::Numeric => "numeric",
        FeatureKind::Categorical => "categorical",
    }
}

/// Four decimals, or scientific for the tiny p-values large samples produce.
fn number(x: Option<f64>) -> String {
    match x {
        None => "-".into(),
        Some(v) if v != 0.0 && v.abs() < 1e-4 => format!("{v:.2e}"),
        Some(v) => format!("{v:.4}"),
    }
}
