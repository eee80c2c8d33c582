//! One request to a simulator exactly as written (path and query not
//! re-encoded), for checking its answers against the vendor's published
//! specification: status, headers and JSON body.

use kastell_sim::Simulator;
use serde_json::Value;

/// A simulator's answer.
#[derive(Debug)]
pub struct RawAnswer {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body as JSON (`Null` when empty or not JSON).
    pub body: Value,
}

impl RawAnswer {
    /// A header's value as text, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends `method` to the simulator's endpoint followed by `path` (which
/// starts with `/` and may carry a query), with the read-write token and
/// `body` as JSON when given.
pub async fn call(sim: &dyn Simulator, method: &str, path: &str, body: Option<Value>) -> RawAnswer {
    let url = format!("{}{path}", sim.endpoint());
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
    // reqwest is built without a default TLS provider; the one every
    // kastell client uses is installed (loopback needs none, the builder
    // does).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().build().expect("an HTTP client");
    let mut request = client
        .request(method, &url)
        .bearer_auth(sim.read_write_token());
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap_or_default();
    RawAnswer {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}
