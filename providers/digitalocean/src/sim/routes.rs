//! The simulated endpoints, at DigitalOcean's paths with its JSON shapes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use kastell_sim::{SimContext, page_of};
use serde_json::{Value, json};

use super::state::{Action, Droplet, Image, Refusal, Work, World, iso};

/// The documented page size limit, and the default.
const MAX_PER_PAGE: usize = 200;
const DEFAULT_PER_PAGE: usize = 20;

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct App {
    pub(crate) world: Arc<Mutex<World>>,
    pub(crate) ctx: SimContext,
}

impl App {
    /// The world, advanced to the current virtual time, and that time.
    pub(crate) fn world(&self) -> (MutexGuard<'_, World>, f64) {
        let now = self.ctx.clock.now();
        let mut world = self.world.lock().unwrap_or_else(|p| p.into_inner());
        world.advance(now);
        (world, now)
    }

    pub(crate) fn refuse(&self, refusal: Refusal) -> Response {
        let dialect = &self.ctx.dialect;
        match refusal {
            Refusal::NotFound => dialect.error(
                StatusCode::NOT_FOUND,
                "not_found",
                "The resource you requested could not be found.",
            ),
            Refusal::Busy => dialect.busy(),
            Refusal::Unprocessable(message) => dialect.error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unprocessable_entity",
                &message,
            ),
        }
    }

    pub(crate) fn bad_request(&self, message: &str) -> Response {
        self.ctx
            .dialect
            .error(StatusCode::BAD_REQUEST, "bad_request", message)
    }
}

/// The simulator's routes, before the shared recording/auth/fault layer.
pub(crate) fn router(app: App) -> Router {
    Router::new()
        .route("/v2/account", get(account))
        .route(
            "/v2/droplets",
            get(list_droplets).post(super::create::create_droplet),
        )
        .route(
            "/v2/droplets/{id}",
            get(get_droplet).delete(super::create::delete_droplet),
        )
        .route(
            "/v2/account/keys",
            get(super::create::list_keys).post(super::create::create_key),
        )
        .route(
            "/v2/account/keys/{id}",
            get(super::create::get_key).delete(super::create::delete_key),
        )
        .route("/v2/sizes", get(super::create::list_sizes))
        .route("/v2/droplets/{id}/actions", post(post_action))
        .route(
            "/v2/droplets/{id}/actions/{action}",
            get(get_droplet_action),
        )
        .route("/v2/droplets/{id}/snapshots", get(droplet_snapshots))
        .route("/v2/actions/{id}", get(get_action))
        .route("/v2/snapshots", get(list_snapshots))
        .route(
            "/v2/snapshots/{id}",
            get(get_snapshot).delete(delete_snapshot),
        )
        .route("/v2/images/{id}", delete(delete_snapshot))
        .route("/v2/tags", post(super::tags::create_tag))
        .route("/v2/tags/{tag}/resources", post(super::tags::tag_resources))
        .fallback(not_found)
        .with_state(app)
}

pub(crate) fn ok(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// An id in a path: DigitalOcean ids are integers; anything else names
/// nothing.
pub(crate) fn id(raw: &str) -> Result<u64, Refusal> {
    raw.parse().map_err(|_| Refusal::NotFound)
}

/// One page of `items` with DigitalOcean's `links.pages` (only the
/// meaningful keys; none at all on a single page) and `meta.total`.
pub(crate) fn paged<T: Clone>(
    base: &str,
    path: &str,
    items: &[T],
    query: &HashMap<String, String>,
) -> (Vec<T>, Value) {
    let number = |key: &str, default: usize| {
        query
            .get(key)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(default)
    };
    let per_page = number("per_page", DEFAULT_PER_PAGE).clamp(1, MAX_PER_PAGE);
    let page = number("page", 1).max(1);
    let (slice, pages) = page_of(items, page, per_page);
    // `path` may end in `?` or `&` when it carries a filter already.
    let url = |n: usize| {
        let sep = if path.ends_with(['?', '&']) { "" } else { "?" };
        format!("{base}{path}{sep}page={n}&per_page={per_page}")
    };
    let mut links = serde_json::Map::new();
    if pages > 1 {
        if page > 1 {
            links.insert("first".into(), url(1).into());
            links.insert("prev".into(), url((page - 1).min(pages)).into());
        }
        if page < pages {
            links.insert("next".into(), url(page + 1).into());
            links.insert("last".into(), url(pages).into());
        }
    }
    let links = if links.is_empty() {
        json!({})
    } else {
        json!({ "pages": links })
    };
    (
        slice,
        json!({ "links": links, "meta": { "total": items.len() } }),
    )
}

pub(crate) fn with_page(mut body: Value, paging: Value) -> Value {
    if let (Some(body), Value::Object(paging)) = (body.as_object_mut(), paging) {
        body.extend(paging);
    }
    body
}

pub(crate) fn droplet_json(d: &Droplet, world: &World, now: f64) -> Value {
    let (slug, memory, vcpus, disk) = d.plan;
    let snapshot_ids: Vec<u64> = world
        .images
        .iter()
        .filter(|i| i.droplet == d.id)
        .map(|i| i.id)
        .collect();
    // A new droplet has no addresses until it is active.
    let networks = if d.status(now) == "new" {
        json!({ "v4": [], "v6": [] })
    } else {
        json!({ "v4": [
            { "ip_address": d.private_ip.to_string(), "netmask": "255.255.0.0",
              "gateway": "", "type": "private" },
            { "ip_address": d.public_ip.to_string(), "netmask": "255.255.255.0",
              "gateway": "198.18.0.1", "type": "public" }
        ], "v6": [] })
    };
    json!({
        "id": d.id, "name": d.name, "memory": memory, "vcpus": vcpus, "disk": disk,
        "locked": d.busy_with.is_some(), "status": d.status(now), "created_at": iso(d.created_at),
        "size_slug": slug, "snapshot_ids": snapshot_ids, "backup_ids": [], "features": [],
        "tags": d.tags, "volume_ids": [], "next_backup_window": null, "kernel": null,
        "size": super::create::size_json(&d.plan),
        "image": { "id": 112_929_454, "name": "24.04 (LTS) x64", "distribution": "Ubuntu",
                   "slug": d.image, "public": true, "regions": [d.region], "type": "base",
                   "created_at": "2024-04-25T00:00:00Z", "min_disk_size": 7,
                   "size_gigabytes": 2.36, "description": "Ubuntu 24.04 (LTS) x64",
                   "tags": [], "status": "available" },
        "networks": networks,
        "region": { "slug": d.region, "name": d.region, "available": true,
                    "sizes": super::create::size_slugs(), "features": ["metadata"] },
        "vpc_uuid": "5a4981aa-9653-4bd1-bef5-d6bff52042e4"
    })
}

fn action_json(a: &Action, now: f64) -> Value {
    json!({
        "id": a.id, "status": a.status(now), "type": a.work.type_name(),
        "started_at": iso(a.timeline.started()),
        "completed_at": a.completed_at(now).map(iso),
        "resource_id": a.droplet, "resource_type": "droplet", "region_slug": a.region
    })
}

/// A snapshot as `/droplets/{id}/snapshots` shows it (int id), or with
/// `account_view` as `/snapshots` shows it (string ids).
fn image_json(i: &Image, account_view: bool) -> Value {
    let mut body = json!({
        "id": i.id, "name": i.name, "created_at": iso(i.created_at), "regions": [i.region],
        "min_disk_size": i.min_disk_size, "size_gigabytes": i.size_gigabytes, "type": "snapshot"
    });
    if account_view {
        body["id"] = json!(i.id.to_string());
        body["resource_id"] = json!(i.droplet.to_string());
        body["resource_type"] = json!("droplet");
        body["tags"] = json!(i.tags);
    }
    body
}

async fn account() -> Response {
    ok(
        StatusCode::OK,
        json!({ "account": {
            "droplet_limit": 500, "floating_ip_limit": 10, "volume_limit": 100,
            "email": "sim@kastell.invalid", "uuid": "b6fr89dbf6d9156cace5f3c78dc9851d957381ef",
            "email_verified": true, "status": "active", "status_message": "",
            "team": { "uuid": "5df3e3004a1a4a1b8b9a4a7bb7cbb7d3", "name": "kastell-sim" }
        }}),
    )
}

async fn list_droplets(
    State(app): State<App>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (world, now) = app.world();
    let tag = query.get("tag_name").cloned();
    let ours: Vec<&Droplet> = world
        .our_droplets()
        .into_iter()
        .filter(|d| tag.as_ref().is_none_or(|t| d.tags.contains(t)))
        .collect();
    let path = match &tag {
        Some(tag) => format!("/droplets?tag_name={tag}&"),
        None => "/droplets?".to_owned(),
    };
    let (page, paging) = paged(&world.base, &path, &ours, &query);
    let droplets: Vec<Value> = page.iter().map(|d| droplet_json(d, &world, now)).collect();
    ok(
        StatusCode::OK,
        with_page(json!({ "droplets": droplets }), paging),
    )
}

async fn get_droplet(State(app): State<App>, Path(raw): Path<String>) -> Response {
    let (world, now) = app.world();
    match id(&raw).and_then(|id| world.droplet(id)) {
        Ok(d) => ok(
            StatusCode::OK,
            json!({ "droplet": droplet_json(d, &world, now) }),
        ),
        Err(refusal) => app.refuse(refusal),
    }
}

async fn post_action(State(app): State<App>, Path(raw): Path<String>, body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return app.bad_request("The request body is not valid JSON.");
    };
    let (mut world, now) = app.world();
    let droplet = match id(&raw).and_then(|id| world.droplet(id).map(|d| (id, d.name.clone()))) {
        Ok(found) => found,
        Err(refusal) => return app.refuse(refusal),
    };
    let work = match request.get("type").and_then(Value::as_str) {
        Some("reboot") => Work::Reboot,
        Some("power_cycle") => Work::PowerCycle,
        Some("snapshot") => Work::Snapshot {
            name: request
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{}-{}", droplet.1, (now * 1000.0) as u64)),
        },
        Some("rebuild") => match request
            .get("image")
            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
        {
            Some(image) => Work::Rebuild { image },
            None => {
                return app.refuse(Refusal::Unprocessable(
                    "You specified an invalid image.".into(),
                ));
            }
        },
        Some(other) => {
            return app.refuse(Refusal::Unprocessable(format!(
                "{other} is not a supported action type in this simulator."
            )));
        }
        None => return app.refuse(Refusal::Unprocessable("type is required.".into())),
    };
    match world
        .start(now, droplet.0, work)
        .and_then(|action| world.action(action))
    {
        Ok(action) => ok(
            StatusCode::CREATED,
            json!({ "action": action_json(action, now) }),
        ),
        Err(refusal) => app.refuse(refusal),
    }
}

async fn get_action(State(app): State<App>, Path(raw): Path<String>) -> Response {
    let (world, now) = app.world();
    match id(&raw).and_then(|id| world.action(id)) {
        Ok(action) => ok(
            StatusCode::OK,
            json!({ "action": action_json(action, now) }),
        ),
        Err(refusal) => app.refuse(refusal),
    }
}

async fn get_droplet_action(
    State(app): State<App>,
    Path((droplet, action)): Path<(String, String)>,
) -> Response {
    let (world, now) = app.world();
    let found = id(&droplet).and_then(|d| {
        let action = world.action(id(&action)?)?;
        if action.droplet == d {
            Ok(action)
        } else {
            Err(Refusal::NotFound)
        }
    });
    match found {
        Ok(action) => ok(
            StatusCode::OK,
            json!({ "action": action_json(action, now) }),
        ),
        Err(refusal) => app.refuse(refusal),
    }
}

async fn droplet_snapshots(
    State(app): State<App>,
    Path(raw): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (world, _) = app.world();
    let droplet = match id(&raw) {
        Ok(droplet) => droplet,
        Err(refusal) => return app.refuse(refusal),
    };
    match world.snapshots_of(droplet) {
        Ok(images) => {
            let path = format!("/droplets/{droplet}/snapshots");
            let (page, paging) = paged(&world.base, &path, &images, &query);
            let snapshots: Vec<Value> = page.iter().map(|i| image_json(i, false)).collect();
            ok(
                StatusCode::OK,
                with_page(json!({ "snapshots": snapshots }), paging),
            )
        }
        Err(refusal) => app.refuse(refusal),
    }
}

async fn list_snapshots(
    State(app): State<App>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (world, _) = app.world();
    let images = match query.get("resource_type").map(String::as_str) {
        None | Some("droplet") => world.our_images(),
        Some(_) => Vec::new(),
    };
    let (page, paging) = paged(&world.base, "/snapshots", &images, &query);
    let snapshots: Vec<Value> = page.iter().map(|i| image_json(i, true)).collect();
    ok(
        StatusCode::OK,
        with_page(json!({ "snapshots": snapshots }), paging),
    )
}

async fn get_snapshot(State(app): State<App>, Path(raw): Path<String>) -> Response {
    let (world, _) = app.world();
    let found = id(&raw).and_then(|id| {
        world
            .our_images()
            .into_iter()
            .find(|i| i.id == id)
            .ok_or(Refusal::NotFound)
    });
    match found {
        Ok(image) => ok(
            StatusCode::OK,
            json!({ "snapshot": image_json(image, true) }),
        ),
        Err(refusal) => app.refuse(refusal),
    }
}

async fn delete_snapshot(State(app): State<App>, Path(raw): Path<String>) -> Response {
    let (mut world, _) = app.world();
    match id(&raw).and_then(|id| world.delete_image(id)) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(refusal) => app.refuse(refusal),
    }
}

async fn not_found(State(app): State<App>) -> Response {
    app.refuse(Refusal::NotFound)
}
