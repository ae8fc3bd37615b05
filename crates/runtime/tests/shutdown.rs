//! Shutdown token, readiness and the grace timeout, on a paused clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use mend_runtime::{GraceExpired, Shutdown};
use tokio::time::Instant;

const GRACE: Duration = Duration::from_secs(10);

#[tokio::test(start_paused = true)]
async fn trigger_fails_readiness_and_cancels_the_token() {
    let shutdown = Shutdown::new();
    let token = shutdown.token();
    let _gate = shutdown.readiness().gate("svc");
    shutdown.readiness().gate("svc").open();
    assert!(shutdown.readiness().is_ready());
    assert!(!token.is_cancelled() && !shutdown.is_triggered());

    shutdown.clone().trigger();
    assert!(token.is_cancelled());
    assert!(shutdown.is_triggered());
    assert!(!shutdown.readiness().is_ready());
    shutdown.triggered().await;
    shutdown.trigger(); // idempotent
}

#[tokio::test(start_paused = true)]
async fn work_runs_as_long_as_it_likes_before_shutdown() {
    let shutdown = Shutdown::new();
    let started = Instant::now();
    let output = shutdown
        .run_with_grace(
            async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                7
            },
            GRACE,
        )
        .await;
    assert_eq!(output, Ok(7));
    assert_eq!(started.elapsed(), Duration::from_secs(3600));
}

#[tokio::test(start_paused = true)]
async fn a_drain_that_finishes_within_grace_returns_its_output() {
    let shutdown = Shutdown::new();
    let token = shutdown.token();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        trigger.trigger();
    });
    let output = shutdown
        .run_with_grace(
            async move {
                token.cancelled().await;
                tokio::time::sleep(GRACE / 2).await; // draining
                "drained"
            },
            GRACE,
        )
        .await;
    assert_eq!(output, Ok("drained"));
}

#[tokio::test(start_paused = true)]
async fn a_hung_drain_is_cut_off_when_the_grace_runs_out() {
    let shutdown = Shutdown::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        trigger.trigger();
    });
    let started = Instant::now();
    let output = shutdown
        .run_with_grace(std::future::pending::<()>(), GRACE)
        .await;
    assert_eq!(output, Err(GraceExpired { grace: GRACE }));
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(5) + GRACE
            && elapsed < Duration::from_secs(5) + GRACE + Duration::from_millis(50),
        "stopped {elapsed:?} after start, expected 5 s + grace"
    );
}

#[tokio::test(start_paused = true)]
async fn the_signal_listener_ends_when_shutdown_comes_another_way() {
    let shutdown = Shutdown::new();
    let listener = shutdown.listen_for_signals().unwrap();
    shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(1), listener)
        .await
        .expect("listener task ends")
        .unwrap();
}

#[test]
fn listening_for_signals_outside_a_runtime_is_an_error_not_a_panic() {
    assert!(Shutdown::new().listen_for_signals().is_err());
}
