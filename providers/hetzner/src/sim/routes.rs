//! The simulated Hetzner endpoints under `/v1`.

use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kastell_sim::{AddressPool, SimClock};
use serde_json::{Value, json};

use super::dialect::error;
use super::render::{self, PageLink};
use super::servers::selects;
use super::state::{Work, World};
use super::{catalog, images, servers};

/// What every handler shares: the world and the clock. Virtual time is
/// `origin` (Unix seconds at start) plus the clock.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) world: Mutex<World>,
    pub(crate) clock: SimClock,
    pub(crate) origin: f64,
    /// The addresses created servers get.
    pub(crate) addresses: AddressPool,
}

impl Shared {
    /// Virtual Unix seconds now.
    pub(crate) fn now(&self) -> f64 {
        self.origin + self.clock.now()
    }

    /// The world with every finished job settled.
    pub(crate) fn world(&self, now: f64) -> MutexGuard<'_, World> {
        let mut world = self.world.lock().unwrap_or_else(|p| p.into_inner());
        world.settle(now);
        world
    }
}

pub(super) type S = State<Arc<Shared>>;
pub(super) type Q = Query<Vec<(String, String)>>;
pub(super) type Answer = Result<Response, Fail>;

/// A refusal in Hetzner's error shape.
#[derive(Debug)]
pub(super) struct Fail {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl Fail {
    pub(super) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        error(self.status, self.code, &self.message)
    }
}

/// The routes, relative to the server root.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/v1/servers",
            get(list_servers).post(servers::create_server),
        )
        .route(
            "/v1/servers/{id}",
            get(get_server).delete(servers::delete_server),
        )
        .route(
            "/v1/ssh_keys",
            get(servers::list_keys).post(servers::create_key),
        )
        .route(
            "/v1/ssh_keys/{id}",
            get(servers::get_key).delete(servers::delete_key),
        )
        .route("/v1/server_types", get(servers::server_types))
        .route("/v1/servers/{id}/actions", get(server_actions))
        .route(
            "/v1/servers/{id}/actions/{verb}",
            axum::routing::post(server_action),
        )
        .route("/v1/actions", get(list_actions))
        .route("/v1/actions/{id}", get(get_action))
        .route("/v1/primary_ips", get(primary_ips))
        .route("/v1/images", get(images::list_images))
        .route(
            "/v1/images/{id}",
            get(images::get_image).delete(images::delete_image),
        )
        .route("/v1/pricing", get(images::pricing))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "not found") })
        .with_state(shared)
}

pub(crate) fn param<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

pub(super) fn invalid(message: &str) -> Fail {
    Fail::new(StatusCode::BAD_REQUEST, "invalid_input", message)
}

pub(super) fn missing(what: &str, id: i64) -> Fail {
    Fail::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("{what} with ID '{id}' not found"),
    )
}

pub(super) fn id_of(raw: &str, what: &str) -> Result<i64, Fail> {
    raw.parse()
        .map_err(|_| invalid(&format!("invalid {what} id {raw:?}")))
}

/// `page` (default 1) and `per_page` (default 25, clamped to 1..=50).
pub(super) fn paging(query: &[(String, String)]) -> Result<(usize, usize), Fail> {
    let number = |key: &str, default: usize| match param(query, key) {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| invalid(&format!("{key} must be a number"))),
    };
    Ok((
        number("page", 1)?.max(1),
        number("per_page", 25)?.clamp(1, 50),
    ))
}

async fn list_servers(State(s): S, Query(q): Q, link: PageLink) -> Answer {
    let (page, per_page) = paging(&q)?;
    let now = s.now();
    let world = s.world(now);
    let items: Vec<Value> = world
        .servers
        .values()
        .filter(|v| v.ours)
        .filter(|v| param(&q, "name").is_none_or(|n| n == v.name))
        .filter(|v| param(&q, "status").is_none_or(|st| st == v.status_at(now)))
        .filter(|v| param(&q, "label_selector").is_none_or(|sel| selects(sel, &v.labels)))
        .map(|v| render::server(v, now))
        .collect();
    Ok(render::page("servers", &items, page, per_page, &link))
}

async fn get_server(State(s): S, Path(id): Path<String>) -> Answer {
    let id = id_of(&id, "server")?;
    let now = s.now();
    let world = s.world(now);
    match world.servers.get(&id).filter(|v| v.ours) {
        Some(v) => Ok(render::one(
            StatusCode::OK,
            "server",
            render::server(v, now),
        )),
        None => Err(missing("server", id)),
    }
}

async fn server_actions(
    State(s): S,
    Path(id): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
    link: PageLink,
) -> Answer {
    let id = id_of(&id, "server")?;
    let (page, per_page) = paging(&q)?;
    let now = s.now();
    let world = s.world(now);
    if !world.servers.get(&id).is_some_and(|v| v.ours) {
        return Err(missing("server", id));
    }
    let items: Vec<Value> = world
        .actions
        .values()
        .filter(|a| a.resources.contains(&(id, "server")))
        .map(|a| render::action(a, now))
        .filter(|a| param(&q, "status").is_none_or(|st| a["status"] == st))
        .collect();
    Ok(render::page("actions", &items, page, per_page, &link))
}

/// `POST /servers/{id}/actions/{reboot|reset|create_image|rebuild}`.
async fn server_action(
    State(s): S,
    Path((id, verb)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let id = id_of(&id, "server")?;
    if !matches!(
        verb.as_str(),
        "reboot" | "reset" | "create_image" | "rebuild"
    ) {
        return Err(Fail::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such action",
        ));
    }
    let body: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(&body).map_err(|_| {
            Fail::new(
                StatusCode::BAD_REQUEST,
                "json_error",
                "request body is not valid JSON",
            )
        })?
    };
    let now = s.now();
    let mut world = s.world(now);
    let (locked, disk) = match world.servers.get(&id).filter(|v| v.ours) {
        Some(v) => (v.locked_at(now), v.disk),
        None => return Err(missing("server", id)),
    };
    if locked {
        return Err(Fail::new(
            StatusCode::LOCKED,
            "locked",
            "cannot perform operation because server is locked",
        ));
    }
    let created = StatusCode::CREATED;
    match verb.as_str() {
        "reboot" => Ok(render::one(
            created,
            "action",
            render::action(&world.start(now, id, Work::REBOOT), now),
        )),
        "reset" => Ok(render::one(
            created,
            "action",
            render::action(&world.start(now, id, Work::RESET), now),
        )),
        "create_image" => {
            if !matches!(
                body.get("type").and_then(Value::as_str),
                None | Some("snapshot")
            ) {
                return Err(invalid("type must be snapshot"));
            }
            let description = body
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let labels = body.get("labels").cloned().unwrap_or_else(|| json!({}));
            let (image, action) = world.create_snapshot(now, id, description, labels);
            let answer = json!({"image": render::image(&image, now), "action": render::action(&action, now)});
            Ok((created, axum::Json(answer)).into_response())
        }
        _ => {
            let image = images::rebuild_image(&world, body.get("image"))?;
            if !image.available_at(now) {
                return Err(invalid("image is not available yet"));
            }
            if image.disk > disk {
                return Err(invalid("image disk is bigger than the server's disk"));
            }
            let action = world.start(now, id, Work::REBUILD);
            let answer = json!({"action": render::action(&action, now), "root_password": null});
            Ok((created, axum::Json(answer)).into_response())
        }
    }
}

/// `GET /actions?id=1&id=2`; listing without ids was removed by Hetzner.
async fn list_actions(State(s): S, Query(q): Q, link: PageLink) -> Answer {
    let ids: Vec<i64> = q
        .iter()
        .filter(|(k, _)| k == "id")
        .map(|(_, v)| id_of(v, "action"))
        .collect::<Result<_, _>>()?;
    if ids.is_empty() {
        return Err(invalid(
            "listing all actions is no longer supported: pass id",
        ));
    }
    let (page, per_page) = paging(&q)?;
    let now = s.now();
    let world = s.world(now);
    let items: Vec<Value> = ids
        .iter()
        .filter_map(|id| world.actions.get(id))
        .filter(|a| action_is_ours(&world, a.resources.first()))
        .map(|a| render::action(a, now))
        .collect();
    Ok(render::page("actions", &items, page, per_page, &link))
}

fn action_is_ours(world: &World, first: Option<&(i64, &'static str)>) -> bool {
    first.is_some_and(|(id, _)| world.servers.get(id).is_some_and(|v| v.ours))
}

async fn get_action(State(s): S, Path(id): Path<String>) -> Answer {
    let id = id_of(&id, "action")?;
    let now = s.now();
    let world = s.world(now);
    match world
        .actions
        .get(&id)
        .filter(|a| action_is_ours(&world, a.resources.first()))
    {
        Some(a) => Ok(render::one(
            StatusCode::OK,
            "action",
            render::action(a, now),
        )),
        None => Err(missing("action", id)),
    }
}

/// Our servers' public IPv4s as primary IPs, plus one unassigned.
async fn primary_ips(State(s): S, Query(q): Q, link: PageLink) -> Answer {
    let (page, per_page) = paging(&q)?;
    let now = s.now();
    let world = s.world(now);
    let assigned = world.servers.values().filter(|v| v.ours).filter_map(|v| {
        v.public
            .map(|ip| (600_000 + (v.id % 100_000), ip.to_string(), Some(v.id)))
    });
    let spare = std::iter::once((699_999, "198.19.255.254".to_owned(), None));
    let created = super::state::timestamp(s.origin - 86_400.0 * 30.0);
    let items: Vec<Value> = assigned
            .chain(spare)
            .filter(|(_, ip, _)| param(&q, "ip").is_none_or(|want| want == ip))
            .map(|(id, ip, server)| {
                json!({"id": id, "name": format!("primary_ip-{id}"), "ip": ip, "type": "ipv4",
                       "assignee_id": server, "assignee_type": "server", "auto_delete": true,
                       "blocked": false, "dns_ptr": [{"ip": ip, "dns_ptr": "server.example.invalid"}],
                       "labels": {}, "protection": {"delete": false}, "created": created,
                       "datacenter": catalog::datacenter_json(&catalog::LOCATIONS[0]),
                       "location": catalog::location_json(&catalog::LOCATIONS[0])})
            })
            .collect();
    Ok(render::page("primary_ips", &items, page, per_page, &link))
}
