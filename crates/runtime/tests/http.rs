//! `/metrics`, `/healthz` and `/livez` over a real loopback HTTP/1.1 connection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use mend_runtime::http::{ops_router, serve_http};
use mend_runtime::{Metrics, Shutdown};
use prometheus_client::metrics::counter::Counter;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

struct HttpResponse {
    status: u16,
    head: String,
    body: String,
}

/// A minimal HTTP/1.1 GET: enough to see what a Prometheus scraper or a kubelet sees.
async fn get_path(addr: SocketAddr, path: &str) -> HttpResponse {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    HttpResponse {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_owned(),
    }
}

#[tokio::test]
async fn metrics_readiness_and_service_routes_are_served() {
    let metrics = Metrics::new();
    let requests = Counter::<u64>::default();
    metrics.register("requests", "Requests handled", requests.clone());
    requests.inc_by(3);

    let shutdown = Shutdown::new();
    let gate = shutdown.readiness().gate("server");
    let router = ops_router(metrics.clone(), shutdown.readiness())
        .merge(Router::new().route("/reports", get(|| async { "no reports yet" })));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // The HTTP server has its own stop token: /healthz must keep answering 503 while
    // the rest of the process drains.
    let stop_http = CancellationToken::new();
    let server = tokio::spawn(serve_http(listener, router, stop_http.clone()));

    let scrape = get_path(addr, "/metrics").await;
    assert_eq!(scrape.status, 200);
    assert!(
        scrape
            .head
            .contains("content-type: application/openmetrics-text"),
        "{}",
        scrape.head
    );
    assert!(
        scrape
            .body
            .contains("# HELP mend_requests Requests handled."),
        "{}",
        scrape.body
    );
    assert!(
        scrape.body.contains("mend_requests_total 3"),
        "{}",
        scrape.body
    );
    assert!(scrape.body.trim_end().ends_with("# EOF"), "{}", scrape.body);

    let starting = get_path(addr, "/healthz").await;
    assert_eq!(starting.status, 503);
    assert!(
        starting.body.contains("waiting for: server"),
        "{}",
        starting.body
    );

    gate.open();
    assert_eq!(get_path(addr, "/healthz").await.status, 200);
    assert_eq!(get_path(addr, "/reports").await.body, "no reports yet");

    shutdown.trigger();
    let draining = get_path(addr, "/healthz").await;
    assert_eq!(draining.status, 503, "readiness fails first at shutdown");
    assert!(draining.body.contains("shutting down"));
    assert_eq!(
        get_path(addr, "/livez").await.status,
        200,
        "liveness survives the drain"
    );
    assert_eq!(get_path(addr, "/nope").await.status, 404);

    stop_http.cancel();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("http server stops when its token is cancelled")
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "listener is closed"
    );
}
