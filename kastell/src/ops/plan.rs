//! Phrases the operations' plans share: where a server is reached, which
//! provider API a step calls, what a platform's update and reboot do.
//! Each reads only the fleet record, the registry and whether a token is
//! set.

use kastell_core::Registry;
use kastell_core::types::PlatformInfo;

use super::context::{Context, cloud_provider_id};
use super::reboot::reboot_command;
use super::repository::RepoChoice;
use crate::engine::backup::BackupLayout;
use crate::engine::remote::{DEFAULT_PORT, DEFAULT_USER};
use crate::state::store::ServerRecord;

/// What `server`'s platform entry says of it; `None` for a platform this
/// build does not register (running the operation fails saying so).
pub(crate) fn platform_info(server: &ServerRecord) -> Option<PlatformInfo> {
    let entry = Registry::global().platform(server.platform_id()).ok()?;
    Some(entry.info())
}

/// The step storing a new backup in a repository, if one is chosen (the
/// server's default is looked up).
pub(crate) fn repo_step(
    ctx: &Context,
    server: &ServerRecord,
    choice: &RepoChoice,
) -> Option<String> {
    let name = match choice {
        RepoChoice::LocalOnly => return None,
        RepoChoice::Named(name) => name.clone(),
        RepoChoice::ServerDefault => {
            let registry = crate::engine::repos::RepoRegistry::load(ctx.store.dir()).ok()?;
            registry.default_for(&server.name).ok()??.name.clone()
        }
    };
    Some(format!(
        "Store the backup in repository {name} (encrypted, deduplicated; listed there only when complete)"
    ))
}

/// `user@ip:port`.
pub(crate) fn ssh_target(server: &ServerRecord) -> String {
    let ssh = server.ssh.clone().unwrap_or_default();
    format!(
        "{}@{}:{}",
        ssh.user.as_deref().unwrap_or(DEFAULT_USER),
        server.ip,
        ssh.port.unwrap_or(DEFAULT_PORT)
    )
}

/// The directory `server`'s local backups are in.
pub(crate) fn backups_dir(ctx: &Context, server: &ServerRecord) -> String {
    BackupLayout::new(ctx.store.dir())
        .server_dir(&server.name)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("(invalid: {e})"))
}

/// `the hetzner API (server 123)`, or why there is none.
pub(crate) fn api(ctx: &Context, server: &ServerRecord) -> String {
    match cloud_provider_id(server) {
        Ok(p) if ctx.token_present_for(server, p) => format!("the {p} API (server {})", server.id),
        Ok(p) => format!("the {p} API (server {}; no token set)", server.id),
        Err(_) => "no provider API (manual server)".to_owned(),
    }
}

/// The status check before an update.
pub(crate) fn status_step(ctx: &Context, server: &ServerRecord) -> String {
    match cloud_provider_id(server) {
        Ok(p) if ctx.token_present_for(server, p) => {
            format!(
                "Status Check via the {p} API (server {} must be running)",
                server.id
            )
        }
        Ok(p) => format!("Status Check: skipped (no {p} token)"),
        Err(_) => "Status Check: skipped (manual server)".to_owned(),
    }
}

/// The platform's update, as its entry describes it.
pub(crate) fn update_step(server: &ServerRecord) -> String {
    match platform_info(server) {
        Some(info) => format!("{} over SSH ({})", info.update_step(), info.update.runs),
        None => format!(
            "{} Update over SSH (not in this build: the run will fail)",
            server.platform_id()
        ),
    }
}

/// The reboot: through the provider with a token, else over SSH.
pub(crate) fn reboot_step(ctx: &Context, server: &ServerRecord) -> String {
    match cloud_provider_id(server) {
        Ok(p) if ctx.token_present_for(server, p) => {
            format!(
                "Reboot via the {p} API (server {}) and wait until running",
                server.id
            )
        }
        _ => {
            let user = server
                .ssh
                .as_ref()
                .and_then(|s| s.user.clone())
                .unwrap_or_else(|| DEFAULT_USER.to_owned());
            format!("Reboot over SSH: {}", reboot_command(&user))
        }
    }
}

/// `id`, or `newest` for none, and the repository it is in.
pub(crate) fn describe_backup(id: Option<&str>, repo: Option<&str>, newest: &str) -> String {
    let id = id.unwrap_or(newest);
    match repo {
        Some(repo) => format!("{id} in repository {repo}"),
        None => id.to_owned(),
    }
}
