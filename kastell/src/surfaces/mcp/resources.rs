//! The MCP resources: `kastell://fleet`, the fleet at a glance (every
//! server with platform, provider and newest local backup with its
//! status), and `kastell://audit/recent`, the newest audit log entries
//! with the chain's verification ([`crate::state::audit`]), as JSON. Reading
//! them touches no server.

use rmcp::ErrorData;
use rmcp::model::{ListResourcesResult, ReadResourceResult, Resource, ResourceContents};

use crate::ops::{self, Context};
use crate::state::audit::{AuditFilter, AuditLog};

/// The fleet resource's URI.
pub(crate) const FLEET_URI: &str = "kastell://fleet";

/// The recent audit entries resource's URI.
pub(crate) const AUDIT_URI: &str = "kastell://audit/recent";

/// How many entries the audit resource holds.
const AUDIT_RECENT: usize = 50;

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
        Resource::new(AUDIT_URI, "audit-recent")
            .with_title("Recent audit entries")
            .with_description(
                "The newest 50 entries of kastell's hash-chained audit log (what was asked, from \
                 which surface and client, how it ended; arguments redacted), newest first, and \
                 the verification of the whole chain against its anchor (ok, or the first \
                 problem). Read-only.",
            )
            .with_mime_type("application/json"),
    ])
}

/// Reads the resource at `uri`: the fleet overview, or an invalid-params
/// error naming the URIs that exist.
pub(crate) async fn read(ctx: &Context, uri: &str) -> Result<ReadResourceResult, ErrorData> {
    match uri {
        FLEET_URI => {}
        AUDIT_URI => return read_audit(ctx).await,
        _ => {
            return Err(ErrorData::resource_not_found(
                format!("no resource {uri}; kastell serves {FLEET_URI} and {AUDIT_URI}"),
                None,
            ));
        }
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

/// The audit resource: the newest [`AUDIT_RECENT`] entries and the
/// verification report of the log in the store's directory.
async fn read_audit(ctx: &Context) -> Result<ReadResourceResult, ErrorData> {
    let internal = |e: kastell_core::Error| {
        let detail = serde_json::to_value(e.report()).ok();
        ErrorData::internal_error(e.to_string(), detail)
    };
    let log = AuditLog::for_env(ctx.store.dir(), &ctx.env).map_err(internal)?;
    let body = tokio::task::spawn_blocking(move || -> kastell_core::Result<serde_json::Value> {
        let page = log.entries(&AuditFilter {
            limit: Some(AUDIT_RECENT),
            ..AuditFilter::default()
        })?;
        let report = log.verify()?;
        Ok(serde_json::json!({
            "entries": page.entries,
            "skipped_corrupt": page.skipped_corrupt,
            "verify": {
                "ok": report.ok,
                "summary": report.summary(),
                "entries_checked": report.entries_checked,
                "first_seq": report.first_seq,
                "last_seq": report.last_seq,
                "warnings": report.warnings,
                "problem": report.problem,
            },
        }))
    })
    .await
    .map_err(|e| ErrorData::internal_error(format!("audit log: {e}"), None))?
    .map_err(internal)?;
    let text = serde_json::to_string_pretty(&body)
        .map_err(|e| ErrorData::internal_error(format!("audit log: {e}"), None))?;
    Ok(ReadResourceResult::new(vec![
        ResourceContents::text(text, AUDIT_URI).with_mime_type("application/json"),
    ])
    .with_ttl_ms(0))
}
