//! A simulator registered through `register_simulator!` from outside
//! kastell-sim is listed by `simulators()` and starts through its entry.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kastell_sim::{Dialect, SimContext, SimOptions, SimServer, Simulator, Tokens, simulators};

struct PlainDialect;

impl Dialect for PlainDialect {
    fn error(&self, status: StatusCode, _code: &str, message: &str) -> Response {
        (status, message.to_owned()).into_response()
    }
    fn rate_limited(&self, _retry_after_secs: u64) -> Response {
        StatusCode::TOO_MANY_REQUESTS.into_response()
    }
    fn busy(&self) -> Response {
        StatusCode::CONFLICT.into_response()
    }
}

/// The smallest simulator: one route, servers `1..=n`.
struct DummySim {
    server: SimServer,
    context: SimContext,
    servers: usize,
}

impl DummySim {
    async fn start(options: SimOptions) -> std::io::Result<Self> {
        let context = SimContext::new(
            Arc::new(PlainDialect),
            Tokens::for_provider("dummy"),
            options.scale,
        );
        let router = context.layer(Router::new().route("/v0/ping", get(|| async { "pong" })));
        Ok(Self {
            server: SimServer::start(router).await?,
            context,
            servers: options.servers,
        })
    }
}

impl Simulator for DummySim {
    fn provider_id(&self) -> &'static str {
        "dummy"
    }
    fn endpoint(&self) -> String {
        self.server.url("/v0")
    }
    fn context(&self) -> &SimContext {
        &self.context
    }
    fn boots(&self, server_id: &str) -> u64 {
        u64::from(self.server_ids().iter().any(|id| id == server_id))
    }
    fn server_ids(&self) -> Vec<String> {
        (1..=self.servers).map(|n| n.to_string()).collect()
    }
    fn missing_server_id(&self) -> String {
        "0".to_owned()
    }
    fn foreign_server_id(&self) -> String {
        "900".to_owned()
    }
    fn foreign_snapshot_id(&self) -> String {
        "901".to_owned()
    }
}

kastell_sim::register_simulator!("dummy", DummySim);

#[tokio::test]
async fn a_registered_simulator_is_listed_and_starts() {
    let all = simulators().expect("no duplicates");
    let ids: Vec<&str> = all.iter().map(|e| e.provider_id).collect();
    assert_eq!(ids, ["dummy"], "only this test's simulator is linked here");
    let sim = (all[0].start)(SimOptions {
        servers: 2,
        scale: 1.0,
    })
    .await
    .expect("starts");
    assert_eq!(sim.provider_id(), "dummy");
    assert_eq!(sim.server_ids(), ["1", "2"]);
    assert_eq!(
        (sim.boots("2"), sim.boots(&sim.missing_server_id())),
        (1, 0)
    );
    assert_eq!(sim.read_write_token(), "dummy-rw-sim-token");
    assert_eq!(sim.read_only_token(), "dummy-ro-sim-token");
    assert!(sim.endpoint().starts_with("http://127.0.0.1:"));
    assert!(format!("{sim:?}").contains("dummy"));
    // The same entry is reachable as the module's `SIMULATOR` constant.
    assert_eq!(SIMULATOR.provider_id, "dummy");
}
