//! Tags: `POST /v2/tags` (create; an existing name answers with the tag,
//! as creating is harmless) and `POST /v2/tags/{tag}/resources` (tag
//! droplets and snapshot images of ours: 204; an unknown tag, resource or
//! another account's resource is 404, a resource type other than
//! `droplet` or `image`, or an id that is not a string, 422), which is how
//! kastell marks the snapshots it takes. An image's tags show in
//! `/v2/snapshots` (the account's view), not in a droplet's own snapshot
//! list.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::create::{unprocessable, valid_tag};
use super::routes::{App, id, ok};
use super::state::{Owner, Refusal, World};

/// Whether the account has tag `name`: created with `POST /v2/tags`, or
/// on one of our droplets (creating a droplet with a tag creates it).
fn exists(world: &World, name: &str) -> bool {
    world.tags.iter().any(|t| t == name)
        || world
            .droplets
            .iter()
            .any(|d| d.owner == Owner::Us && d.tags.iter().any(|t| t == name))
}

pub(crate) async fn create_tag(State(app): State<App>, body: Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return app.bad_request("The request body is not valid JSON.");
    };
    let name = body.get("name").and_then(Value::as_str).unwrap_or("");
    if !valid_tag(name) {
        return unprocessable(
            &app,
            "tag names may contain letters, numbers, colons, dashes and underscores (at most 255)",
        );
    }
    let (mut world, _) = app.world();
    if !world.tags.iter().any(|t| t == name) {
        world.tags.push(name.to_owned());
    }
    ok(
        StatusCode::CREATED,
        json!({ "tag": { "name": name, "resources": { "count": 0 } } }),
    )
}

pub(crate) async fn tag_resources(
    State(app): State<App>,
    Path(tag): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return app.bad_request("The request body is not valid JSON.");
    };
    let Some(resources) = body.get("resources").and_then(Value::as_array) else {
        return unprocessable(&app, "resources is required");
    };
    let (mut world, _) = app.world();
    if !exists(&world, &tag) {
        return app.refuse(Refusal::NotFound);
    }
    // Check every resource before tagging any.
    let mut droplets = Vec::new();
    let mut images = Vec::new();
    for resource in resources {
        let Some(raw) = resource.get("resource_id").and_then(Value::as_str) else {
            return unprocessable(&app, "resource_id must be the resource's id as a string");
        };
        let Ok(found) = id(raw) else {
            return app.refuse(Refusal::NotFound);
        };
        match resource.get("resource_type").and_then(Value::as_str) {
            Some("droplet") if world.droplet(found).is_ok() => droplets.push(found),
            Some("image")
                if world
                    .images
                    .iter()
                    .any(|i| i.id == found && i.owner == Owner::Us) =>
            {
                images.push(found)
            }
            // Valid types naming nothing here (the simulator has no
            // databases or volumes).
            Some("droplet" | "image" | "database" | "volume" | "volume_snapshot") => {
                return app.refuse(Refusal::NotFound);
            }
            _ => {
                return unprocessable(
                    &app,
                    "resource_type must be droplet, database, image, volume or volume_snapshot",
                );
            }
        }
    }
    let add = |tags: &mut Vec<String>| {
        if !tags.contains(&tag) {
            tags.push(tag.clone());
        }
    };
    for droplet in world
        .droplets
        .iter_mut()
        .filter(|d| droplets.contains(&d.id))
    {
        add(&mut droplet.tags);
    }
    for image in world.images.iter_mut().filter(|i| images.contains(&i.id)) {
        add(&mut image.tags);
    }
    StatusCode::NO_CONTENT.into_response()
}
