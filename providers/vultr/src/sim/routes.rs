//! The Vultr API v2 routes of the simulator.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State as Shared};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use kastell_sim::{SimContext, TokenKind};
use serde_json::{Value, json};

use super::create;
use super::dialect::{error, locked};
use super::state::{Refusal, State};
use super::util::{cursor_for, offset_of};

/// Vultr's default and largest page sizes.
const DEFAULT_PER_PAGE: usize = 100;
const MAX_PER_PAGE: usize = 500;

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct App {
    pub(crate) state: Arc<Mutex<State>>,
    pub(crate) ctx: SimContext,
}

impl App {
    /// The state, with finished work settled at the current virtual time.
    pub(crate) fn settled(&self) -> (MutexGuard<'_, State>, f64) {
        let now = self.ctx.clock.now();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.settle(now);
        (state, now)
    }
}

type Params = Query<HashMap<String, String>>;

/// The router under `/v2`, unwrapped (the context adds auth and faults).
pub(crate) fn router(app: App) -> Router {
    let v2 = Router::new()
        .route("/account", get(account))
        .route(
            "/instances",
            get(list_instances).post(create::create_instance),
        )
        .route(
            "/instances/{id}",
            get(get_instance).delete(create::delete_instance),
        )
        .route("/ssh-keys", get(create::list_keys).post(create::create_key))
        .route(
            "/ssh-keys/{id}",
            get(create::get_key).delete(create::delete_key),
        )
        .route("/plans", get(create::list_plans))
        .route("/instances/{id}/reboot", post(reboot))
        .route("/instances/{id}/restore", post(restore))
        .route("/snapshots", get(list_snapshots).post(create_snapshot))
        .route("/snapshots/{id}", get(get_snapshot).delete(delete_snapshot))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "Invalid API endpoint.") })
        .with_state(app);
    Router::new().nest("/v2", v2)
}

fn refuse(refusal: Refusal) -> Response {
    match refusal {
        Refusal::Invalid(message) => error(StatusCode::BAD_REQUEST, &message),
        Refusal::NotFound(message) => error(StatusCode::NOT_FOUND, message),
        Refusal::Locked(verb) => locked(verb),
    }
}

pub(crate) fn answer(result: Result<Response, Refusal>) -> Response {
    result.unwrap_or_else(refuse)
}

/// One cursor page of `items` with Vultr's `meta`.
pub(crate) fn page(
    key: &str,
    items: Vec<Value>,
    params: &HashMap<String, String>,
) -> Result<Value, Refusal> {
    let per_page = match params.get("per_page") {
        None => DEFAULT_PER_PAGE,
        Some(n) => n
            .parse::<usize>()
            .map_err(|_| Refusal::Invalid("Invalid per_page value.".to_owned()))?
            .clamp(1, MAX_PER_PAGE),
    };
    let start = match params.get("cursor").filter(|c| !c.is_empty()) {
        None => 0,
        Some(c) => offset_of(c).ok_or_else(|| Refusal::Invalid("Invalid cursor.".to_owned()))?,
    };
    let total = items.len();
    let end = (start + per_page).min(total);
    let slice: Vec<Value> = items.into_iter().skip(start).take(per_page).collect();
    let next = if end < total {
        cursor_for(end)
    } else {
        String::new()
    };
    let prev = if start > 0 {
        cursor_for(start.saturating_sub(per_page))
    } else {
        String::new()
    };
    Ok(json!({ key: slice, "meta": { "total": total, "links": { "next": next, "prev": prev } } }))
}

/// A JSON body, or Vultr's 400.
fn body(bytes: &Bytes) -> Result<Value, Refusal> {
    serde_json::from_slice(bytes).map_err(|_| Refusal::Invalid("Invalid JSON body.".to_owned()))
}

fn field<'a>(body: &'a Value, key: &str) -> Result<&'a str, Refusal> {
    body.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| Refusal::Invalid(format!("Missing {key}.")))
}

async fn account(Extension(kind): Extension<TokenKind>) -> Response {
    let acls: &[&str] = match kind {
        TokenKind::ReadWrite => &[
            "manage_users",
            "subscriptions_view",
            "subscriptions",
            "billing",
            "support",
            "provisioning",
            "dns",
            "abuse",
            "upgrade",
            "objstore",
            "loadbalancer",
        ],
        TokenKind::ReadOnly => &["subscriptions_view", "billing"],
    };
    Json(json!({ "account": {
        "name": "Kastell Sim", "email": "ops@example.invalid", "acls": acls,
        "balance": -5.0, "pending_charges": 1.2,
        "last_payment_date": "2026-07-01T00:00:00+00:00", "last_payment_amount": -10,
    }}))
    .into_response()
}

async fn list_instances(Shared(app): Shared<App>, Query(params): Params) -> Response {
    let (state, now) = app.settled();
    let filter = |key: &str| params.get(key).cloned();
    let items = state.instances_matching(&filter, now);
    answer(page("instances", items, &params).map(|v| Json(v).into_response()))
}

async fn get_instance(Shared(app): Shared<App>, Path(id): Path<String>) -> Response {
    let (state, now) = app.settled();
    answer(
        state
            .instance(&id)
            .map(|i| Json(json!({ "instance": i.to_json(now) })).into_response()),
    )
}

async fn reboot(Shared(app): Shared<App>, Path(id): Path<String>) -> Response {
    let (mut state, now) = app.settled();
    answer(
        state
            .reboot(&id, now)
            .map(|()| StatusCode::NO_CONTENT.into_response()),
    )
}

async fn restore(Shared(app): Shared<App>, Path(id): Path<String>, bytes: Bytes) -> Response {
    let (mut state, now) = app.settled();
    answer((|| {
        let body = body(&bytes)?;
        let snapshot = field(&body, "snapshot_id")?;
        state.restore(&id, snapshot, now)?;
        let status = json!({ "status": {
            "restore_type": "snapshot_id", "restore_id": snapshot, "status": "Restore initiated",
        }});
        Ok((StatusCode::ACCEPTED, Json(status)).into_response())
    })())
}

async fn list_snapshots(Shared(app): Shared<App>, Query(params): Params) -> Response {
    let (state, now) = app.settled();
    let items = state.snapshots(params.get("description").map(String::as_str), now);
    answer(page("snapshots", items, &params).map(|v| Json(v).into_response()))
}

async fn create_snapshot(Shared(app): Shared<App>, bytes: Bytes) -> Response {
    let (mut state, now) = app.settled();
    answer((|| {
        let body = body(&bytes)?;
        let instance = field(&body, "instance_id")?;
        let description = body
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("");
        let snapshot = state.create_snapshot(instance, description, now)?;
        Ok((StatusCode::CREATED, Json(json!({ "snapshot": snapshot }))).into_response())
    })())
}

async fn get_snapshot(Shared(app): Shared<App>, Path(id): Path<String>) -> Response {
    let (state, now) = app.settled();
    answer(
        state
            .snapshot(&id, now)
            .map(|s| Json(json!({ "snapshot": s })).into_response()),
    )
}

async fn delete_snapshot(Shared(app): Shared<App>, Path(id): Path<String>) -> Response {
    let (mut state, _) = app.settled();
    answer(
        state
            .delete_snapshot(&id)
            .map(|()| StatusCode::NO_CONTENT.into_response()),
    )
}
