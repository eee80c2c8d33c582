//! The MCP resources: `kastell://fleet`, the fleet at a glance (every
//! server with platform, provider and newest local backup with its
//! status), as JSON. Reading it touches no server.

use rmcp::ErrorData;
use rmcp::model::{ListResourcesResult, ReadResourceResult, Resource, ResourceContents};

use crate::ops::{self, Context};

/// The fleet resource's URI.
pub(crate) const FLEET_URI: &str = "kastell://fleet";

/// Every resource kastell serves.
pub(crate) fn list() -> ListResourcesResult {
    ListResourcesResult::with_all_items(vec![
        Resource::new(FLEET_URI, "fleet")
            .with_title("The fleet")
            .with_description(
                "Every server in the fleet store with its platform, provider and newest local \
                 backup (id, time and status: complete, unverified_legacy or corrupt). Read-only; \
                 reading it contacts no server.",
            )
            .with_mime_type("application/json"),
    ])
}

/// Reads the resource at `uri`: the fleet overview, or an invalid-params
/// error naming the URIs that exist.
pub(crate) async fn read(ctx: &Context, uri: &str) -> Result<ReadResourceResult, ErrorData> {
    if uri != FLEET_URI {
        return Err(ErrorData::resource_not_found(
            format!("no resource {uri}; kastell serves {FLEET_URI}"),
            None,
        ));
    }
    let overview = ops::fleet_overview(ctx).await.map_err(|e| {
        let detail = serde_json::to_value(&e).ok();
        ErrorData::internal_error(e.error.clone(), detail)
    })?;
    let text = serde_json::to_string_pretty(&overview)
        .map_err(|e| ErrorData::internal_error(format!("fleet overview: {e}"), None))?;
    Ok(ReadResourceResult::new(vec![
        ResourceContents::text(text, FLEET_URI).with_mime_type("application/json"),
    ])
    // The fleet changes with every backup: never cache it.
    .with_ttl_ms(0))
}
