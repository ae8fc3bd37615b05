//! Alerts reach webhooks as signed JSON, retried past a failing attempt; a tiny TCP server
//! in the test plays the receiver. The trainer's forwarding runs on both buses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use mend_bus::events::{DriftDetected, DriftKind, Event};
use mend_runtime::Secret;
use mend_trainer::webhook::{HttpUrl, WebhookConfig, deliver, hmac_sha256};
use support::{Backend, Harness, World, concept_a, test_config, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// One request as the receiver saw it.
#[derive(Debug)]
struct Received {
    request_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// Serves HTTP/1.1 on a free port, answering the first `failures` requests with 500 and the
/// rest with 200, and hands every request to the test.
async fn receiver(failures: usize) -> (String, mpsc::UnboundedReceiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/mend", listener.local_addr().unwrap());
    let (sender, received) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut served = 0;
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut data = Vec::new();
            let mut buffer = [0u8; 4096];
            let (head_end, length) = loop {
                let read = stream.read(&mut buffer).await.unwrap();
                assert!(read > 0, "client hung up before the end of the request");
                data.extend_from_slice(&buffer[..read]);
                if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&data[..end]).to_string();
                    let length = head
                        .lines()
                        .find_map(|line| {
                            let (name, value) = line.split_once(':')?;
                            name.eq_ignore_ascii_case("content-length")
                                .then(|| value.trim().parse::<usize>().unwrap())
                        })
                        .unwrap();
                    break (end + 4, length);
                }
            };
            while data.len() < head_end + length {
                let read = stream.read(&mut buffer).await.unwrap();
                data.extend_from_slice(&buffer[..read]);
            }
            let head = String::from_utf8_lossy(&data[..head_end - 4]).to_string();
            let mut lines = head.lines();
            let request_line = lines.next().unwrap().to_owned();
            let headers = lines
                .filter_map(|line| line.split_once(':'))
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .collect();
            let body = data[head_end..head_end + length].to_vec();
            let status = if served < failures {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            served += 1;
            stream
                .write_all(format!("HTTP/1.1 {status}\r\ncontent-length: 2\r\n\r\nok").as_bytes())
                .await
                .unwrap();
            let _ = sender.send(Received {
                request_line,
                headers,
                body,
            });
        }
    });
    (url, received)
}

on_both_backends!(a_drift_alert_reaches_the_webhook_signed_after_a_failed_attempt);

async fn a_drift_alert_reaches_the_webhook_signed_after_a_failed_attempt(backend: Backend) {
    let (url, mut received) = receiver(1).await;
    let mut harness = Harness::start(backend).await;
    let mut config = test_config();
    config.webhooks = WebhookConfig {
        urls: vec![url.parse::<HttpUrl>().unwrap()],
        secret: Some(Secret::new("s3cret")),
        timeout: Duration::from_secs(2),
        attempts: 3,
    };
    // The registry knows the model (a trigger for an unknown one is dropped before any read),
    // but the log holds no labeled rows for it.
    harness
        .seed_champion(&World::new().records(1_000, &concept_a()))
        .await;
    harness.start_trainer(config).await;
    let drift = harness
        .publish(DriftDetected {
            kind: DriftKind::Data,
            window: Default::default(),
            features: Vec::new(),
            dataset_share: 0.4,
            dataset_drift: true,
            report_id: None,
            champion_version: None,
            metrics: Default::default(),
        })
        .await;

    // The first attempt got a 500; the retry carries the same signed body.
    let first = within(20, received.recv()).await.unwrap();
    let second = within(20, received.recv()).await.unwrap();
    assert_eq!(first.body, second.body);
    for request in [&first, &second] {
        assert_eq!(request.request_line, "POST /hooks/mend HTTP/1.1");
        assert_eq!(request.header("content-type"), Some("application/json"));
        let expected = format!(
            "sha256={}",
            hex::encode(hmac_sha256(b"s3cret", &request.body))
        );
        assert_eq!(request.header("x-mend-signature"), Some(expected.as_str()));
    }
    let body: serde_json::Value = serde_json::from_slice(&second.body).unwrap();
    let text = body["text"].as_str().unwrap();
    assert!(text.contains("drift detected"), "{text}");
    assert_eq!(body["model"], "churn");
    assert_eq!(body["related_event_id"], drift.id.as_str());

    // With no labeled rows the retrain is skipped, and that is an alert too.
    let skipped = within(20, received.recv()).await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&skipped.body).unwrap();
    assert!(body["text"].as_str().unwrap().contains("skipped"), "{body}");
    harness
        .wait_for(
            5,
            |e| matches!(&e.event, Event::Alert(a) if a.text.contains("skipped")),
        )
        .await;
    harness.stop().await;
}

/// No bus: `deliver` itself against the receivers, so there is nothing to run on JetStream.
#[tokio::test]
async fn delivery_gives_up_after_its_attempts_and_times_out_a_silent_receiver() {
    let (url, mut received) = receiver(usize::MAX).await;
    let config = WebhookConfig {
        urls: vec![url.parse().unwrap()],
        secret: None,
        timeout: Duration::from_secs(2),
        attempts: 2,
    };
    let error = deliver(&config, br#"{"text":"x"}"#).await.unwrap_err();
    assert!(error.to_string().contains("500"), "{error}");
    for _ in 0..2 {
        let request = within(5, received.recv()).await.unwrap();
        assert_eq!(request.header("x-mend-signature"), None);
    }

    // A receiver that accepts and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}/", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (stream, _) = silent.accept().await.unwrap();
            held.push(stream);
        }
    });
    let config = WebhookConfig {
        urls: vec![silent_url.parse().unwrap()],
        secret: None,
        timeout: Duration::from_millis(200),
        attempts: 1,
    };
    let error = within(5, deliver(&config, b"{}")).await.unwrap_err();
    assert!(error.to_string().contains("no answer"), "{error}");
}
