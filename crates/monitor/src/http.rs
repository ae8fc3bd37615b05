//! The monitor's HTTP routes, merged with the runtime's ops router:
//! `GET /` lists the models that have reports, `GET /reports/{model}` lists a model's reports
//! (newest first), `GET /reports/{model}/{id}` returns one as JSON and
//! `GET /reports/{model}/{id}.html` as its page. The newest report is also `latest`. The two
//! listings are JSON, or an HTML page with links when the client asks for `text/html` (a
//! browser does; `curl` and `mend report` get JSON).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::reports::{ReportStore, ReportSummary};

/// The report routes over a store.
pub fn reports_router(store: ReportStore) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/reports/{model}", get(list))
        .route("/reports/{model}/{id}", get(one))
        .with_state(store)
}

/// Whether the client prefers a page to JSON: it names `text/html` and not
/// `application/json` first.
fn wants_html(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    match (accept.find("text/html"), accept.find("application/json")) {
        (Some(html), Some(json)) => html < json,
        (Some(_), None) => true,
        _ => false,
    }
}

/// Text for HTML (model names and ids are already restricted, but never trust that here).
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(title: &str, body: &str) -> Response {
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.2em .8em;text-align:left}}</style>\
         </head><body><h1>{title}</h1>{body}</body></html>",
        title = escape(title)
    ))
    .into_response()
}

async fn index(State(store): State<ReportStore>, headers: HeaderMap) -> Response {
    let models = match store.models().await {
        Ok(models) => models,
        Err(error) => return internal(&error),
    };
    let mut listed = Vec::new();
    for model in &models {
        match store.ids(model).await {
            Ok(ids) => listed.push((model.clone(), ids.len(), ids.last().cloned())),
            Err(error) => return internal(&error),
        }
    }
    if !wants_html(&headers) {
        let models: Vec<_> = listed
            .iter()
            .map(|(model, reports, latest)| {
                json!({"model": model, "reports": reports, "latest": latest,
                       "href": format!("/reports/{model}")})
            })
            .collect();
        return axum::Json(json!({ "models": models })).into_response();
    }
    let rows: String = listed
        .iter()
        .map(|(model, reports, latest)| {
            let model = escape(model);
            let latest = latest.as_ref().map_or_else(String::new, |_| {
                format!("<a href=\"/reports/{model}/latest.html\">latest report</a>")
            });
            format!(
                "<tr><td><a href=\"/reports/{model}\">{model}</a></td><td>{reports}</td><td>{latest}</td></tr>"
            )
        })
        .collect();
    let body = if rows.is_empty() {
        "<p>No reports yet: the monitor writes one per window of rows for every model it \
         watches.</p>"
            .to_owned()
    } else {
        format!("<table><tr><th>model</th><th>reports</th><th></th></tr>{rows}</table>")
    };
    page("mend monitor", &body)
}

async fn list(
    State(store): State<ReportStore>,
    Path(model): Path<String>,
    headers: HeaderMap,
) -> Response {
    if mend_bus::ModelName::new(&model).is_err() {
        return (StatusCode::BAD_REQUEST, "invalid model name\n").into_response();
    }
    match store.list(&model).await {
        Ok(reports) if wants_html(&headers) => list_page(&model, &reports),
        Ok(reports) => axum::Json(reports).into_response(),
        Err(error) => internal(&error),
    }
}

/// A model's reports as a table, newest first, each linking to its page and its JSON. The
/// columns are the report's verdicts, named as on its page and in `mend report`.
fn list_page(name: &str, reports: &[ReportSummary]) -> Response {
    let model = escape(name);
    let yes_no = |flag: bool| if flag { "yes" } else { "no" };
    let rows: String = reports
        .iter()
        .map(|r| {
            let id = escape(&r.id);
            let features = if r.feature_drift.is_empty() {
                "no".to_owned()
            } else {
                escape(&r.feature_drift.join(", "))
            };
            format!(
                "<tr><td><a href=\"/reports/{model}/{id}.html\">{id}</a> \
                 (<a href=\"/reports/{model}/{id}\">json</a>)</td><td>v{}</td><td>{}</td>\
                 <td>{}</td><td>{} ({:.2})</td><td>{features}</td><td>{}</td><td>{}</td>\
                 <td>{}</td></tr>",
                r.champion_version,
                r.rows,
                r.alarm.kinds(),
                yes_no(r.dataset_drift),
                r.drift_share,
                yes_no(r.prediction_drift),
                r.performance_drift.map_or("-", yes_no),
                r.accuracy
                    .map_or_else(|| "-".to_owned(), |a| format!("{a:.3}")),
            )
        })
        .collect();
    let body = format!(
        "<p><a href=\"/\">all models</a></p><table><tr><th>report</th><th>champion</th>\
         <th>rows</th><th>alarm</th><th>dataset drift (share)</th><th>feature drift</th>\
         <th>prediction drift</th><th>performance drift</th><th>accuracy</th></tr>{rows}</table>"
    );
    page(&format!("reports of {name}"), &body)
}

async fn one(
    State(store): State<ReportStore>,
    Path((model, id)): Path<(String, String)>,
) -> Response {
    let (id, html) = match id.strip_suffix(".html") {
        Some(id) => (id.to_owned(), true),
        None => (id.strip_suffix(".json").unwrap_or(&id).to_owned(), false),
    };
    let id = if id == "latest" {
        match store.ids(&model).await {
            Ok(ids) => match ids.last() {
                Some(last) => last.clone(),
                None => return not_found(),
            },
            Err(error) => return internal(&error),
        }
    } else {
        id
    };
    if html {
        return match store.html(&model, &id).await {
            Ok(Some(page)) => {
                ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
            }
            Ok(None) => not_found(),
            Err(error) => internal(&error),
        };
    }
    match store.get(&model, &id).await {
        Ok(Some(report)) => axum::Json(report).into_response(),
        Ok(None) => not_found(),
        Err(error) => internal(&error),
    }
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "no such report\n").into_response()
}

fn internal(error: &std::io::Error) -> Response {
    tracing::error!(%error, "cannot read reports");
    (StatusCode::INTERNAL_SERVER_ERROR, "cannot read reports\n").into_response()
}
