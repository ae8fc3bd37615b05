//! The monitor's HTTP routes, merged with the runtime's ops router:
//! `GET /reports/{model}` lists reports (newest first), `GET /reports/{model}/{id}` returns
//! one as JSON and `GET /reports/{model}/{id}.html` as its page. The newest report is also
//! `latest`.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::reports::ReportStore;

/// The report routes over a store.
pub fn reports_router(store: ReportStore) -> Router {
    Router::new()
        .route("/reports/{model}", get(list))
        .route("/reports/{model}/{id}", get(one))
        .with_state(store)
}

async fn list(State(store): State<ReportStore>, Path(model): Path<String>) -> Response {
    if mend_bus::ModelName::new(&model).is_err() {
        return (StatusCode::BAD_REQUEST, "invalid model name\n").into_response();
    }
    match store.list(&model).await {
        Ok(reports) => axum::Json(reports).into_response(),
        Err(error) => internal(&error),
    }
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
