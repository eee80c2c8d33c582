//! Simulated droplet creation and deletion, SSH keys and sizes.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::routes::{App, droplet_json, id, ok, paged, with_page};
use super::state::{Droplet, Owner, PLANS, Plan, Refusal, World};

/// Virtual seconds a created droplet is `new` (the server-creation wait a
/// benchmark states).
pub const PROVISIONING: f64 = 20.0;

/// The regions every size is offered in.
const REGIONS: [&str; 8] = [
    "nyc1", "nyc3", "sfo3", "ams3", "fra1", "lon1", "sgp1", "tor1",
];

/// The images a droplet can be created from.
const IMAGES: [&str; 3] = ["ubuntu-24-04-x64", "ubuntu-22-04-x64", "debian-12-x64"];

/// Monthly and hourly dollars per size slug.
fn prices(slug: &str) -> (f64, f64) {
    match slug {
        "s-1vcpu-1gb" => (6.0, 0.00893),
        "s-1vcpu-2gb" => (12.0, 0.01786),
        _ => (24.0, 0.03571),
    }
}

/// An uploaded SSH key.
#[derive(Debug, Clone)]
pub(crate) struct Key {
    pub(crate) id: u64,
    name: String,
    public_key: String,
    fingerprint: String,
}

/// The id of the SSH key a person uploaded to the seeded account (named
/// `laptop`, not kastell's).
pub(crate) const PERSON_KEY: u64 = 40_999_999;

impl Key {
    /// The key a person uploaded to the seeded account.
    pub(crate) fn person() -> Self {
        Self {
            id: PERSON_KEY,
            name: "laptop".into(),
            public_key: kastell_sim::PERSON_PUBLIC_KEY.into(),
            fingerprint: "3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa".into(),
        }
    }

    fn json(&self) -> Value {
        json!({ "id": self.id, "fingerprint": self.fingerprint,
                "public_key": self.public_key, "name": self.name })
    }
}

/// A size as `GET /v2/sizes` and a droplet's `size` show it.
pub(crate) fn size_json(plan: &Plan) -> Value {
    let (slug, memory, vcpus, disk) = *plan;
    let (monthly, hourly) = prices(slug);
    json!({
        "slug": slug, "memory": memory, "vcpus": vcpus, "disk": disk, "transfer": 2.0,
        "price_monthly": monthly, "price_hourly": hourly, "regions": REGIONS,
        "available": true, "description": "Basic",
    })
}

/// Every size slug.
pub(crate) fn size_slugs() -> Vec<&'static str> {
    PLANS.iter().map(|p| p.0).collect()
}

pub(crate) fn unprocessable(app: &App, message: impl Into<String>) -> Response {
    app.refuse(Refusal::Unprocessable(message.into()))
}

/// Whether `tag` is a valid DigitalOcean tag name.
pub(crate) fn valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 255
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':'))
}

/// `POST /v2/droplets`: checks the body as DigitalOcean does, then adds the
/// droplet `new`; 202 with the droplet and its create action link.
pub(crate) async fn create_droplet(State(app): State<App>, body: Bytes) -> Response {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&body) else {
        return app.bad_request("The request body is not valid JSON.");
    };
    let text = |key: &str| body.get(key).and_then(Value::as_str).unwrap_or("");
    let name = text("name");
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        return unprocessable(
            &app,
            "Name Only valid hostname characters are allowed. (a-z, A-Z, 0-9, . and -)",
        );
    }
    let Some(plan) = PLANS.iter().find(|p| p.0 == text("size")) else {
        return unprocessable(&app, "You specified an invalid size for Droplet creation.");
    };
    let region = match body.get("region") {
        None => "nyc3",
        Some(value) => match value
            .as_str()
            .and_then(|r| REGIONS.iter().find(|x| **x == r))
        {
            Some(region) => region,
            None => {
                return unprocessable(
                    &app,
                    "You specified an invalid region for Droplet creation.",
                );
            }
        },
    };
    if !IMAGES.contains(&text("image")) {
        return unprocessable(&app, "You specified an invalid image for Droplet creation.");
    }
    let tags = match string_list(&body, "tags") {
        Some(tags) if tags.iter().all(|t| valid_tag(t)) => tags,
        _ => {
            return unprocessable(
                &app,
                "tags must be tag names of letters, numbers, colons, dashes and underscores",
            );
        }
    };
    let Some(keys) = body.get("ssh_keys").map_or(Some(Vec::new()), |v| {
        v.as_array()?
            .iter()
            .map(|k| {
                k.as_u64()
                    .map(|n| n.to_string())
                    .or(k.as_str().map(str::to_owned))
            })
            .collect::<Option<Vec<String>>>()
    }) else {
        return unprocessable(&app, "ssh_keys must be a list of ids or fingerprints");
    };
    let (mut world, now) = app.world();
    let known = |k: &String| {
        world
            .keys
            .iter()
            .any(|key| key.id.to_string() == *k || key.fingerprint == *k)
    };
    if !keys.iter().all(known) {
        return unprocessable(&app, "You specified an invalid SSH key.");
    }
    let new = NewDroplet {
        name,
        plan: *plan,
        region,
        image: text("image"),
        tags,
        public_ip: app.ctx.addresses.next(),
    };
    let droplet = world.create(now, new);
    let shown = world
        .droplet(droplet)
        .map(|d| droplet_json(d, &world, now))
        .unwrap_or(Value::Null);
    let action = 36_900_000 + droplet % 100_000;
    ok(
        StatusCode::ACCEPTED,
        json!({ "droplet": shown, "links": { "actions": [{
            "id": action, "rel": "create",
            "href": format!("{}/actions/{action}", world.base),
        }]}}),
    )
}

/// A list of strings at `key` (absent is empty); `None` when it is not one.
fn string_list(body: &Map<String, Value>, key: &str) -> Option<Vec<String>> {
    match body.get(key) {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| t.as_str().map(str::to_owned))
            .collect(),
        Some(_) => None,
    }
}

/// `DELETE /v2/droplets/{id}`: 204, gone at once.
pub(crate) async fn delete_droplet(State(app): State<App>, Path(raw): Path<String>) -> Response {
    let (mut world, _) = app.world();
    let found = id(&raw).and_then(|id| world.droplet(id).map(|d| d.id));
    match found {
        Ok(droplet) => {
            world.droplets.retain(|d| d.id != droplet);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(refusal) => app.refuse(refusal),
    }
}

/// What a checked `POST /v2/droplets` asks for.
struct NewDroplet<'a> {
    name: &'a str,
    plan: Plan,
    region: &'static str,
    image: &'a str,
    tags: Vec<String>,
    public_ip: std::net::Ipv4Addr,
}

impl World {
    /// Adds a droplet created through the API, `new` for a while.
    fn create(&mut self, now: f64, new: NewDroplet<'_>) -> u64 {
        let NewDroplet {
            name,
            plan,
            region,
            image,
            tags,
            public_ip,
        } = new;
        let id = self.next_droplet;
        self.next_droplet += 1;
        let n = (id - 350_000_000) as usize;
        self.droplets.push(Droplet {
            id,
            name: name.to_owned(),
            owner: Owner::Us,
            plan,
            region,
            created_at: now,
            public_ip,
            private_ip: kastell_sim::private_ip(50_000 + n),
            boots: 0,
            busy_with: None,
            tags,
            image: image.to_owned(),
            ready_at: now + PROVISIONING,
            via_api: true,
        });
        id
    }
}

/// `POST /v2/account/keys`: `name` and `public_key` required; a public key
/// already on the account (the same key whatever its comment: DigitalOcean
/// compares fingerprints) is 422 "SSH Key is already in use on your
/// account", in DigitalOcean's envelope.
pub(crate) async fn create_key(State(app): State<App>, body: Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return app.bad_request("The request body is not valid JSON.");
    };
    let name = body.get("name").and_then(Value::as_str).unwrap_or("");
    let public_key = body.get("public_key").and_then(Value::as_str).unwrap_or("");
    if name.is_empty() {
        return unprocessable(&app, "Name can't be blank");
    }
    if !public_key.starts_with("ssh-") && !public_key.starts_with("ecdsa-") {
        return unprocessable(
            &app,
            "Key invalid type, we support 'ssh-rsa', 'ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', or 'ecdsa-sha2-nistp521'",
        );
    }
    let (mut world, _) = app.world();
    if world
        .keys
        .iter()
        .any(|k| kastell_sim::same_public_key(&k.public_key, public_key))
    {
        return unprocessable(&app, "SSH Key is already in use on your account");
    }
    let id = world.next_key;
    world.next_key += 1;
    let digest = public_key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let bytes: Vec<String> = digest
        .to_be_bytes()
        .iter()
        .chain(id.to_be_bytes().iter())
        .map(|b| format!("{b:02x}"))
        .collect();
    let key = Key {
        id,
        name: name.to_owned(),
        public_key: public_key.to_owned(),
        fingerprint: bytes.join(":"),
    };
    let shown = key.json();
    world.keys.push(key);
    ok(StatusCode::CREATED, json!({ "ssh_key": shown }))
}

/// `GET /v2/account/keys`.
pub(crate) async fn list_keys(
    State(app): State<App>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (world, _) = app.world();
    let (page, paging) = paged(&world.base, "/account/keys", &world.keys, &query);
    let keys: Vec<Value> = page.iter().map(Key::json).collect();
    ok(
        StatusCode::OK,
        with_page(json!({ "ssh_keys": keys }), paging),
    )
}

/// `GET /v2/account/keys/{id or fingerprint}`: `{"ssh_key": {...}}`.
pub(crate) async fn get_key(State(app): State<App>, Path(raw): Path<String>) -> Response {
    let (world, _) = app.world();
    match world
        .keys
        .iter()
        .find(|k| k.id.to_string() == raw || k.fingerprint == raw)
    {
        Some(key) => ok(StatusCode::OK, json!({ "ssh_key": key.json() })),
        None => app.refuse(Refusal::NotFound),
    }
}

/// `DELETE /v2/account/keys/{id or fingerprint}`: 204.
pub(crate) async fn delete_key(State(app): State<App>, Path(raw): Path<String>) -> Response {
    let (mut world, _) = app.world();
    let before = world.keys.len();
    world
        .keys
        .retain(|k| k.id.to_string() != raw && k.fingerprint != raw);
    if world.keys.len() == before {
        return app.refuse(Refusal::NotFound);
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /v2/sizes`.
pub(crate) async fn list_sizes(
    State(app): State<App>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (world, _) = app.world();
    let sizes: Vec<Value> = PLANS.iter().map(size_json).collect();
    let (page, paging) = paged(&world.base, "/sizes", &sizes, &query);
    ok(StatusCode::OK, with_page(json!({ "sizes": page }), paging))
}
