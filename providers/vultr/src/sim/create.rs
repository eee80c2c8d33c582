//! Simulated instance creation and deletion, SSH keys and plans.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as Shared};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::routes::{App, answer, page};
use super::state::{NewInstance, Refusal};
use super::util::{iso_at, uuid};

/// Plans on offer: id, RAM MB, disk GB, monthly and hourly dollars.
const PLANS: [(&str, u64, u64, f64, f64); 3] = [
    ("vc2-1c-1gb", 1024, 25, 5.0, 0.007),
    ("vc2-1c-2gb", 2048, 55, 10.0, 0.015),
    ("vc2-2c-4gb", 4096, 80, 20.0, 0.03),
];

/// Region ids every plan is offered in.
const REGIONS: [&str; 6] = ["ewr", "ord", "ams", "fra", "lhr", "sgp"];

/// Operating systems by `os_id`.
const OSES: [u64; 3] = [2284, 1743, 2136];

/// Seed of uploaded key ids.
const KEY_SEED: u64 = 0x6b65_7973;

/// The id of the person's key in the seeded account.
pub(crate) fn person_key_id() -> String {
    uuid(KEY_SEED, 0)
}

/// An uploaded SSH key.
#[derive(Debug, Clone)]
pub(crate) struct SimKey {
    pub(crate) id: String,
    name: String,
    ssh_key: String,
    created: f64,
}

impl SimKey {
    /// The key a person uploaded to the seeded account (`laptop`, not
    /// kastell's), with the id [`person_key_id`].
    pub(crate) fn person() -> Self {
        Self {
            id: person_key_id(),
            name: "laptop".into(),
            ssh_key: kastell_sim::PERSON_PUBLIC_KEY.into(),
            created: -86_400.0,
        }
    }

    fn json(&self) -> Value {
        json!({ "id": self.id, "date_created": iso_at(self.created),
                "name": self.name, "ssh_key": self.ssh_key })
    }
}

fn invalid(message: &str) -> Refusal {
    Refusal::Invalid(message.to_owned())
}

/// A JSON object body, or Vultr's 400.
fn object(bytes: &Bytes) -> Result<serde_json::Map<String, Value>, Refusal> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(invalid("Invalid JSON body.")),
    }
}

/// A list of strings (absent is empty).
fn strings(body: &serde_json::Map<String, Value>, key: &str) -> Result<Vec<String>, Refusal> {
    match body.get(key) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| invalid(&format!("Invalid {key}: a list of strings is required."))),
        Some(_) => Err(invalid(&format!(
            "Invalid {key}: a list of strings is required."
        ))),
    }
}

/// `POST /instances`: `region`, `plan` and one of `os_id`, `iso_id`,
/// `snapshot_id`, `app_id`, `image_id` required (only `os_id` is served);
/// SSH keys must exist; 202 with the instance `pending`.
pub(crate) async fn create_instance(Shared(app): Shared<App>, bytes: Bytes) -> Response {
    let (mut state, now) = app.settled();
    answer((|| {
        let body = object(&bytes)?;
        let text = |key: &str| body.get(key).and_then(Value::as_str).unwrap_or("");
        let region = REGIONS
            .iter()
            .find(|r| **r == text("region"))
            .ok_or_else(|| invalid("Invalid region."))?;
        let plan = PLANS
            .iter()
            .find(|p| p.0 == text("plan"))
            .ok_or_else(|| invalid("Invalid plan."))?;
        let sources = ["os_id", "iso_id", "snapshot_id", "app_id", "image_id"];
        if !sources.iter().any(|k| body.contains_key(*k)) {
            return Err(invalid(
                "Missing os_id, iso_id, snapshot_id, app_id or image_id.",
            ));
        }
        let os_id = body
            .get("os_id")
            .and_then(Value::as_u64)
            .filter(|os| OSES.contains(os))
            .ok_or_else(|| invalid("Invalid os_id."))?;
        let keys = strings(&body, "sshkey_id")?;
        if !keys
            .iter()
            .all(|k| state.keys.iter().any(|key| key.id == *k))
        {
            return Err(invalid("Invalid SSH key."));
        }
        let tags = strings(&body, "tags")?;
        let label = text("label").to_owned();
        let new = NewInstance {
            label,
            region,
            plan: (plan.0, plan.1, plan.2),
            os_id,
            tags,
            main_ip: app.ctx.addresses.next(),
        };
        let mut shown = state.create_instance(new, now);
        shown["default_password"] = json!("");
        Ok((StatusCode::ACCEPTED, Json(json!({ "instance": shown }))).into_response())
    })())
}

/// `DELETE /instances/{id}`: 204, gone at once.
pub(crate) async fn delete_instance(Shared(app): Shared<App>, Path(id): Path<String>) -> Response {
    let (mut state, _) = app.settled();
    answer(
        state
            .delete_instance(&id)
            .map(|()| StatusCode::NO_CONTENT.into_response()),
    )
}

/// `POST /ssh-keys`: `name` and `ssh_key` required; 201.
pub(crate) async fn create_key(Shared(app): Shared<App>, bytes: Bytes) -> Response {
    let (mut state, now) = app.settled();
    answer((|| {
        let body = object(&bytes)?;
        let name = body.get("name").and_then(Value::as_str).unwrap_or("");
        let ssh_key = body.get("ssh_key").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() {
            return Err(invalid("Missing name."));
        }
        if !ssh_key.starts_with("ssh-") && !ssh_key.starts_with("ecdsa-") {
            return Err(invalid("Invalid ssh_key."));
        }
        state.next_id += 1;
        let key = SimKey {
            id: uuid(KEY_SEED, state.next_id),
            name: name.to_owned(),
            ssh_key: ssh_key.to_owned(),
            created: now,
        };
        let shown = key.json();
        state.keys.push(key);
        Ok((StatusCode::CREATED, Json(json!({ "ssh_key": shown }))).into_response())
    })())
}

/// `GET /ssh-keys`.
pub(crate) async fn list_keys(
    Shared(app): Shared<App>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let (state, _) = app.settled();
    let items = state.keys.iter().map(SimKey::json).collect();
    answer(page("ssh_keys", items, &params).map(|v| Json(v).into_response()))
}

/// `GET /ssh-keys/{id}`: `{"ssh_key": {...}}`.
pub(crate) async fn get_key(Shared(app): Shared<App>, Path(id): Path<String>) -> Response {
    let (state, _) = app.settled();
    match state.keys.iter().find(|k| k.id == id) {
        Some(key) => Json(json!({ "ssh_key": key.json() })).into_response(),
        None => answer(Err(Refusal::NotFound("ssh key not found"))),
    }
}

/// `DELETE /ssh-keys/{id}`: 204.
pub(crate) async fn delete_key(Shared(app): Shared<App>, Path(id): Path<String>) -> Response {
    let (mut state, _) = app.settled();
    let before = state.keys.len();
    state.keys.retain(|k| k.id != id);
    if state.keys.len() == before {
        return answer(Err(Refusal::NotFound("ssh key not found")));
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /plans`, with the `type` filter.
pub(crate) async fn list_plans(Query(params): Query<HashMap<String, String>>) -> Response {
    let items = PLANS
        .iter()
        .filter(|_| params.get("type").is_none_or(|t| t == "all" || t == "vc2"))
        .map(|(id, ram, disk, monthly, hourly)| {
            json!({
                "id": id, "vcpu_count": if *ram >= 4096 { 2 } else { 1 }, "ram": ram,
                "disk": disk, "disk_count": 1, "bandwidth": 2048, "monthly_cost": monthly,
                "hourly_cost": hourly, "type": "vc2", "locations": REGIONS,
            })
        })
        .collect();
    answer(page("plans", items, &params).map(|v| Json(v).into_response()))
}
