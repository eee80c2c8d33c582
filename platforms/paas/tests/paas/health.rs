//! Health checks against a tiny local HTTP server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{COMPOSE, context, healthy_host};
use kastell_core::memory::MemoryTransport;
use kastell_core::types::HealthWait;
use kastell_core::{
    ErrorKind, Platform, PlatformContext, PlatformExt, PlatformTarget, PollSchedule,
};
use kastell_paas::PaasPlatform;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves `status` to every request on a loopback port; returns the URL.
async fn answering(status: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = socket.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 {status}\r\nLocation: /elsewhere\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}/")
}

async fn health_of(url: &str) -> kastell_core::types::Health {
    let p = PaasPlatform::new(
        &COMPOSE,
        context(healthy_host(&COMPOSE), &[("health_url", url)]),
    )
    .unwrap();
    p.health().await.unwrap()
}

#[tokio::test]
async fn only_2xx_and_3xx_are_healthy() {
    for (status, healthy) in [
        ("200 OK", true),
        ("204 No Content", true),
        ("302 Found", true),
        ("404 Not Found", false),
        ("502 Bad Gateway", false),
        ("503 Service Unavailable", false),
    ] {
        let url = answering(status).await;
        let health = health_of(&url).await;
        assert_eq!(health.healthy, healthy, "{status}: {}", health.detail);
        assert!(health.detail.contains(&url), "{}", health.detail);
        assert!(health.detail.contains(&status[..3]), "{}", health.detail);
    }
}

/// A loopback URL nothing listens on (its port bound, then closed).
fn refusing_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/")
}

fn platform_at(url: &str) -> PaasPlatform {
    PaasPlatform::new(
        &COMPOSE,
        context(healthy_host(&COMPOSE), &[("health_url", url)]),
    )
    .unwrap()
}

#[tokio::test]
async fn network_failures_are_unhealthy_not_errors() {
    let health = health_of(&refusing_url()).await;
    assert!(!health.healthy);
    assert!(
        health.detail.contains("connection refused"),
        "{}",
        health.detail
    );
}

#[tokio::test]
async fn a_refused_connection_is_told_apart_from_an_unhealthy_answer() {
    let refused = platform_at(&refusing_url()).health_look().await.unwrap();
    assert!(refused.refused && !refused.health.healthy, "{refused:?}");
    let answered = platform_at(&answering("503 Service Unavailable").await)
        .health_look()
        .await
        .unwrap();
    assert!(
        !answered.refused && !answered.health.healthy,
        "{answered:?}"
    );
}

#[tokio::test]
async fn a_refusing_port_ends_the_wait_within_the_grace_and_a_5xx_waits_on() {
    let schedule = PollSchedule::new(Duration::from_millis(100), Duration::from_millis(500));
    let started = Instant::now();
    let err = platform_at(&refusing_url())
        .wait_healthy_with(
            HealthWait {
                deadline: Duration::from_secs(120),
                refused_grace: Some(Duration::from_secs(1)),
            },
            schedule,
        )
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.message().contains("not listening"), "{err}");
    assert!(err.message().contains("connection refused"), "{err}");
    assert!(waited >= Duration::from_secs(1), "{waited:?}");
    assert!(
        waited < Duration::from_secs(60),
        "not the deadline: {waited:?}"
    );

    // An answer, even a 5xx, is not a refusal: the whole deadline is waited.
    let started = Instant::now();
    let err = platform_at(&answering("503 Service Unavailable").await)
        .wait_healthy_with(
            HealthWait {
                deadline: Duration::from_secs(3),
                refused_grace: Some(Duration::from_millis(200)),
            },
            schedule,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

fn with_target(ip: &str, domain: Option<&str>) -> PaasPlatform {
    PaasPlatform::new(
        &COMPOSE,
        PlatformContext {
            transport: Arc::new(MemoryTransport::new()),
            target: PlatformTarget {
                name: "x".into(),
                ip: ip.into(),
                domain: domain.map(str::to_owned),
                backup_paths: Vec::new(),
            },
            root: Default::default(),
            privilege: Default::default(),
            options: Default::default(),
        },
    )
    .unwrap()
}

#[tokio::test]
async fn the_url_prefers_the_domain_then_the_ip() {
    assert_eq!(
        with_target("203.0.113.7", None).health_url().unwrap(),
        "http://203.0.113.7:8000"
    );
    assert_eq!(
        with_target("2001:db8::1", None).health_url().unwrap(),
        "http://[2001:db8::1]:8000"
    );
    assert_eq!(
        with_target("203.0.113.7", Some("panel.example.com"))
            .health_url()
            .unwrap(),
        "https://panel.example.com"
    );
    let err = with_target("not-an-ip", None).health().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = with_target("1.2.3.4", Some("evil.com/x?y"))
        .health_url()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}
