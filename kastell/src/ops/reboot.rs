//! Reboots that are proven to have happened: the kernel's boot id is read
//! before, and the reboot counts only when SSH answers again with a
//! different one (the original reported success while the host was still
//! mid-reboot, or had not rebooted at all).

use std::sync::Arc;
use std::time::{Duration, Instant};

use kastell_core::types::RebootMode;
use kastell_core::{
    CloudProvider, CloudProviderExt, Error, ErrorKind, Look, RemoteCommand, Result, Transport,
    TransportExt,
};
use schemars::JsonSchema;
use serde::Serialize;

use super::context::{Context, server_id};
use super::flow::unknown_outcome;
use crate::state::store::ServerRecord;

/// The detached reboot run as root: it returns at once and reboots a
/// second later, so the command's connection closes cleanly first.
pub const REBOOT_AS_ROOT: &str =
    "nohup sh -c 'sleep 1; systemctl reboot || reboot' >/dev/null 2>&1 &";
/// The same for other users, through passwordless sudo (checked first, so
/// a missing sudo right is an error instead of a silent no-op).
pub const REBOOT_WITH_SUDO: &str =
    "sudo -n true && nohup sudo -n sh -c 'sleep 1; systemctl reboot || reboot' >/dev/null 2>&1 &";

/// The reboot command for a login as `user`.
pub fn reboot_command(user: &str) -> RemoteCommand {
    RemoteCommand::fixed(if user == "root" {
        REBOOT_AS_ROOT
    } else {
        REBOOT_WITH_SUDO
    })
}

/// How the reboot was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RebootMethod {
    /// Through the cloud provider's API.
    Provider,
    /// With `systemctl reboot` over SSH.
    Ssh,
    /// By restoring a provider snapshot (a rebuild boots the server).
    Restore,
}

/// Evidence that a server rebooted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RebootProof {
    /// How the reboot was asked for.
    pub method: RebootMethod,
    /// The boot id before (`None` when SSH did not answer before a
    /// provider reboot; then only reachability afterwards is proven).
    pub boot_id_before: Option<String>,
    /// The boot id once SSH answered again.
    pub boot_id_after: String,
    /// From the request to SSH answering with the new boot id.
    pub took_ms: u64,
}

impl RebootProof {
    /// One line for a step's detail.
    pub fn detail(&self) -> String {
        match &self.boot_id_before {
            Some(before) => format!(
                "Server rebooted via {} (boot id {before} → {})",
                self.method_name(),
                self.boot_id_after
            ),
            None => format!(
                "Server rebooted via {} and SSH is back (boot id before unknown)",
                self.method_name()
            ),
        }
    }

    fn method_name(&self) -> &'static str {
        match self.method {
            RebootMethod::Provider => "provider API",
            RebootMethod::Ssh => "SSH",
            RebootMethod::Restore => "snapshot restore",
        }
    }
}

/// Reboots `server` and proves it: through `provider` when given (soft
/// reboot, waiting for the provider's action and `running`), else with
/// [`reboot_command`] over SSH. Then waits until SSH answers with a boot id
/// different from the one read before.
///
/// Refuses an SSH reboot when SSH does not answer first. Fails with
/// `InvalidState` when the boot id never changes (the reboot did not
/// happen, whatever the provider said) and with `Timeout` when SSH does not
/// come back; a changed host key or refused login fails at once.
pub async fn reboot_proven(
    ctx: &Context,
    server: &ServerRecord,
    transport: &Arc<dyn Transport>,
    provider: Option<&Arc<dyn CloudProvider>>,
) -> Result<RebootProof> {
    let started = Instant::now();
    let before = transport.boot_id().await;
    let method = match provider {
        Some(provider) => {
            ctx.progress()
                .message("Reboot requested through the provider API");
            provider
                .reboot_and_wait(&server_id(server)?, RebootMode::Soft, ctx.timing.reboot)
                .await
                .map_err(|e| {
                    unknown_outcome(
                        e,
                        "The provider may have rebooted the server even though its answer was \
                         lost or late: check it with server_info status before asking again",
                    )
                    .or_hint("The server may still be rebooting; check it with server_info status")
                })?;
            RebootMethod::Provider
        }
        None => {
            let before = before.as_ref().map_err(|e| {
                Error::unavailable(format!(
                    "cannot reboot {} over SSH: it does not answer ({e})",
                    server.name
                ))
                .with_hint("Check the server with `kastell doctor <server>`")
            })?;
            ctx.progress().message("Reboot requested over SSH");
            request_ssh_reboot(transport).await?;
            tracing::debug!(server = %server.name, boot_id = %before, "reboot requested over SSH");
            RebootMethod::Ssh
        }
    };
    let before = before.ok();
    ctx.progress()
        .message("Waiting for the server to boot again (new boot id over SSH)");
    let after = wait_new_boot(ctx, transport, before.as_deref(), method).await?;
    Ok(RebootProof {
        method,
        boot_id_before: before,
        boot_id_after: after,
        took_ms: started.elapsed().as_millis() as u64,
    })
}

async fn request_ssh_reboot(transport: &Arc<dyn Transport>) -> Result<()> {
    let command = reboot_command(&transport.target().user);
    match transport.exec(&command, Duration::from_secs(30)).await {
        Ok(out) if out.success() => Ok(()),
        Ok(out) => Err(Error::new(
            ErrorKind::CommandFailed,
            format!(
                "the reboot command failed with status {}: {}",
                out.status,
                out.stderr_text()
            ),
        )
        .with_hint("The SSH user needs root or passwordless sudo to reboot")),
        // The connection may drop as the host goes down: the boot id
        // decides whether the reboot happened.
        Err(e) if e.is_retryable() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Polls the boot id until it differs from `before` (or, with no `before`,
/// until SSH answers at all), within the SSH deadline of `ctx`'s timing.
/// Fails with `InvalidState` when it never changes and `Timeout` when SSH
/// does not answer.
pub(super) async fn wait_new_boot(
    ctx: &Context,
    transport: &Arc<dyn Transport>,
    before: Option<&str>,
    method: RebootMethod,
) -> Result<String> {
    let deadline = ctx.timing.ssh_back;
    let look = || async {
        match transport.boot_id().await {
            Ok(id) if Some(id.as_str()) != before => Look::Done(id),
            Ok(id) => Look::Pending(Ok(id)),
            Err(e) if e.is_retryable() => Look::Pending(Err(e)),
            Err(e) => Look::Failed(e),
        }
    };
    let expired = |last: std::result::Result<String, Error>| {
        match last {
        Ok(same) => Error::invalid_state(match method {
            RebootMethod::Provider => format!(
                "The provider reported the reboot as done, but the boot id is still {same} after {}s: the server did not reboot",
                deadline.as_secs()
            ),
            RebootMethod::Ssh => format!(
                "The server did not reboot: its boot id is still {same} after {}s",
                deadline.as_secs()
            ),
            RebootMethod::Restore => format!(
                "The provider reported the snapshot restored, but the boot id is still {same} after {}s: the server did not boot from it",
                deadline.as_secs()
            ),
        })
        .with_hint("Check the server's console or logs; try the restart again"),
        Err(e) => Error::timeout(format!(
            "SSH did not come back within {}s after the reboot",
            deadline.as_secs()
        ))
        .with_context("last_error", e)
        .with_hint("The server may still be booting; check it with server_info status"),
    }
    };
    ctx.timing.poll.poll_until(deadline, look, expired).await
}
