#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The harness against the real binary: start, restart on the same port and store, drop.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use mend_testkit::NatsServer;

/// Sends one request over the raw protocol and returns the reply payload (or an `-ERR`).
/// The read timeout makes a missing reply fail the test instead of hanging it.
fn request(port: u16, subject: &str, payload: &str) -> String {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut info = String::new();
    reader.read_line(&mut info).unwrap();
    assert!(info.starts_with("INFO "), "greeting was {info:?}");
    let mut writer = stream;
    let len = payload.len();
    writer
        .write_all(
            format!(
                "CONNECT {{\"verbose\":false}}\r\nSUB reply.1 1\r\nPUB {subject} reply.1 {len}\r\n{payload}\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line.starts_with("-ERR") {
            return line;
        }
        if line.starts_with("MSG ") {
            let mut body = String::new();
            reader.read_line(&mut body).unwrap();
            return body;
        }
    }
}

#[test]
fn starts_on_a_free_port_with_jetstream_and_cleans_up_on_drop() {
    let server = NatsServer::start().unwrap();
    let port = server.port();
    assert_ne!(
        port, 4222,
        "must never use the machine's shared server port"
    );
    assert_eq!(server.url(), format!("nats://127.0.0.1:{port}"));
    let info = request(port, "$JS.API.INFO", "");
    assert!(
        info.contains("io.nats.jetstream.api.v1.account_info_response"),
        "got {info}"
    );
    let store = server.store_dir();
    assert!(store.exists());

    drop(server);
    assert!(!store.exists(), "store dir removed on drop");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "process killed on drop"
    );
}

#[test]
fn restart_keeps_port_and_jetstream_state() {
    let mut server = NatsServer::start().unwrap();
    let port = server.port();
    let created = request(
        port,
        "$JS.API.STREAM.CREATE.KEEP",
        r#"{"name":"KEEP","subjects":["keep.>"]}"#,
    );
    assert!(created.contains("stream_create_response"), "got {created}");
    assert!(!created.contains("\"error\""), "got {created}");

    server.stop().unwrap();
    assert!(!server.is_running());
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());

    server.resume().unwrap();
    assert!(server.is_running());
    assert_eq!(server.port(), port);
    server.restart().unwrap();
    let info = request(port, "$JS.API.STREAM.INFO.KEEP", "");
    assert!(
        info.contains("\"name\":\"KEEP\""),
        "stream survives restart: {info}"
    );
}

#[test]
fn two_servers_do_not_collide() {
    let first = NatsServer::start().unwrap();
    let second = NatsServer::start().unwrap();
    assert_ne!(first.port(), second.port());
    assert_ne!(first.store_dir(), second.store_dir());
}
