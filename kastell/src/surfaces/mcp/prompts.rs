//! The MCP prompts: ready-made instructions an operator picks in the
//! client to start common work the safe way.
//!
//! - `safe-maintenance` (argument `server`): status and health first, a
//!   verified backup, then maintenance, then a final check.
//! - `backup-audit`: which servers lack a complete recent backup, from the
//!   `kastell://fleet` resource, and backing them up.

use rmcp::ErrorData;
use rmcp::model::{
    GetPromptResult, JsonObject, ListPromptsResult, Prompt, PromptArgument, PromptMessage, Role,
};

/// `safe-maintenance`.
const SAFE_MAINTENANCE: &str = "safe-maintenance";
/// `backup-audit`.
const BACKUP_AUDIT: &str = "backup-audit";

/// Every prompt kastell serves.
pub(crate) fn list() -> ListPromptsResult {
    ListPromptsResult::with_all_items(vec![
        Prompt::new(
            SAFE_MAINTENANCE,
            Some("Maintain one server the safe way: check, back up, maintain, check again"),
            Some(vec![
                PromptArgument::new("server")
                    .with_description("The server's name or IP, from server_info list")
                    .with_required(true),
            ]),
        ),
        Prompt::new(
            BACKUP_AUDIT,
            Some("Find the servers without a complete recent backup and back them up"),
            None::<Vec<PromptArgument>>,
        ),
    ])
}

/// The prompt `name` with `arguments`, or an invalid-params error saying
/// what is missing or which prompts exist.
pub(crate) fn get(
    name: &str,
    arguments: Option<&JsonObject>,
) -> Result<GetPromptResult, ErrorData> {
    let text = match name {
        SAFE_MAINTENANCE => {
            let server = arguments
                .and_then(|a| a.get("server"))
                .and_then(|s| s.as_str())
                .map(str::trim)
                .filter(|s| !s.is_empty() && s.len() <= 256)
                .ok_or_else(|| {
                    ErrorData::invalid_params(
                        "safe-maintenance needs the argument server (a name or IP from \
                         server_info list, at most 256 characters)",
                        None,
                    )
                })?;
            format!(
                "Maintain the server {server:?} with kastell, stopping at the first problem:\n\
                 1. server_info {{action: \"status\", server: {server:?}}} and then \
                 {{action: \"health\"}}: if it is unreachable or unhealthy, stop and report.\n\
                 2. server_backup {{action: \"backup-create\", server: {server:?}}}: stop if it \
                 fails.\n\
                 3. server_maintain {{action: \"maintain\", server: {server:?}}}: it updates, \
                 checks health and reboots only if healthy. If SAFE_MODE refuses it, tell the \
                 operator to set KASTELL_SAFE_MODE=false; do not look for another way.\n\
                 4. server_info {{action: \"health\", server: {server:?}}} and report every step \
                 with its outcome."
            )
        }
        BACKUP_AUDIT => "Read the resource kastell://fleet. List every server whose newest backup \
             is missing, not complete, or older than a day (compare its timestamp with now). For \
             each of them, call server_backup {action: \"backup-create\", server: NAME} one at a \
             time, then report which backups were made and which failed, with the error and hint \
             kastell gave."
            .to_owned(),
        other => {
            return Err(ErrorData::invalid_params(
                format!("no prompt {other}; kastell has {SAFE_MAINTENANCE} and {BACKUP_AUDIT}"),
                None,
            ));
        }
    };
    Ok(GetPromptResult::new(vec![PromptMessage::new_text(
        Role::User,
        text,
    )]))
}
