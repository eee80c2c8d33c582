//! The simulated Linode API v4 routes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State as App};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use kastell_sim::{AddressPool, Dialect, SimClock, TokenKind};
use serde_json::{Value, json};

use super::dialect::{LinodeDialect, error};
use super::filter;
use super::state::{NewLinode, Refusal, State, region_json, type_json};

/// What every handler shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    pub(crate) clock: SimClock,
    pub(crate) maintenance: AtomicBool,
    /// The addresses created instances get.
    pub(crate) addresses: AddressPool,
}

impl Shared {
    /// Runs `f` on the settled state at the current virtual time.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut State, f64) -> T) -> T {
        let now = self.clock.now();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.settle(now);
        f(&mut state, now)
    }
}

type Params = Query<HashMap<String, String>>;

/// The API under `/v4`, with the planned-maintenance switch in front.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/profile", get(profile))
        .route(
            "/linode/instances",
            get(list_instances).post(create_instance),
        )
        .route(
            "/linode/instances/{id}",
            get(get_instance).delete(delete_instance),
        )
        .route("/linode/types", get(list_types))
        .route("/regions", get(list_regions))
        .route("/linode/instances/{id}/ips", get(instance_ips))
        .route("/linode/instances/{id}/disks", get(instance_disks))
        .route("/linode/instances/{id}/reboot", post(reboot))
        .route("/linode/instances/{id}/rebuild", post(rebuild))
        .route("/networking/ips", get(list_ips))
        .route("/networking/ips/{address}", get(get_ip))
        .route("/images", get(list_images).post(create_image))
        .route("/images/{id}", get(get_image).delete(delete_image))
        // Linode documents image ids as `private/123` in the path, literal
        // or with the slash encoded; both are served.
        .route(
            "/images/{kind}/{number}",
            get(get_image_literal).delete(delete_image_literal),
        )
        .route("/account/events", get(list_events))
        .route("/account/events/{id}", get(get_event))
        .fallback(|| async { not_found() })
        .with_state(shared.clone());
    Router::new()
        .nest("/v4", api)
        .layer(from_fn_with_state(shared, maintenance))
}

async fn maintenance(App(shared): App<Arc<Shared>>, request: Request, next: Next) -> Response {
    if !shared.maintenance.load(Ordering::SeqCst) {
        return next.run(request).await;
    }
    let mut response = error(
        StatusCode::SERVICE_UNAVAILABLE,
        "The API is undergoing planned maintenance",
        None,
    );
    response
        .headers_mut()
        .insert("x-maintenance-mode", HeaderValue::from_static("all"));
    response
}

fn ok(value: Value) -> Response {
    (StatusCode::OK, Json(value)).into_response()
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Not found", None)
}

fn refused(refusal: Refusal) -> Response {
    match refusal {
        Refusal::NotFound => not_found(),
        Refusal::Busy => LinodeDialect.busy(),
        Refusal::Invalid(field, reason) => error(StatusCode::BAD_REQUEST, &reason, Some(field)),
    }
}

/// The JSON body (`{}` when empty); `None` when it is not JSON.
fn body_json(body: &Bytes) -> Option<Value> {
    if body.is_empty() {
        return Some(json!({}));
    }
    serde_json::from_slice(body).ok()
}

fn invalid_json() -> Response {
    error(StatusCode::BAD_REQUEST, "Invalid JSON", None)
}

/// Filters, sorts and pages `items` per the request.
fn listed(items: Vec<Value>, headers: &HeaderMap, query: &HashMap<String, String>) -> Response {
    match filter::from_headers(headers) {
        Ok(f) => ok(filter::list(items, f.as_ref(), query)),
        Err(reason) => error(StatusCode::BAD_REQUEST, &reason, None),
    }
}

async fn profile(Extension(kind): Extension<TokenKind>) -> Response {
    let scopes = match kind {
        TokenKind::ReadWrite => "*",
        TokenKind::ReadOnly => {
            "account:read_only events:read_only images:read_only ips:read_only linodes:read_only"
        }
    };
    let mut response = ok(json!({
        "uid": 1, "username": "kastell-sim", "email": "sim@example.invalid",
        "restricted": false, "two_factor_auth": false, "authorized_keys": [],
    }));
    if let Ok(value) = HeaderValue::from_str(scopes) {
        response.headers_mut().insert("x-oauth-scopes", value);
    }
    response
}

async fn list_instances(App(s): App<Arc<Shared>>, Query(q): Params, h: HeaderMap) -> Response {
    let items = s.with(|st, now| st.linodes().map(|l| l.json(now)).collect());
    listed(items, &h, &q)
}

fn instance_of<T>(
    s: &Shared,
    id: &str,
    f: impl FnOnce(&super::state::Linode, f64) -> T,
) -> Option<T> {
    let id: u64 = id.parse().ok()?;
    s.with(|st, now| st.linode(id).map(|l| f(l, now)))
}

async fn get_instance(App(s): App<Arc<Shared>>, Path(id): Path<String>) -> Response {
    instance_of(&s, &id, |l, now| l.json(now)).map_or_else(not_found, ok)
}

async fn instance_ips(App(s): App<Arc<Shared>>, Path(id): Path<String>) -> Response {
    instance_of(&s, &id, |l, _| l.ips_json()).map_or_else(not_found, ok)
}

async fn instance_disks(
    App(s): App<Arc<Shared>>,
    Path(id): Path<String>,
    Query(q): Params,
    h: HeaderMap,
) -> Response {
    match instance_of(&s, &id, |l, _| l.disks_json()) {
        Some(disks) => listed(disks, &h, &q),
        None => not_found(),
    }
}

async fn reboot(App(s): App<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> Response {
    if body_json(&body).is_none() {
        return invalid_json();
    }
    let Ok(id) = id.parse::<u64>() else {
        return not_found();
    };
    match s.with(|st, now| st.reboot(id, now)) {
        Ok(()) => ok(json!({})),
        Err(refusal) => refused(refusal),
    }
}

/// Linode wants 7 to 128 characters of some strength; the simulator asks
/// for 12 or more with three kinds of character.
fn strong(password: &str) -> bool {
    let classes = [
        password.chars().any(|c| c.is_ascii_lowercase()),
        password.chars().any(|c| c.is_ascii_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_ascii_alphanumeric()),
    ];
    (12..=128).contains(&password.len()) && classes.iter().filter(|c| **c).count() >= 3
}

async fn rebuild(App(s): App<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> Response {
    let Some(body) = body_json(&body) else {
        return invalid_json();
    };
    let Ok(id) = id.parse::<u64>() else {
        return not_found();
    };
    let Some(image) = body.get("image").and_then(Value::as_str) else {
        return error(StatusCode::BAD_REQUEST, "image is required", Some("image"));
    };
    let password = body.get("root_pass").and_then(Value::as_str).unwrap_or("");
    if !strong(password) {
        let reason = "Password does not meet strength requirement.";
        return error(StatusCode::BAD_REQUEST, reason, Some("root_pass"));
    }
    match s.with(|st, now| st.rebuild(id, image, now)) {
        Ok(instance) => ok(instance),
        Err(refusal) => refused(refusal),
    }
}

async fn list_ips(App(s): App<Arc<Shared>>, Query(q): Params, h: HeaderMap) -> Response {
    let items = s.with(|st, _| st.linodes().map(|l| l.ip_json(true)).collect());
    listed(items, &h, &q)
}

async fn get_ip(App(s): App<Arc<Shared>>, Path(address): Path<String>) -> Response {
    let found = s.with(|st, _| {
        st.linodes().find_map(|l| {
            let (public, private) = l.addresses();
            if public.to_string() == address {
                Some(l.ip_json(true))
            } else if private.to_string() == address {
                Some(l.ip_json(false))
            } else {
                None
            }
        })
    });
    found.map_or_else(not_found, ok)
}

async fn list_images(App(s): App<Arc<Shared>>, Query(q): Params, h: HeaderMap) -> Response {
    let items = s.with(|st, now| st.images().map(|i| i.json(now)).collect());
    listed(items, &h, &q)
}

async fn create_image(App(s): App<Arc<Shared>>, body: Bytes) -> Response {
    let Some(body) = body_json(&body) else {
        return invalid_json();
    };
    let Some(disk) = body.get("disk_id").and_then(Value::as_u64) else {
        return error(
            StatusCode::BAD_REQUEST,
            "disk_id is required",
            Some("disk_id"),
        );
    };
    let label = body.get("label").and_then(Value::as_str).map(str::to_owned);
    let description = body
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let tags = match body.get("tags") {
        None => Some(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| t.as_str().map(str::to_owned))
            .collect(),
        Some(_) => None,
    };
    let Some(tags) = tags else {
        return error(
            StatusCode::BAD_REQUEST,
            "tags must be strings",
            Some("tags"),
        );
    };
    match s.with(|st, now| st.imagize(disk, label, description, tags, now)) {
        Ok(image) => ok(image),
        Err(refusal) => refused(refusal),
    }
}

async fn get_image_literal(
    state: App<Arc<Shared>>,
    Path((kind, number)): Path<(String, String)>,
) -> Response {
    get_image(state, Path(format!("{kind}/{number}"))).await
}

async fn delete_image_literal(
    state: App<Arc<Shared>>,
    Path((kind, number)): Path<(String, String)>,
) -> Response {
    delete_image(state, Path(format!("{kind}/{number}"))).await
}

async fn get_image(App(s): App<Arc<Shared>>, Path(id): Path<String>) -> Response {
    s.with(|st, now| st.image(&id).map(|i| i.json(now)))
        .map_or_else(not_found, ok)
}

async fn delete_image(App(s): App<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match s.with(|st, _| st.delete_image(&id)) {
        Ok(()) => ok(json!({})),
        Err(refusal) => refused(refusal),
    }
}

async fn list_events(App(s): App<Arc<Shared>>, Query(q): Params, h: HeaderMap) -> Response {
    let mut items: Vec<Value> = s.with(|st, now| st.events_json(now));
    // Newest first unless the filter orders otherwise, as Linode lists them.
    items.reverse();
    listed(items, &h, &q)
}

async fn get_event(App(s): App<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return not_found();
    };
    s.with(|st, now| st.event(id, now))
        .map_or_else(not_found, ok)
}

/// `POST /linode/instances`: `region` and `type` required, `root_pass`
/// required (and strong) with an `image`, `authorized_keys` public key
/// lines; answers the instance `provisioning` with the pool's address.
async fn create_instance(App(s): App<Arc<Shared>>, body: Bytes) -> Response {
    let Some(body) = body_json(&body) else {
        return invalid_json();
    };
    let text = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_owned);
    let (Some(region), Some(kind)) = (text("region"), text("type")) else {
        let field = if text("region").is_none() {
            "region"
        } else {
            "type"
        };
        return error(
            StatusCode::BAD_REQUEST,
            &format!("{field} is required"),
            Some(field),
        );
    };
    let image = text("image");
    if image.is_some() && !strong(&text("root_pass").unwrap_or_default()) {
        let reason = "root_pass is required and must meet the strength requirement";
        return error(StatusCode::BAD_REQUEST, reason, Some("root_pass"));
    }
    let strings = |key: &str| -> Option<Vec<String>> {
        match body.get(key) {
            None => Some(Vec::new()),
            Some(v) => v
                .as_array()?
                .iter()
                .map(|k| k.as_str().map(str::to_owned))
                .collect(),
        }
    };
    let keys_ok = strings("authorized_keys").is_some_and(|keys| {
        keys.iter()
            .all(|k| (k.starts_with("ssh-") || k.starts_with("ecdsa-")) && !k.contains('\n'))
    });
    if !keys_ok {
        let reason = "authorized_keys must be SSH public keys";
        return error(StatusCode::BAD_REQUEST, reason, Some("authorized_keys"));
    }
    let Some(tags) = strings("tags") else {
        return error(
            StatusCode::BAD_REQUEST,
            "tags must be strings",
            Some("tags"),
        );
    };
    let label = text("label").unwrap_or_else(|| format!("linode{}", s.clock.now() as u64));
    let new = NewLinode {
        label,
        region,
        kind,
        image,
        tags,
        public: s.addresses.next(),
    };
    match s.with(|st, now| st.create_linode(new, now)) {
        Ok(instance) => ok(instance),
        Err(refusal) => refused(refusal),
    }
}

/// `DELETE /linode/instances/{id}`: `{}`, gone at once.
async fn delete_instance(App(s): App<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return not_found();
    };
    match s.with(|st, _| st.delete_linode(id)) {
        Ok(()) => ok(json!({})),
        Err(refusal) => refused(refusal),
    }
}

async fn list_types(Query(q): Params, h: HeaderMap) -> Response {
    listed(type_json(), &h, &q)
}

async fn list_regions(Query(q): Params, h: HeaderMap) -> Response {
    listed(region_json(), &h, &q)
}
