//! The simulated server creation and deletion, SSH keys, server types and
//! label selectors.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kastell_sim::Timeline;
use serde_json::{Value, json};

use super::catalog;
use super::render::{self, PageLink};
use super::routes::{Answer, Fail, Q, S, id_of, missing, paging, param};
use super::state::{Job, SimServer, World, timestamp};

/// Virtual seconds a new server is `initializing`, then `starting`.
const INITIALIZING: f64 = 15.0;
const STARTING: f64 = 10.0;

/// An uploaded SSH key.
#[derive(Debug, Clone)]
pub(crate) struct SimKey {
    name: String,
    public_key: String,
    labels: BTreeMap<String, String>,
    created: f64,
}

/// The id of the SSH key a person uploaded to the seeded project (named
/// `laptop`, without kastell's label).
pub(crate) const PERSON_KEY: i64 = 2_300_000;

impl SimKey {
    /// The key a person uploaded to the seeded project, a day before `now`.
    pub(crate) fn person(now: f64) -> Self {
        Self {
            name: "laptop".into(),
            public_key: kastell_sim::PERSON_PUBLIC_KEY.into(),
            labels: BTreeMap::from([("owner".to_owned(), "me".to_owned())]),
            created: now - 86_400.0,
        }
    }
}

/// Hetzner's `invalid_input` naming the fields that were wrong.
fn invalid_fields(fields: &[(&str, &str)]) -> Response {
    let names: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
    let details: Vec<Value> = fields
        .iter()
        .map(|(name, message)| json!({"name": name, "messages": [message]}))
        .collect();
    let body = json!({"error": {
        "code": "invalid_input",
        "message": format!("invalid input in fields '{}'", names.join("', '")),
        "details": {"fields": details},
    }});
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// The JSON object body, or `json_error`.
fn object(body: &Bytes) -> Result<serde_json::Map<String, Value>, Fail> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Fail::new(
            StatusCode::BAD_REQUEST,
            "json_error",
            "request body is not a JSON object",
        )),
    }
}

/// Labels as a map of strings; `None` when they are not one.
pub(super) fn labels(value: Option<&Value>) -> Option<BTreeMap<String, String>> {
    match value {
        None => Some(BTreeMap::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
            .collect(),
        Some(_) => None,
    }
}

/// Whether `labels` satisfy a label selector: comma-separated `k=v`,
/// `k==v`, `k!=v`, `k` (present) and `!k` (absent) terms, all of them.
pub(crate) fn selects(selector: &str, labels: &BTreeMap<String, String>) -> bool {
    selector.split(',').map(str::trim).all(|term| {
        if let Some((k, v)) = term.split_once("!=") {
            labels.get(k.trim()).map(String::as_str) != Some(v.trim())
        } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            labels.get(k.trim()).map(String::as_str) == Some(v.trim())
        } else if let Some(k) = term.strip_prefix('!') {
            !labels.contains_key(k.trim())
        } else {
            term.is_empty() || labels.contains_key(term)
        }
    })
}

/// `POST /servers`: validates the body field by field, then creates the
/// server `initializing`, with the pool's next address.
pub(super) async fn create_server(State(s): S, body: Bytes) -> Answer {
    let body = object(&body)?;
    let text = |key: &str| body.get(key).and_then(Value::as_str).map(str::trim);
    let mut wrong = Vec::new();
    let name = text("name").unwrap_or("");
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if !name_ok {
        wrong.push(("name", "must be a valid hostname"));
    }
    let kind = text("server_type").and_then(catalog::server_type);
    if kind.is_none() {
        wrong.push(("server_type", "server type not found"));
    }
    let image = text("image").unwrap_or("");
    let place = match text("location") {
        None => Some(&catalog::LOCATIONS[0]),
        Some(l) => catalog::location(l),
    };
    if place.is_none() {
        wrong.push(("location", "location not found"));
    }
    let label_map = labels(body.get("labels"));
    if label_map.is_none() {
        wrong.push(("labels", "labels must be an object of strings"));
    }
    let keys: Option<Vec<String>> = match body.get("ssh_keys") {
        None => Some(Vec::new()),
        Some(Value::Array(keys)) => keys
            .iter()
            .map(|k| match k {
                Value::Number(n) => Some(n.to_string()),
                Value::String(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        Some(_) => None,
    };
    let now = s.now();
    let mut world = s.world(now);
    let image_ok = world
        .images
        .values()
        .any(|i| i.ours && i.kind == "system" && i.name.as_deref() == Some(image));
    if !image_ok {
        wrong.push(("image", "image not found"));
    }
    let keys_ok = keys.as_ref().is_some_and(|keys| {
        keys.iter().all(|k| {
            world
                .ssh_keys
                .iter()
                .any(|(id, key)| id.to_string() == *k || key.name == *k)
        })
    });
    if !keys_ok {
        wrong.push(("ssh_keys", "ssh key not found"));
    }
    let (Some(kind), Some(place), Some(label_map), true) =
        (kind, place, label_map, wrong.is_empty())
    else {
        return Ok(invalid_fields(&wrong));
    };
    if world.servers.values().any(|v| v.ours && v.name == name) {
        return Err(Fail::new(
            StatusCode::CONFLICT,
            "uniqueness_error",
            "server name is already used",
        ));
    }
    let new = NewServer {
        name,
        kind,
        place,
        image,
        labels: label_map,
        public: s.addresses.next(),
    };
    let server = world.create_server(now, new);
    let action = world.record_action(
        now,
        "create_server",
        INITIALIZING + STARTING,
        vec![(server, "server")],
        false,
    );
    let shown = world
        .servers
        .get(&server)
        .map(|v| render::server(v, now))
        .unwrap_or(Value::Null);
    let answer = json!({
        "server": shown,
        "action": render::action(&action, now),
        "next_actions": [],
        "root_password": null,
    });
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// `DELETE /servers/{id}`: the server is gone at once; answers the
/// `delete_server` action.
pub(super) async fn delete_server(State(s): S, Path(id): Path<String>) -> Answer {
    let id = id_of(&id, "server")?;
    let now = s.now();
    let mut world = s.world(now);
    if world.servers.get(&id).filter(|v| v.ours).is_none() {
        return Err(missing("server", id));
    }
    world.servers.remove(&id);
    let action = world.record_action(now, "delete_server", 0.0, vec![(id, "server")], false);
    Ok(render::one(
        StatusCode::OK,
        "action",
        render::action(&action, now),
    ))
}

/// What a validated `POST /servers` asks for.
struct NewServer<'a> {
    name: &'a str,
    kind: &'static catalog::ServerType,
    place: &'static catalog::Location,
    image: &'a str,
    labels: BTreeMap<String, String>,
    public: std::net::Ipv4Addr,
}

impl World {
    /// Adds a server created through the API: `initializing`, then
    /// `starting` (locked throughout), then `running` with its first boot.
    fn create_server(&mut self, now: f64, new: NewServer<'_>) -> i64 {
        let NewServer {
            name,
            kind,
            place,
            image,
            labels,
            public,
        } = new;
        let id = self.next_server;
        self.next_server += 1;
        let steps = [("initializing", INITIALIZING), ("starting", STARTING)];
        let timeline = Timeline::new(now, &steps, "running");
        let server = SimServer {
            id,
            name: name.to_owned(),
            ours: true,
            public: Some(public),
            private: None,
            created: now,
            disk: kind.disk,
            status: "running".into(),
            boots: 0,
            job: Some(Job::new(timeline, now + INITIALIZING + STARTING, true)),
            server_type: kind.name,
            location: place.name,
            image: image.to_owned(),
            labels,
            via_api: true,
        };
        self.servers.insert(id, server);
        id
    }
}

fn key_json(id: i64, key: &SimKey) -> Value {
    let digest = key
        .public_key
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
    let bytes = digest.to_be_bytes();
    let fingerprint: Vec<String> = bytes
        .iter()
        .chain(bytes.iter())
        .map(|b| format!("{b:02x}"))
        .collect();
    json!({
        "id": id, "name": key.name, "fingerprint": fingerprint.join(":"),
        "public_key": key.public_key, "labels": key.labels, "created": timestamp(key.created),
    })
}

/// `POST /ssh_keys`: `name` and `public_key` required, names and keys
/// unique.
pub(super) async fn create_key(State(s): S, body: Bytes) -> Answer {
    let body = object(&body)?;
    let name = body.get("name").and_then(Value::as_str).unwrap_or("");
    let public_key = body.get("public_key").and_then(Value::as_str).unwrap_or("");
    let label_map = labels(body.get("labels"));
    let mut wrong = Vec::new();
    if name.trim().is_empty() {
        wrong.push(("name", "is required"));
    }
    if !public_key.starts_with("ssh-") && !public_key.starts_with("ecdsa-") {
        wrong.push(("public_key", "invalid public key"));
    }
    let Some(label_map) = label_map.filter(|_| wrong.is_empty()) else {
        if wrong.is_empty() {
            wrong.push(("labels", "labels must be an object of strings"));
        }
        return Ok(invalid_fields(&wrong));
    };
    let now = s.now();
    let mut world = s.world(now);
    // Hetzner compares fingerprints: the same key under another comment
    // is a duplicate.
    let taken = |what: &str| {
        Fail::new(
            StatusCode::CONFLICT,
            "uniqueness_error",
            format!("SSH key with the same {what} already exists"),
        )
    };
    let keys = || world.ssh_keys.values();
    if keys().any(|k| kastell_sim::same_public_key(&k.public_key, public_key)) {
        return Err(taken("fingerprint"));
    }
    if keys().any(|k| k.name == name) {
        return Err(taken("name"));
    }
    let id = world.next_key;
    world.next_key += 1;
    let key = SimKey {
        name: name.to_owned(),
        public_key: public_key.to_owned(),
        labels: label_map,
        created: now,
    };
    let shown = key_json(id, &key);
    world.ssh_keys.insert(id, key);
    Ok(render::one(StatusCode::CREATED, "ssh_key", shown))
}

/// `GET /ssh_keys`, with `name` and `label_selector` filters.
pub(super) async fn list_keys(State(s): S, Query(q): Q, link: PageLink) -> Answer {
    let (page, per_page) = paging(&q)?;
    let world = s.world(s.now());
    let items: Vec<Value> = world
        .ssh_keys
        .iter()
        .filter(|(_, k)| param(&q, "name").is_none_or(|n| n == k.name))
        .filter(|(_, k)| param(&q, "label_selector").is_none_or(|sel| selects(sel, &k.labels)))
        .map(|(id, k)| key_json(*id, k))
        .collect();
    Ok(render::page("ssh_keys", &items, page, per_page, &link))
}

pub(super) async fn get_key(State(s): S, Path(id): Path<String>) -> Answer {
    let id = id_of(&id, "ssh_key")?;
    let world = s.world(s.now());
    match world.ssh_keys.get(&id) {
        Some(key) => Ok(render::one(StatusCode::OK, "ssh_key", key_json(id, key))),
        None => Err(missing("ssh_key", id)),
    }
}

/// `DELETE /ssh_keys/{id}`: 204.
pub(super) async fn delete_key(State(s): S, Path(id): Path<String>) -> Answer {
    let id = id_of(&id, "ssh_key")?;
    let mut world = s.world(s.now());
    match world.ssh_keys.remove(&id) {
        Some(_) => Ok(StatusCode::NO_CONTENT.into_response()),
        None => Err(missing("ssh_key", id)),
    }
}

/// `GET /server_types`, with the `name` filter.
pub(super) async fn server_types(Query(q): Q, link: PageLink) -> Answer {
    let (page, per_page) = paging(&q)?;
    let items: Vec<Value> = catalog::TYPES
        .iter()
        .filter(|t| param(&q, "name").is_none_or(|n| n == t.name))
        .map(catalog::server_type_json)
        .collect();
    Ok(render::page("server_types", &items, page, per_page, &link))
}
