//! The simulated image endpoints (snapshots live here), the rebuild's image
//! lookup and the price list.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::catalog;
use super::render::{self, PageLink};
use super::routes::{Answer, Fail, Q, S, id_of, invalid, missing, paging, param};
use super::servers::selects;
use super::state::{SimImage, World};

/// The image a rebuild names: an id (string or number) of a visible image,
/// or a system image's name.
pub(super) fn rebuild_image(world: &World, image: Option<&Value>) -> Result<SimImage, Fail> {
    let wanted = match image {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(invalid("image is required")),
    };
    let found = match wanted.parse::<i64>() {
        Ok(id) => world.images.get(&id),
        Err(_) => world
            .images
            .values()
            .find(|i| i.kind == "system" && i.name.as_deref() == Some(wanted.as_str())),
    };
    found.filter(|i| i.ours).cloned().ok_or_else(|| {
        Fail::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("image {wanted:?} not found"),
        )
    })
}

/// `GET /images` with `type`, `status` and `sort` (`id`, `created`, with
/// `:asc`/`:desc`); system images and our own images only.
pub(super) async fn list_images(State(s): S, Query(q): Q, link: PageLink) -> Answer {
    let (page, per_page) = paging(&q)?;
    let types: Vec<&str> = q
        .iter()
        .filter(|(k, _)| k == "type")
        .flat_map(|(_, v)| v.split(','))
        .collect();
    let now = s.now();
    let world = s.world(now);
    let mut images: Vec<&SimImage> = world
        .images
        .values()
        .filter(|i| i.ours)
        .filter(|i| types.is_empty() || types.contains(&i.kind))
        .collect();
    match param(&q, "sort").unwrap_or("id") {
        "id" | "id:asc" => {}
        "id:desc" => images.reverse(),
        "created" | "created:asc" => images.sort_by(|a, b| a.created.total_cmp(&b.created)),
        "created:desc" => {
            images.sort_by(|a, b| b.created.total_cmp(&a.created).then(b.id.cmp(&a.id)))
        }
        other => return Err(invalid(&format!("unsupported sort {other:?}"))),
    }
    let items: Vec<Value> = images
        .into_iter()
        .map(|i| render::image(i, now))
        .filter(|i| param(&q, "status").is_none_or(|st| i["status"] == st))
        .filter(|i| {
            param(&q, "label_selector").is_none_or(|sel| {
                super::servers::labels(Some(&i["labels"])).is_some_and(|l| selects(sel, &l))
            })
        })
        .collect();
    Ok(render::page("images", &items, page, per_page, &link))
}

pub(super) async fn get_image(State(s): S, Path(id): Path<String>) -> Answer {
    let id = id_of(&id, "image")?;
    let now = s.now();
    let world = s.world(now);
    match world.images.get(&id).filter(|i| i.ours) {
        Some(i) => Ok(render::one(StatusCode::OK, "image", render::image(i, now))),
        None => Err(missing("image", id)),
    }
}

/// `DELETE /images/{id}`: 204; refused for system images, protected
/// images (423 `protected`) and images still being created (423 `locked`).
pub(super) async fn delete_image(State(s): S, Path(id): Path<String>) -> Answer {
    let id = id_of(&id, "image")?;
    let now = s.now();
    let mut world = s.world(now);
    let image = world
        .images
        .get(&id)
        .filter(|i| i.ours)
        .ok_or_else(|| missing("image", id))?;
    if image.kind == "system" {
        return Err(Fail::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unsupported_error",
            "system images cannot be deleted",
        ));
    }
    if image.protected {
        return Err(Fail::new(
            StatusCode::LOCKED,
            "protected",
            "image is protected against deletion",
        ));
    }
    if !image.available_at(now) {
        return Err(Fail::new(
            StatusCode::LOCKED,
            "locked",
            "image is being created",
        ));
    }
    world.images.remove(&id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The price list with every field the spec requires: the image price
/// (snapshot estimates) and the server types' prices per location (what a
/// created server costs).
pub(super) async fn pricing() -> Response {
    let body = json!({"pricing": {
        "currency": "EUR",
        "vat_rate": "19.00",
        "image": {"price_per_gb_month": {"net": "0.0100000000", "gross": "0.0119000000000000"}},
        "floating_ip": {"price_monthly": {"net": "3.0000000000", "gross": "3.5700000000000000"}},
        "floating_ips": [],
        "primary_ips": [],
        "server_backup": {"percentage": "20.00"},
        "server_types": catalog::pricing_json(),
        "load_balancer_types": [],
        "volume": {"price_per_gb_month": {"net": "0.0440000000", "gross": "0.0523600000000000"}},
    }});
    (StatusCode::OK, axum::Json(body)).into_response()
}
