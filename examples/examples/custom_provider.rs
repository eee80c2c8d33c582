//! Write your own provider: a complete third-party cloud provider in one file.
#![allow(clippy::print_stdout)] // An example program reports to its terminal.
//!
//! A provider crate needs only `kastell-core`: implement [`CloudProvider`],
//! declare a `const` [`ProviderEntry`], and call [`register_provider!`]. Any
//! binary that names the crate (`use my_provider as _;`) then finds it in
//! [`Registry::global`], next to kastell's own providers, with no change to
//! kastell.
//!
//! This "Acme Cloud" keeps its servers in memory and finishes each action
//! after two polls, so the example runs anywhere:
//! `cargo run -p kastell-examples --example custom_provider`.
//!
//! It also ships a (tiny) API simulator: implement
//! [`kastell_sim::Simulator`] and call [`kastell_sim::register_simulator!`],
//! and kastell's sandbox starts it next to its own simulators, with no
//! change to kastell. (A real provider's client would talk HTTP to the
//! simulator's endpoint; Acme's in-memory client does not need to.)

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kastell_core::capability::unsupported;
use kastell_core::cloud::server_not_found;
use kastell_core::types::{
    ActionKind, ActionRef, ActionState, ActionStatus, ProviderInfo, RebootMode, Server, ServerId,
    ServerStatus, TokenInfo,
};
use kastell_core::{
    CloudCapability, CloudProvider, CloudProviderExt, Error, PollSchedule, ProviderConfig,
    ProviderEntry, Registry, Result, Secret, register_provider,
};

/// A poisoned lock: another thread panicked while holding it.
fn poisoned<T>(_: T) -> Error {
    Error::unexpected("lock poisoned")
}

/// Acme's API keeps a server table and counts polls per action.
#[derive(Debug)]
struct AcmeCloud {
    token: Secret,
    servers: Mutex<HashMap<ServerId, Server>>,
    actions: Mutex<HashMap<String, u32>>,
}

impl AcmeCloud {
    fn build(config: ProviderConfig) -> Result<Arc<dyn CloudProvider>> {
        if config.token.is_empty() {
            return Err(
                Error::new(kastell_core::ErrorKind::Unauthenticated, "no Acme token")
                    .with_hint("Set ACME_TOKEN"),
            );
        }
        let id = ServerId::new("acme-1")?;
        let server = Server {
            id: id.clone(),
            name: "web-1".into(),
            status: ServerStatus::Running,
            raw_status: "up".into(),
            public_ipv4: Some(Ipv4Addr::new(203, 0, 113, 7)),
            region: Some("acme-west".into()),
            plan: Some("small".into()),
            disk_gb: Some(25.0),
            created_at: None,
        };
        Ok(Arc::new(AcmeCloud {
            token: config.token,
            servers: Mutex::new(HashMap::from([(id, server)])),
            actions: Mutex::new(HashMap::new()),
        }))
    }
}

#[async_trait]
impl CloudProvider for AcmeCloud {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            id: "acme",
            display_name: "Acme Cloud",
            endpoint: "memory://acme".into(),
        }
    }

    fn capability(&self) -> CloudCapability {
        // Acme can reboot but has no snapshots: kastell refuses snapshot
        // operations before calling us (and the trait's defaults refuse
        // them too, so there is nothing to write for them).
        ACME.capability
    }

    fn poll_schedule(&self) -> PollSchedule {
        PollSchedule::new(Duration::from_millis(10), Duration::from_millis(50))
    }

    async fn validate_token(&self) -> Result<TokenInfo> {
        Ok(TokenInfo {
            can_write: Some(!self.token.expose().starts_with("ro-")),
            account: Some("acme-demo".into()),
            scopes: Vec::new(),
        })
    }

    async fn get_server(&self, id: &ServerId) -> Result<Server> {
        let servers = self.servers.lock().map_err(poisoned)?;
        servers
            .get(id)
            .cloned()
            .ok_or_else(|| server_not_found("acme", id))
    }

    async fn list_servers(&self) -> Result<Vec<Server>> {
        let servers = self.servers.lock().map_err(poisoned)?;
        Ok(servers.values().cloned().collect())
    }

    async fn reboot(&self, id: &ServerId, mode: RebootMode) -> Result<ActionRef> {
        if mode == RebootMode::Hard {
            return Err(unsupported("acme", "hard reboot"));
        }
        self.get_server(id).await?;
        let action = format!("reboot-{id}");
        self.actions
            .lock()
            .map_err(poisoned)?
            .insert(action.clone(), 2);
        Ok(ActionRef {
            id: action,
            kind: ActionKind::Reboot,
            server: id.clone(),
            resource: None,
        })
    }

    async fn action_status(&self, action: &ActionRef) -> Result<ActionStatus> {
        let mut actions = self.actions.lock().map_err(poisoned)?;
        let left = actions
            .get_mut(&action.id)
            .ok_or_else(|| Error::not_found(format!("no action {}", action.id)))?;
        *left = left.saturating_sub(1);
        let state = if *left == 0 {
            ActionState::Succeeded
        } else {
            ActionState::Running
        };
        Ok(ActionStatus {
            state,
            progress: None,
            resource: None,
            message: None,
        })
    }
}

/// The registry entry: constant, so it can be submitted at link time.
const ACME: ProviderEntry = ProviderEntry {
    id: "acme",
    display_name: "Acme Cloud",
    token_env: "ACME_TOKEN",
    capability: CloudCapability {
        reboot: true,
        ..CloudCapability::NONE
    },
    build: AcmeCloud::build,
};

register_provider!(ACME);

/// Acme's error envelope, for the simulator's faults and refusals.
struct AcmeDialect;

impl kastell_sim::Dialect for AcmeDialect {
    fn error(&self, status: StatusCode, code: &str, message: &str) -> Response {
        let body = serde_json::json!({"error": code, "message": message});
        (status, Json(body)).into_response()
    }

    fn rate_limited(&self, retry_after_secs: u64) -> Response {
        let mut response = self.error(StatusCode::TOO_MANY_REQUESTS, "slow_down", "Slow down");
        if let Ok(value) = retry_after_secs.to_string().parse() {
            response.headers_mut().insert("retry-after", value);
        }
        response
    }

    fn busy(&self) -> Response {
        self.error(StatusCode::CONFLICT, "busy", "Another action is running")
    }
}

/// Acme's API simulator: `GET /v1/servers` on loopback, behind the shared
/// recording, token and fault layer.
struct AcmeSim {
    server: kastell_sim::SimServer,
    context: kastell_sim::SimContext,
    servers: usize,
}

impl AcmeSim {
    async fn start(options: kastell_sim::SimOptions) -> std::io::Result<Self> {
        let context = kastell_sim::SimContext::new(
            Arc::new(AcmeDialect),
            kastell_sim::Tokens::for_provider("acme"),
            options.scale,
        );
        let ids: Vec<String> = (1..=options.servers).map(|n| format!("acme-{n}")).collect();
        let router = axum::Router::new().route(
            "/v1/servers",
            axum::routing::get(move || async move { Json(serde_json::json!({ "servers": ids })) }),
        );
        let server = kastell_sim::SimServer::start(context.layer(router)).await?;
        Ok(Self {
            server,
            context,
            servers: options.servers,
        })
    }
}

impl kastell_sim::Simulator for AcmeSim {
    fn provider_id(&self) -> &'static str {
        ACME.id
    }

    fn endpoint(&self) -> String {
        self.server.url("/v1")
    }

    fn context(&self) -> &kastell_sim::SimContext {
        &self.context
    }

    fn boots(&self, server_id: &str) -> u64 {
        u64::from(self.server_ids().iter().any(|id| id == server_id))
    }

    fn server_ids(&self) -> Vec<String> {
        (1..=self.servers).map(|n| format!("acme-{n}")).collect()
    }

    fn missing_server_id(&self) -> String {
        "acme-0".to_owned()
    }

    fn foreign_server_id(&self) -> String {
        "other-1".to_owned()
    }

    fn foreign_snapshot_id(&self) -> String {
        "other-image-1".to_owned()
    }
}

kastell_sim::register_simulator!(ACME.id, AcmeSim);

#[tokio::main]
async fn main() -> Result<()> {
    let registry = Registry::global();
    println!(
        "providers in this binary: {}",
        registry.provider_ids().join(", ")
    );

    let entry = registry.provider("acme")?;
    let cloud = (entry.build)(ProviderConfig {
        token: Secret::new("demo-token"),
        ..ProviderConfig::default()
    })?;
    println!(
        "built {} (token shown as {:?})",
        entry.display_name,
        Secret::new("demo-token")
    );

    let server = cloud
        .find_server_by_ip(Ipv4Addr::new(203, 0, 113, 7))
        .await?
        .ok_or_else(|| Error::not_found("no server at 203.0.113.7"))?;
    println!(
        "found {} ({}) status {}",
        server.name, server.id, server.status
    );

    let outcome = cloud
        .reboot_and_wait(&server.id, RebootMode::Soft, Duration::from_secs(5))
        .await?;
    println!("rebooted {} in {:?}", outcome.server.name, outcome.took);

    match cloud
        .snapshot_and_wait(&server.id, "kastell-demo", Duration::from_secs(5))
        .await
    {
        Err(e) => println!("snapshot refused before any request: {e}"),
        Ok(s) => println!("unexpected snapshot {}", s.id),
    }

    let missing = registry.provider("acme-eu").err().map(|e| e.to_string());
    println!(
        "looking up an unknown provider: {}",
        missing.unwrap_or_default()
    );

    // The sandbox iterates the registered simulators: Acme's joins it.
    let clouds = kastell::sandbox::clouds::start(2, |id| id == ACME.id).await?;
    for sim in &clouds {
        println!(
            "the sandbox started the {} simulator at {} with servers {}",
            sim.provider_id(),
            sim.endpoint(),
            sim.server_ids().join(", ")
        );
    }
    Ok(())
}
