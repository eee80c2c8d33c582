//! [`ApiClient`]: JSON over HTTPS with a bearer token and the core retry policy.

use std::fmt;
use std::time::Duration;

use kastell_core::{Error, ErrorKind, Idempotency, Result, RetryPolicy, Secret};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

/// Turns a failed answer into the core error. One per vendor crate.
pub type ErrorMapper = fn(&ApiFailure<'_>) -> Error;

/// A non-2xx answer, as handed to the vendor's [`ErrorMapper`].
#[derive(Debug)]
pub struct ApiFailure<'a> {
    /// The provider id.
    pub provider: &'static str,
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: &'a HeaderMap,
    /// Response body, as received.
    pub body: &'a [u8],
}

impl ApiFailure<'_> {
    /// The body parsed as JSON, when it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(self.body).ok()
    }

    /// The body as text, at most 300 characters, for messages.
    pub fn body_text(&self) -> String {
        let text = String::from_utf8_lossy(self.body);
        let text = text.trim();
        match text.char_indices().nth(300) {
            Some((cut, _)) => format!("{}...", &text[..cut]),
            None => text.to_owned(),
        }
    }
}

/// A successful (2xx) answer.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// Response body.
    pub body: Vec<u8>,
}

impl ApiResponse {
    /// Decodes the body as `T`. A body that is not the expected JSON is
    /// [`ErrorKind::Unexpected`] naming the provider and operation.
    pub fn json<T: DeserializeOwned>(
        &self,
        provider: &'static str,
        operation: &'static str,
    ) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| {
            let snippet: String = String::from_utf8_lossy(&self.body)
                .chars()
                .take(120)
                .collect();
            Error::unexpected(format!(
                "{provider} answered {operation} with an unexpected body ({e}): {snippet:?}"
            ))
            .with_provider(provider)
            .with_operation(operation)
            .with_hint("The provider's API may have changed or a proxy mangled the answer")
        })
    }
}

/// One request: method, path relative to the base URL (or an absolute URL
/// on the same host, for vendors whose pages link to the next page), query,
/// JSON body, extra headers and whether it may be repeated.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    body: Option<Value>,
    headers: Vec<(HeaderName, String)>,
    idempotency: Idempotency,
}

impl ApiRequest {
    fn new(method: Method, path: impl Into<String>, idempotency: Idempotency) -> Self {
        Self {
            method,
            path: path.into(),
            query: Vec::new(),
            body: None,
            headers: Vec::new(),
            idempotency,
        }
    }

    /// A GET (idempotent).
    pub fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path, Idempotency::Idempotent)
    }

    /// A POST with a JSON body. `idempotency` says whether repeating it is
    /// harmless (a reboot is not).
    pub fn post(path: impl Into<String>, body: Value, idempotency: Idempotency) -> Self {
        let mut request = Self::new(Method::POST, path, idempotency);
        request.body = Some(body);
        request
    }

    /// A DELETE (idempotent: deleting twice leaves the same state).
    pub fn delete(path: impl Into<String>) -> Self {
        Self::new(Method::DELETE, path, Idempotency::Idempotent)
    }

    /// Adds a query parameter.
    pub fn query(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((key.into(), value.into()));
        self
    }

    /// Adds a header (Linode's `X-Filter`).
    pub fn header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// How to reach one provider's API.
#[derive(Clone)]
pub struct ClientConfig {
    /// Provider id, used in errors.
    pub provider: &'static str,
    /// Base URL (`https://api.hetzner.cloud/v1`, or a simulator's).
    pub base_url: String,
    /// The API token.
    pub token: Secret,
    /// Time allowed for one request, body included.
    pub timeout: Duration,
    /// How failed requests are retried.
    pub retry: RetryPolicy,
}

/// The request timeout when the provider configuration names none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

impl ClientConfig {
    /// The settings for a provider built from the registry: the configured
    /// endpoint or `default_endpoint` (without a trailing slash), the
    /// configured timeout or [`DEFAULT_TIMEOUT`], the configured retry
    /// policy or the default one, and the token.
    pub fn for_provider(
        provider: &'static str,
        default_endpoint: &str,
        config: &kastell_core::ProviderConfig,
    ) -> Self {
        let endpoint = config
            .endpoint
            .as_deref()
            .unwrap_or(default_endpoint)
            .trim_end_matches('/')
            .to_owned();
        Self {
            provider,
            base_url: endpoint,
            token: config.token.clone(),
            timeout: config.timeout.unwrap_or(DEFAULT_TIMEOUT),
            retry: config.retry.clone().unwrap_or_default(),
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("provider", &self.provider)
            .field("base_url", &self.base_url)
            .field("token", &self.token)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// A client for one provider's API. Cheap to clone.
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: Url,
    token: Secret,
    provider: &'static str,
    retry: RetryPolicy,
    map_error: ErrorMapper,
}

impl fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiClient")
            .field("provider", &self.provider)
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl ApiClient {
    /// A client for `config`, mapping failures with `map_error`. Refuses a
    /// base URL that does not parse, is not http(s) or carries credentials
    /// (`user:password@`, a query: the token has its own variable), and an
    /// empty token or one holding a control character (a line break from
    /// a file would never authenticate; it is refused, not retried). The
    /// errors never repeat the URL or the token.
    pub fn new(config: ClientConfig, map_error: ErrorMapper) -> Result<Self> {
        let mut base = Url::parse(&config.base_url).map_err(|e| {
            Error::config_invalid(format!(
                "the {} endpoint is not a URL ({e})",
                config.provider
            ))
            .with_hint("Write it as https://host[:port][/path]")
        })?;
        if !base.username().is_empty() || base.password().is_some() || base.query().is_some() {
            return Err(Error::config_invalid(format!(
                "the {} endpoint carries credentials (user:password@ or a query); they are not used and not shown",
                config.provider
            ))
            .with_hint("Give the endpoint as https://host[:port][/path]; the API token goes in the provider's token variable"));
        }
        if !matches!(base.scheme(), "http" | "https") {
            return Err(Error::config_invalid(format!(
                "{} endpoint must be http or https, not {}",
                config.provider,
                base.scheme()
            )));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        if config.token.is_empty() {
            return Err(Error::new(
                ErrorKind::Unauthenticated,
                format!("no API token for {}", config.provider),
            )
            .with_provider(config.provider));
        }
        if config.token.expose().chars().any(char::is_control) {
            return Err(Error::config_invalid(format!(
                "the API token for {} holds a control character (a line break?)",
                config.provider
            ))
            .with_provider(config.provider)
            .with_hint("Set the token without line breaks or spaces around it (a file read into the variable often adds a newline)"));
        }
        // One process-wide TLS provider (ring); a second install is refused
        // harmlessly when another client already did it.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("kastell/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::unexpected(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            base,
            token: config.token,
            provider: config.provider,
            retry: config.retry,
            map_error,
        })
    }

    /// The base URL requests are relative to.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The provider id.
    pub fn provider(&self) -> &'static str {
        self.provider
    }

    /// Sends `request`, retrying per the policy, and returns the 2xx answer.
    pub async fn send(&self, operation: &'static str, request: ApiRequest) -> Result<ApiResponse> {
        let url = self.url_for(&request.path)?;
        self.retry
            .run(request.idempotency, |_| {
                self.send_once(operation, &url, &request)
            })
            .await
            .map_err(|e| e.with_operation(operation))
    }

    /// GETs `path` and decodes the JSON answer.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        request: ApiRequest,
    ) -> Result<T> {
        self.send(operation, request)
            .await?
            .json(self.provider, operation)
    }

    fn url_for(&self, path: &str) -> Result<Url> {
        if path.starts_with("http://") || path.starts_with("https://") {
            let url = Url::parse(path)
                .map_err(|e| Error::unexpected(format!("bad link from {}: {e}", self.provider)))?;
            if url.origin() != self.base.origin() {
                return Err(Error::unexpected(format!(
                    "{} linked to another host ({}); refusing to send the token there",
                    self.provider,
                    url.host_str().unwrap_or("?")
                )));
            }
            return Ok(url);
        }
        self.base
            .join(path.trim_start_matches('/'))
            .map_err(|e| Error::unexpected(format!("bad path {path:?}: {e}")))
    }

    async fn send_once(
        &self,
        operation: &'static str,
        url: &Url,
        request: &ApiRequest,
    ) -> Result<ApiResponse> {
        let mut builder = self
            .http
            .request(request.method.clone(), url.clone())
            .bearer_auth(self.token.expose())
            .header("accept", "application/json");
        if !request.query.is_empty() {
            builder = builder.query(&request.query);
        }
        for (name, value) in &request.headers {
            let value = HeaderValue::from_str(value)
                .map_err(|_| Error::invalid_input(format!("header {name} has an invalid value")))?;
            builder = builder.header(name.clone(), value);
        }
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        let response = builder
            .send()
            .await
            .map_err(|e| self.transport_error(operation, &e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(operation, &e))?
            .to_vec();
        if status.is_success() {
            return Ok(ApiResponse {
                status: status.as_u16(),
                headers,
                body,
            });
        }
        let failure = ApiFailure {
            provider: self.provider,
            status: status.as_u16(),
            headers: &headers,
            body: &body,
        };
        let mut error = (self.map_error)(&failure);
        if status == StatusCode::TOO_MANY_REQUESTS && error.retry_after().is_none() {
            error = error.with_retry_after(Duration::from_secs(1));
        }
        Err(error.with_operation(operation))
    }

    fn transport_error(&self, operation: &'static str, e: &reqwest::Error) -> Error {
        // reqwest's message names the URL, never the Authorization header.
        let error = if e.is_connect() {
            Error::unavailable(format!("cannot connect to {}: {e}", self.base))
                .never_applied()
                .with_hint("Check the network, or the endpoint configured for this provider")
        } else if e.is_timeout() {
            Error::timeout(format!("{} did not answer in time: {e}", self.provider))
                .with_hint("The provider is slow or unreachable; try again shortly")
        } else {
            Error::unavailable(format!("request to {} failed: {e}", self.provider))
        };
        error.with_provider(self.provider).with_operation(operation)
    }
}
