//! A real SIGTERM triggers shutdown. Its own test binary, since the signal goes to the
//! whole process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use mend_runtime::Shutdown;

#[tokio::test]
async fn sigterm_fails_readiness_and_cancels_the_token() {
    let shutdown = Shutdown::new();
    shutdown.readiness().gate("svc").open();
    let listener = shutdown.listen_for_signals().unwrap();
    assert!(shutdown.readiness().is_ready());

    let status = tokio::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .await
        .unwrap();
    assert!(status.success());

    tokio::time::timeout(Duration::from_secs(5), shutdown.triggered())
        .await
        .expect("SIGTERM triggers shutdown");
    assert!(!shutdown.readiness().is_ready());
    listener.await.unwrap();
}
