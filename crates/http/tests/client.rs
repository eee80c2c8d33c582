//! ApiClient against a real HTTP server (a kastell-sim app): transport
//! failures, retries, the at-most-once rule for writes, page links and
//! token hygiene.

// Test helpers: a panic is the test failing, with the error shown.
#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kastell_core::{Error, ErrorKind, Idempotency, RetryPolicy, Secret};
use kastell_http::{ApiClient, ApiFailure, ApiRequest, ClientConfig, status};
use kastell_sim::{Dialect, Fault, FaultRule, SimContext, SimServer, Tokens};
use serde_json::{Value, json};

struct TestDialect;

impl Dialect for TestDialect {
    fn error(&self, status: StatusCode, code: &str, message: &str) -> Response {
        (status, Json(json!({"code": code, "message": message}))).into_response()
    }
    fn rate_limited(&self, secs: u64) -> Response {
        let mut r = self.error(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "slow down");
        r.headers_mut()
            .insert("retry-after", secs.to_string().parse().unwrap());
        r
    }
    fn busy(&self) -> Response {
        self.error(StatusCode::LOCKED, "locked", "busy")
    }
}

fn map_error(f: &ApiFailure<'_>) -> Error {
    let message = f
        .json()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| f.body_text());
    let error = if f.status == 423 {
        status::busy(f.provider, f.status, &message)
    } else {
        status::default_error(f.provider, f.status, &message)
    };
    match kastell_http::headers::retry_after(f.headers, std::time::SystemTime::now()) {
        Some(after) => error.with_retry_after(after),
        None => error,
    }
}

struct Harness {
    _server: SimServer,
    ctx: SimContext,
    url: String,
    reboots: Arc<AtomicU64>,
}

async fn harness() -> Harness {
    let ctx = SimContext::new(Arc::new(TestDialect), Tokens::for_provider("test"), 1.0);
    let reboots = Arc::new(AtomicU64::new(0));
    let counter = reboots.clone();
    let router = Router::new()
        .route(
            "/v1/things/{id}",
            get(|| async { Json(json!({"id": 7, "name": "seven"})) }),
        )
        .route(
            "/v1/reboot",
            post(move || {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    (StatusCode::CREATED, Json(json!({"action": 1})))
                }
            }),
        );
    let server = SimServer::start(ctx.layer(router)).await.unwrap();
    let url = server.url("/v1");
    Harness {
        _server: server,
        ctx,
        url,
        reboots,
    }
}

fn client(url: &str, token: &str, retry: RetryPolicy) -> ApiClient {
    ApiClient::new(
        ClientConfig {
            provider: "test",
            base_url: url.to_owned(),
            token: Secret::new(token),
            timeout: Duration::from_millis(500),
            retry,
        },
        map_error,
    )
    .unwrap()
}

fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        multiplier: 2.0,
        jitter: 0.0,
        deadline: Duration::from_secs(20),
    }
}

#[tokio::test]
async fn decodes_answers_and_maps_vendor_errors() {
    let h = harness().await;
    let c = client(&h.url, "test-rw-sim-token", RetryPolicy::none());
    let v: Value = c
        .get_json("get_thing", ApiRequest::get("things/7"))
        .await
        .unwrap();
    assert_eq!(v["name"], "seven");
    let err = c
        .send("get_thing", ApiRequest::get("nothing/here"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.operation(), Some("get_thing"));
    let bad = client(&h.url, "wrong", RetryPolicy::none());
    let err = bad
        .send("get_thing", ApiRequest::get("things/7"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
}

#[tokio::test]
async fn a_refused_connection_is_unavailable_and_never_applied() {
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = client(
        &format!("http://127.0.0.1:{port}/v1"),
        "t",
        RetryPolicy::none(),
    );
    let err = c
        .send(
            "reboot",
            ApiRequest::post("reboot", json!({}), Idempotency::NonIdempotent),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.is_retryable());
    assert!(!err.may_have_taken_effect());
}

#[tokio::test]
async fn a_hang_is_a_timeout() {
    let h = harness().await;
    h.ctx
        .faults
        .add(FaultRule::new("GET", "/things/", Fault::Hang));
    let c = client(&h.url, "test-rw-sim-token", RetryPolicy::none());
    let err = c
        .send("get_thing", ApiRequest::get("things/7"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(err.may_have_taken_effect());
}

#[tokio::test]
async fn retries_wait_for_retry_after_then_succeed() {
    let h = harness().await;
    h.ctx.faults.add(
        FaultRule::new(
            "GET",
            "/things/",
            Fault::RateLimited {
                retry_after_secs: 1,
            },
        )
        .times(2),
    );
    let started = Instant::now();
    let c = client(&h.url, "test-rw-sim-token", quick_retries());
    let v: Value = c
        .get_json("get_thing", ApiRequest::get("things/7"))
        .await
        .unwrap();
    assert_eq!(v["id"], 7);
    assert_eq!(h.ctx.recorder.count("GET", "/things/7"), 3);
    assert!(started.elapsed() >= Duration::from_millis(1900));
}

#[tokio::test]
async fn a_write_whose_answer_was_lost_is_not_repeated() {
    let h = harness().await;
    h.ctx
        .faults
        .add(FaultRule::new("POST", "/reboot", Fault::Gateway(502)).after_effect());
    let c = client(&h.url, "test-rw-sim-token", quick_retries());
    let err = c
        .send(
            "reboot",
            ApiRequest::post("reboot", json!({}), Idempotency::NonIdempotent),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(h.ctx.recorder.count("POST", "/reboot"), 1);
    assert_eq!(h.reboots.load(Ordering::SeqCst), 1);

    // A busy refusal never took effect, so the write is retried.
    h.ctx
        .faults
        .add(FaultRule::new("POST", "/reboot", Fault::Busy).times(2));
    c.send(
        "reboot",
        ApiRequest::post("reboot", json!({}), Idempotency::NonIdempotent),
    )
    .await
    .unwrap();
    assert_eq!(h.ctx.recorder.count("POST", "/reboot"), 4);
    assert_eq!(h.reboots.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn page_links_to_another_host_are_refused_and_same_host_links_followed() {
    let h = harness().await;
    let c = client(&h.url, "test-rw-sim-token", RetryPolicy::none());
    let same = format!("{}/things/7", h.url);
    let v: Value = c.get_json("page", ApiRequest::get(same)).await.unwrap();
    assert_eq!(v["id"], 7);
    let err = c
        .send(
            "page",
            ApiRequest::get("https://attacker.invalid/v1/things/7"),
        )
        .await
        .unwrap_err();
    assert!(
        err.message().contains("refusing to send the token"),
        "{err}"
    );
}

#[tokio::test]
async fn the_token_never_shows() {
    let h = harness().await;
    let c = client(&h.url, "super-secret-token-value", RetryPolicy::none());
    let err = c
        .send("get_thing", ApiRequest::get("things/7"))
        .await
        .unwrap_err();
    for text in [format!("{c:?}"), format!("{err} {err:?}")] {
        assert!(!text.contains("super-secret-token-value"), "{text}");
    }
    let bad = ApiClient::new(
        ClientConfig {
            provider: "test",
            base_url: "ftp://x".into(),
            token: Secret::new("super-secret-token-value"),
            timeout: Duration::from_secs(1),
            retry: RetryPolicy::none(),
        },
        map_error,
    )
    .unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::ConfigInvalid);
    assert!(!format!("{bad:?}").contains("super-secret"));
}

fn refused(base_url: &str, token: &str) -> kastell_core::Error {
    ApiClient::new(
        ClientConfig {
            provider: "test",
            base_url: base_url.into(),
            token: Secret::new(token),
            timeout: Duration::from_secs(1),
            retry: quick_retries(),
        },
        map_error,
    )
    .unwrap_err()
}

#[test]
fn a_token_with_a_line_break_is_refused_at_once_not_retried() {
    // Around it, white space is trimmed (Secret::new); inside, refused.
    for token in ["abc\r\ndef", "abc\ndef", "ab\u{7f}c"] {
        let err = refused("https://api.example.test/v1", token);
        assert_eq!(err.kind(), ErrorKind::ConfigInvalid, "{token:?}");
        assert!(!err.is_retryable());
        assert!(err.message().contains("control character"), "{err}");
        assert!(err.hint().unwrap().contains("line breaks"));
        assert!(!format!("{err} {err:?}").contains("abc"), "{err:?}");
    }
}

#[test]
fn credentials_in_an_endpoint_are_refused_and_never_echoed() {
    for url in [
        "https://admin:hunter2-secret@api.example.test/v1",
        "https://hunter2-secret@api.example.test/v1",
        "https://api.example.test/v1?token=hunter2-secret",
        "not a url hunter2-secret",
    ] {
        let err = refused(url, "a-good-token");
        assert_eq!(err.kind(), ErrorKind::ConfigInvalid, "{url}");
        let text = format!("{err} {} {err:?}", err.hint().unwrap_or_default());
        assert!(!text.contains("hunter2"), "{text}");
    }
}
