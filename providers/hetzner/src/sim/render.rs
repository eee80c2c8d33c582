//! Hetzner's JSON shapes for the simulated resources, and its pagination.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kastell_sim::page_of;
use serde_json::{Value, json};

use super::state::{SimAction, SimImage, SimServer, timestamp};

/// A server as `GET /servers/{id}` shows it at `now`.
pub(crate) fn server(s: &SimServer, now: f64) -> Value {
    let ipv4 = s.public.map(|ip| {
        let o = ip.octets();
        json!({
            "id": 800_000 + (s.id % 100_000), "ip": ip.to_string(), "blocked": false,
            "dns_ptr": format!("static.{}.{}.{}.{}.clients.your-server.de", o[3], o[2], o[1], o[0]),
        })
    });
    let private: Vec<Value> = s
        .private
        .iter()
        .map(|ip| json!({"network": 4711, "ip": ip.to_string(), "alias_ips": [], "mac_address": "86:00:00:00:00:01"}))
        .collect();
    json!({
        "id": s.id,
        "name": s.name,
        "status": s.status_at(now),
        "locked": s.locked_at(now),
        "created": timestamp(s.created),
        "public_net": {
            "ipv4": ipv4,
            "ipv6": {"id": 900_000 + (s.id % 100_000), "ip": format!("2001:db8:{:x}::/64", s.id % 65_536), "blocked": false, "dns_ptr": []},
            "floating_ips": [],
            "firewalls": [],
        },
        "private_net": private,
        "server_type": {"id": 1, "name": "cx23", "description": "CX23", "cores": 2, "memory": 4.0,
                        "disk": s.disk, "storage_type": "local", "cpu_type": "shared", "architecture": "x86"},
        "primary_disk_size": s.disk,
        "datacenter": {"id": 4, "name": "fsn1-dc14", "location": {"name": "fsn1"}},
        "location": {"id": 1, "name": "fsn1", "city": "Falkenstein", "country": "DE", "network_zone": "eu-central"},
        "image": {"id": 1, "type": "system", "name": "ubuntu-24.04", "os_flavor": "ubuntu"},
        "iso": null,
        "rescue_enabled": false,
        "backup_window": null,
        "outgoing_traffic": 0,
        "ingoing_traffic": 0,
        "included_traffic": 21_990_232_555_520_u64,
        "protection": {"delete": false, "rebuild": false},
        "labels": {},
        "volumes": [],
        "load_balancers": [],
        "placement_group": null,
    })
}

/// An image as `GET /images/{id}` shows it at `now`.
pub(crate) fn image(i: &SimImage, now: f64) -> Value {
    let available = i.available_at(now);
    json!({
        "id": i.id,
        "type": i.kind,
        "status": match (available, i.failed) {
            (false, _) => "creating",
            (true, false) => "available",
            (true, true) => "unavailable",
        },
        "name": i.name,
        "description": i.description,
        "image_size": if available && !i.failed && i.kind != "system" { json!(i.size) } else { Value::Null },
        "disk_size": i.disk,
        "created": timestamp(i.created),
        "created_from": i.from.as_ref().map(|(id, name)| json!({"id": id, "name": name})),
        "bound_to": null,
        "os_flavor": "ubuntu",
        "os_version": "24.04",
        "architecture": "x86",
        "rapid_deploy": i.kind == "system",
        "protection": {"delete": i.protected},
        "deprecated": null,
        "deleted": null,
        "labels": i.labels,
    })
}

/// An action as `GET /actions/{id}` shows it at `now`: `running` with its
/// progress ramping up, then `success` with `finished` set.
pub(crate) fn action(a: &SimAction, now: f64) -> Value {
    let end = a.started + a.duration;
    let done = now >= end;
    let progress = if done || a.duration <= 0.0 {
        100
    } else {
        (((now - a.started) / a.duration).clamp(0.0, 0.99) * 100.0) as u8
    };
    let resources: Vec<Value> = a
        .resources
        .iter()
        .map(|(id, kind)| json!({"id": id, "type": kind}))
        .collect();
    json!({
        "id": a.id,
        "command": a.command,
        "status": match (done, a.failed) {
            (false, _) => "running",
            (true, false) => "success",
            (true, true) => "error",
        },
        "progress": progress,
        "started": timestamp(a.started),
        "finished": if done { json!(timestamp(end)) } else { Value::Null },
        "resources": resources,
        "error": if done && a.failed {
            json!({"code": "action_failed", "message": "Action failed"})
        } else {
            Value::Null
        },
    })
}

/// One page of `items` under `key`, with Hetzner's `meta.pagination`.
pub(crate) fn page(key: &str, items: &[Value], page: usize, per_page: usize) -> Response {
    let (slice, pages) = page_of(items, page, per_page);
    let opt = |cond: bool, n: usize| if cond { json!(n) } else { Value::Null };
    let body = json!({
        key: slice,
        "meta": {"pagination": {
            "page": page,
            "per_page": per_page,
            "previous_page": opt(page > 1, page.saturating_sub(1)),
            "next_page": opt(page < pages, page + 1),
            "last_page": pages,
            "total_entries": items.len(),
        }},
    });
    (StatusCode::OK, Json(body)).into_response()
}

/// `status` with `{key: value}`.
pub(crate) fn one(status: StatusCode, key: &str, value: Value) -> Response {
    (status, Json(json!({ key: value }))).into_response()
}
