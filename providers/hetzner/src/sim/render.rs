//! Hetzner's JSON shapes for the simulated resources, and its pagination.

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kastell_sim::page_of;
use serde_json::{Value, json};

use super::catalog;
use super::state::{SimAction, SimImage, SimServer, timestamp};

/// A server as `GET /servers/{id}` shows it at `now`, with every field
/// Hetzner's specification marks required.
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
    let kind = catalog::server_type(s.server_type).unwrap_or(&catalog::TYPES[0]);
    let place = catalog::location(s.location).unwrap_or(&catalog::LOCATIONS[0]);
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
        "server_type": catalog::server_type_json(kind),
        "primary_disk_size": s.disk,
        "datacenter": catalog::datacenter_json(place),
        "location": catalog::location_json(place),
        "image": system_image(&s.image, s.created),
        "iso": null,
        "rescue_enabled": false,
        "backup_window": null,
        "outgoing_traffic": 0,
        "ingoing_traffic": 0,
        "included_traffic": 21_990_232_555_520_u64,
        "protection": {"delete": false, "rebuild": false},
        "labels": s.labels,
        "volumes": [],
        "load_balancers": [],
        "placement_group": null,
    })
}

/// The system image a server was created from, with every required field.
fn system_image(name: &str, created: f64) -> Value {
    let (flavor, version) = name.split_once('-').unwrap_or((name, ""));
    json!({
        "id": 161_547_269, "type": "system", "status": "available", "name": name,
        "description": format!("{} {}", flavor, version), "image_size": null, "disk_size": 5,
        "created": timestamp(created - 86_400.0 * 400.0), "created_from": null, "bound_to": null,
        "os_flavor": flavor, "os_version": version, "rapid_deploy": true,
        "protection": {"delete": false}, "deprecated": null, "deleted": null, "labels": {},
        "architecture": "x86",
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

/// Where a list was asked for (host, path and query), for the `Link`
/// header Hetzner sends beside `meta.pagination`.
#[derive(Debug, Clone)]
pub(crate) struct PageLink {
    base: String,
    query: Vec<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for PageLink {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1");
        let query = parts
            .uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|pair| !pair.is_empty())
            .filter(|pair| !pair.starts_with("page=") && !pair.starts_with("per_page="))
            .map(str::to_owned)
            .collect();
        Ok(Self {
            base: format!("http://{host}{}", parts.uri.path()),
            query,
        })
    }
}

impl PageLink {
    fn url(&self, page: usize, per_page: usize) -> String {
        let mut query = self.query.clone();
        query.push(format!("page={page}"));
        query.push(format!("per_page={per_page}"));
        format!("{}?{}", self.base, query.join("&"))
    }

    /// `<...>; rel="prev", <...>; rel="next", <...>; rel="last"`, only the
    /// relations that exist; `None` on a single page.
    fn header(&self, page: usize, pages: usize, per_page: usize) -> Option<String> {
        let mut rels = Vec::new();
        if page > 1 {
            let prev = (page - 1).min(pages.max(1));
            rels.push(format!("<{}>; rel=\"prev\"", self.url(prev, per_page)));
        }
        if page < pages {
            rels.push(format!("<{}>; rel=\"next\"", self.url(page + 1, per_page)));
            rels.push(format!("<{}>; rel=\"last\"", self.url(pages, per_page)));
        }
        (!rels.is_empty()).then(|| rels.join(", "))
    }
}

/// One page of `items` under `key`, with Hetzner's `meta.pagination` and
/// `Link` header.
pub(crate) fn page(
    key: &str,
    items: &[Value],
    page: usize,
    per_page: usize,
    link: &PageLink,
) -> Response {
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
    let mut response = (StatusCode::OK, Json(body)).into_response();
    if let Some(value) = link
        .header(page, pages, per_page)
        .and_then(|v| HeaderValue::from_str(&v).ok())
    {
        response.headers_mut().insert(header::LINK, value);
    }
    response
}

/// `status` with `{key: value}`.
pub(crate) fn one(status: StatusCode, key: &str, value: Value) -> Response {
    (status, Json(json!({ key: value }))).into_response()
}
