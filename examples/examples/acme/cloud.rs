//! Acme Cloud, a third-party cloud provider in one file: its API client
//! (over `kastell-http`) and its API simulator (over `kastell-sim`), each
//! registered at link time. Linked into a kastell build, it is listed by
//! `doctor`, accepted by `server add --provider acme`, and its simulator
//! joins the sandbox of `demo` and `mcp --sandbox`, with no change to
//! kastell. Acme can reboot servers; it has no snapshots, so the trait's
//! defaults refuse those (nothing to write for them).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::{Extension, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use kastell_core::capability::unsupported;
use kastell_core::types::{
    ActionKind, ActionRef, ActionState, ActionStatus, RebootMode, Server, ServerId, ServerStatus,
    TokenInfo,
};
use kastell_core::{
    CloudCapability, CloudProvider, Error, Idempotency, PollSchedule, ProviderConfig,
    ProviderEntry, ProviderIdentity, Result, register_provider,
};
use kastell_http::{ApiClient, ApiRequest, ClientConfig, path_segment, status};
use kastell_sim::{JsonDialect, SimContext, SimOptions, SimServer, Simulator, TokenKind, Tokens};
use serde::Deserialize;
use serde_json::{Value, json};

/// The provider's registry id.
const ID: &str = "acme";

/// Acme's API (never reached by the example: it runs on the simulator).
const ENDPOINT: &str = "https://api.acme.invalid/v1";

const ENTRY: ProviderEntry = ProviderEntry {
    id: ID,
    display_name: "Acme Cloud",
    token_env: "ACME_TOKEN",
    capability: CloudCapability {
        reboot: true,
        ..CloudCapability::NONE
    },
    build,
};

register_provider!(ENTRY);

fn build(config: ProviderConfig) -> Result<Arc<dyn CloudProvider>> {
    let client = ClientConfig::for_provider(ID, ENDPOINT, &config);
    Ok(Arc::new(Acme {
        api: ApiClient::new(client, status::plain_json)?,
        poll: config.poll,
    }))
}

#[derive(Debug)]
struct Acme {
    api: ApiClient,
    poll: Option<PollSchedule>,
}

#[derive(Deserialize)]
struct AcmeServer {
    id: String,
    name: String,
    status: String,
    ipv4: Option<Ipv4Addr>,
    region: Option<String>,
}

impl AcmeServer {
    fn into_server(self) -> Result<Server> {
        let status = match self.status.as_str() {
            "running" => ServerStatus::Running,
            "rebooting" => ServerStatus::Rebooting,
            "off" => ServerStatus::Off,
            _ => ServerStatus::Unknown,
        };
        Ok(Server {
            id: ServerId::new(self.id)?,
            name: self.name,
            status,
            raw_status: self.status,
            public_ipv4: self.ipv4,
            region: self.region,
            plan: None,
            disk_gb: None,
            created_at: None,
        })
    }
}

#[derive(Deserialize)]
struct AcmeAction {
    id: String,
    status: String,
}

/// The object under `key` in an answer, decoded.
fn field<T: serde::de::DeserializeOwned>(mut answer: Value, key: &str) -> Result<T> {
    serde_json::from_value(answer[key].take())
        .map_err(|e| Error::unexpected(format!("Acme answered without a valid {key}: {e}")))
}

#[async_trait]
impl CloudProvider for Acme {
    fn identity(&self) -> ProviderIdentity {
        let poll = self.poll.unwrap_or(PollSchedule::new(
            Duration::from_secs(1),
            Duration::from_secs(5),
        ));
        ENTRY.identity(self.api.base_url().as_str(), poll)
    }

    async fn validate_token(&self) -> Result<TokenInfo> {
        let answer: Value = self
            .api
            .get_json("validate_token", ApiRequest::get("account"))
            .await?;
        Ok(TokenInfo {
            can_write: answer["account"]["read_only"].as_bool().map(|ro| !ro),
            account: answer["account"]["name"].as_str().map(str::to_owned),
            scopes: Vec::new(),
        })
    }

    async fn get_server(&self, id: &ServerId) -> Result<Server> {
        let path = format!("servers/{}", path_segment(id.as_str()));
        let answer = self
            .api
            .get_json("get_server", ApiRequest::get(path))
            .await?;
        field::<AcmeServer>(answer, "server")?.into_server()
    }

    async fn list_servers(&self) -> Result<Vec<Server>> {
        let answer = self
            .api
            .get_json("list_servers", ApiRequest::get("servers"))
            .await?;
        let servers: Vec<AcmeServer> = field(answer, "servers")?;
        servers.into_iter().map(AcmeServer::into_server).collect()
    }

    async fn reboot(&self, id: &ServerId, mode: RebootMode) -> Result<ActionRef> {
        if mode == RebootMode::Hard {
            return Err(unsupported(ID, "hard reboot"));
        }
        let path = format!("servers/{}/reboot", path_segment(id.as_str()));
        let request = ApiRequest::post(path, json!({}), Idempotency::NonIdempotent);
        let answer = self.api.send("reboot", request).await?;
        let action: AcmeAction = field(answer.json(ID, "reboot")?, "action")?;
        Ok(ActionRef {
            id: action.id,
            kind: ActionKind::Reboot,
            server: id.clone(),
            resource: None,
        })
    }

    async fn action_status(&self, action: &ActionRef) -> Result<ActionStatus> {
        let path = format!("actions/{}", path_segment(&action.id));
        let answer = self
            .api
            .get_json("action_status", ApiRequest::get(path))
            .await?;
        let found: AcmeAction = field(answer, "action")?;
        let state = match found.status.as_str() {
            "done" => ActionState::Succeeded,
            "failed" => ActionState::Failed,
            _ => ActionState::Running,
        };
        Ok(ActionStatus {
            state,
            progress: None,
            resource: None,
            message: None,
        })
    }
}

/// The simulated account: each server's boot count, and each reboot
/// action's polls left before it is done.
#[derive(Debug, Default)]
struct Account {
    boots: Vec<(String, u64)>,
    actions: HashMap<String, u32>,
}

type Shared = Arc<Mutex<Account>>;

fn locked(state: &Shared) -> std::sync::MutexGuard<'_, Account> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn server_json(index: usize, id: &str) -> Value {
    let ipv4 = kastell_sim::public_ip(index).to_string();
    json!({"id": id, "name": format!("web-{index}"), "status": "running", "ipv4": ipv4, "region": "acme-west"})
}

fn not_found(ctx: &SimContext, what: &str) -> Response {
    let status = axum::http::StatusCode::NOT_FOUND;
    ctx.dialect
        .error(status, "not_found", &format!("no {what}"))
}

/// Acme's API on loopback, behind the shared token, fault and recording
/// layer.
struct AcmeSim {
    server: SimServer,
    context: SimContext,
    state: Shared,
}

impl AcmeSim {
    async fn start(options: SimOptions) -> std::io::Result<Self> {
        let context = SimContext::new(
            Arc::new(JsonDialect),
            Tokens::for_provider(ID),
            options.scale,
        );
        let boots = (1..=options.servers)
            .map(|n| (format!("acme-{n}"), 1))
            .collect();
        let state: Shared = Arc::new(Mutex::new(Account {
            boots,
            actions: HashMap::new(),
        }));
        let app = Router::new()
            .route("/v1/account", get(account))
            .route("/v1/servers", get(list))
            .route("/v1/servers/{id}", get(one))
            .route("/v1/servers/{id}/reboot", post(reboot))
            .route("/v1/actions/{id}", get(action))
            .with_state((state.clone(), context.clone()));
        let server = SimServer::start(context.layer(app)).await?;
        Ok(Self {
            server,
            context,
            state,
        })
    }
}

type Ctx = State<(Shared, SimContext)>;

async fn account(Extension(kind): Extension<TokenKind>) -> Json<Value> {
    Json(json!({"account": {"name": "acme-demo", "read_only": kind == TokenKind::ReadOnly}}))
}

async fn list(State((state, _)): Ctx) -> Json<Value> {
    let account = locked(&state);
    let servers: Vec<Value> = account
        .boots
        .iter()
        .enumerate()
        .map(|(n, (id, _))| server_json(n, id))
        .collect();
    Json(json!({ "servers": servers }))
}

async fn one(State((state, ctx)): Ctx, Path(id): Path<String>) -> Response {
    let account = locked(&state);
    match account.boots.iter().position(|(known, _)| *known == id) {
        Some(n) => Json(json!({"server": server_json(n, &id)})).into_response(),
        None => not_found(&ctx, "such server"),
    }
}

async fn reboot(
    State((state, ctx)): Ctx,
    Extension(kind): Extension<TokenKind>,
    Path(id): Path<String>,
) -> Response {
    if kind == TokenKind::ReadOnly {
        return ctx.dialect.read_only();
    }
    let mut account = locked(&state);
    let Some((_, boots)) = account.boots.iter_mut().find(|(known, _)| *known == id) else {
        return not_found(&ctx, "such server");
    };
    *boots += 1;
    let action = format!("reboot-{id}-{boots}");
    account.actions.insert(action.clone(), 2);
    Json(json!({"action": {"id": action, "status": "running"}})).into_response()
}

async fn action(State((state, ctx)): Ctx, Path(id): Path<String>) -> Response {
    let mut account = locked(&state);
    let Some(left) = account.actions.get_mut(&id) else {
        return not_found(&ctx, "such action");
    };
    *left = left.saturating_sub(1);
    let status = if *left == 0 { "done" } else { "running" };
    Json(json!({"action": {"id": id, "status": status}})).into_response()
}

impl Simulator for AcmeSim {
    fn provider_id(&self) -> &'static str {
        ID
    }

    fn endpoint(&self) -> String {
        self.server.url("/v1")
    }

    fn context(&self) -> &SimContext {
        &self.context
    }

    fn boots(&self, server_id: &str) -> u64 {
        let account = locked(&self.state);
        account
            .boots
            .iter()
            .find(|(id, _)| id == server_id)
            .map_or(0, |(_, n)| *n)
    }

    fn server_ids(&self) -> Vec<String> {
        locked(&self.state)
            .boots
            .iter()
            .map(|(id, _)| id.clone())
            .collect()
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

kastell_sim::register_simulator!(ID, AcmeSim);
