//! The operations the CLI runs: one enum naming each, what it asks before
//! it runs, how it calls [`crate::ops`] and what its dry-run plan says.
//! Nothing here decides policy: [`crate::ops`] applies it on every run.

// `OpError` is the ops failure payload, returned once per operation (see
// `crate::ops`): boxing it would only make every caller noisier.
#![allow(clippy::result_large_err)]

use kastell_core::types::{PlatformInfo, RebootAfterUpdate};
use kastell_core::{Error, Registry};
use serde::Serialize;
use serde_json::Value;

use crate::backup::BackupLayout;
use crate::ops::{self, CreateOptions, MaintainOptions, OpError, RepoChoice};
use crate::policy::{Operation, Surface};
use crate::remote::{DEFAULT_PORT, DEFAULT_USER};
use crate::store::ServerRecord;

/// Which backup a command reads, and where.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupRef {
    /// The backup id (none: the newest).
    pub id: Option<String>,
    /// The repository it is in (none: the local store).
    pub repo: Option<String>,
}

impl BackupRef {
    fn describe(&self, newest: &str) -> String {
        let id = self.id.as_deref().unwrap_or(newest);
        match &self.repo {
            Some(repo) => format!("{id} in repository {repo}"),
            None => id.to_owned(),
        }
    }
}

/// One CLI operation with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `backup create [--compress WHERE] [--repo NAME | --local-only]`.
    BackupCreate(CreateOptions),
    /// `backup list [--repo NAME]` (none: the local store).
    BackupList(Option<String>),
    /// `backup verify [--backup ID] [--repo NAME]`.
    BackupVerify(BackupRef),
    /// `backup restore [--backup ID] [--repo NAME]`.
    BackupRestore(BackupRef),
    /// `backup drill [--backup ID] [--repo NAME]`.
    BackupDrill(BackupRef),
    /// `snapshot create`.
    SnapshotCreate,
    /// `snapshot list`.
    SnapshotList,
    /// `snapshot delete --snapshot ID`.
    SnapshotDelete(String),
    /// `snapshot restore --snapshot ID`.
    SnapshotRestore(String),
    /// `update`.
    Update,
    /// `restart`.
    Restart,
    /// `maintain [--skip-reboot] [--snapshot]`.
    Maintain(MaintainOptions),
    /// `status`: reachability, the provider's view and the newest proven
    /// backup.
    Status,
}

fn json<T: Serialize>(result: ops::OpResult<T>) -> Result<Value, OpError> {
    result.and_then(|v| {
        serde_json::to_value(v)
            .map_err(|e| OpError::from(Error::unexpected(format!("encoding the result: {e}"))))
    })
}

impl Op {
    /// The command as typed (`backup create`, `maintain`, ...).
    pub fn title(&self) -> &'static str {
        match self {
            Op::BackupCreate(_) => "backup create",
            Op::BackupList(_) => "backup list",
            Op::BackupVerify(_) => "backup verify",
            Op::BackupRestore(_) => "backup restore",
            Op::BackupDrill(_) => "backup drill",
            Op::SnapshotCreate => "snapshot create",
            Op::SnapshotList => "snapshot list",
            Op::SnapshotDelete(_) => "snapshot delete",
            Op::SnapshotRestore(_) => "snapshot restore",
            Op::Update => "update",
            Op::Restart => "restart",
            Op::Maintain(_) => "maintain",
            Op::Status => "status",
        }
    }

    /// The policy operation.
    pub fn operation(&self) -> Operation {
        match self {
            Op::BackupCreate(_) => Operation::BackupCreate,
            Op::BackupList(_) => Operation::BackupList,
            Op::BackupVerify(_) => Operation::BackupVerify,
            Op::BackupRestore(_) => Operation::BackupRestore,
            Op::BackupDrill(_) => Operation::BackupDrill,
            Op::SnapshotCreate => Operation::SnapshotCreate,
            Op::SnapshotList => Operation::SnapshotList,
            Op::SnapshotDelete(_) => Operation::SnapshotDelete,
            Op::SnapshotRestore(_) => Operation::SnapshotRestore,
            Op::Update => Operation::Update,
            Op::Restart => Operation::Restart,
            Op::Maintain(_) => Operation::Maintain,
            Op::Status => Operation::Info,
        }
    }

    /// Whether it interrupts service or loses data, so it asks first (or
    /// needs `--force`) even on one server (the operations table's
    /// [`Rule::asks_first`](crate::policy::Rule::asks_first)).
    pub fn destructive(&self) -> bool {
        self.operation().rule().asks_first()
    }

    /// Whether it only reads (no confirmation even with `--all`).
    pub fn read_only(&self) -> bool {
        self.operation().rule().reads_only()
    }

    /// The y/N question for `server`.
    pub fn question(&self, server: &ServerRecord) -> String {
        let who = format!("\"{}\" ({})", server.name, server.ip);
        match self {
            Op::BackupRestore(backup) => format!(
                "This will restore {who} from backup {}. Current data will be OVERWRITTEN. Continue?",
                backup.describe("(newest)")
            ),
            Op::SnapshotDelete(id) => {
                format!("Delete snapshot {id} of {who}? This cannot be undone.")
            }
            Op::SnapshotRestore(id) => format!(
                "Rebuild {who} from snapshot {id}? Everything written since is LOST. Continue?"
            ),
            Op::Update => format!(
                "Update {} on {who}? This may cause brief downtime.",
                server.platform_id()
            ),
            Op::Restart => format!("Reboot {who}? It will be unreachable for a while."),
            Op::Maintain(_) => format!(
                "Run maintenance (update, health check, reboot) on {who}? This causes downtime."
            ),
            _ => format!("Run {} on {who}?", self.title()),
        }
    }

    /// Its arguments as the audit log records them (the server aside).
    fn audit_args(&self, server: Option<&str>) -> Value {
        let mut args = serde_json::json!({"action": self.operation().as_str(), "server": server});
        let extra = match self {
            Op::BackupCreate(o) => serde_json::json!({
                "compress": format!("{:?}", o.compress).to_lowercase(),
                "jobs": o.jobs.to_string(),
                "repo": format!("{:?}", o.repo),
            }),
            Op::BackupList(repo) => serde_json::json!({"repo": repo}),
            Op::BackupVerify(b) | Op::BackupRestore(b) | Op::BackupDrill(b) => {
                serde_json::json!({"backupId": b.id, "repo": b.repo})
            }
            Op::SnapshotDelete(id) | Op::SnapshotRestore(id) => {
                serde_json::json!({"snapshotId": id})
            }
            Op::Maintain(o) => serde_json::json!({
                "skipReboot": o.skip_reboot,
                "rebootEvenIfUnhealthy": o.reboot_even_if_unhealthy,
                "snapshot": o.snapshot,
            }),
            _ => Value::Null,
        };
        if let (Value::Object(a), Value::Object(e)) = (&mut args, extra) {
            a.extend(e);
        }
        args
    }

    /// Runs it through [`crate::ops`] and returns its payload as JSON;
    /// every run, refused or not, is appended to the audit log. Disruptive
    /// and destructive work is first recorded as started, and refused
    /// (nothing runs) when that record cannot be written
    /// ([`crate::audit::record_start`]).
    pub async fn run(&self, ctx: &ops::Context, server: Option<&str>) -> Result<Value, OpError> {
        let started = std::time::Instant::now();
        let record = |result, failed| crate::audit::CallRecord {
            surface: crate::audit::AuditSurface::Cli,
            client: None,
            op: self.operation().as_str(),
            server: server.map(str::to_owned),
            args: self.audit_args(server),
            confirmed: None,
            result,
            failed,
            duration: started.elapsed(),
        };
        let result =
            match crate::audit::record_start(ctx, self.operation(), &record(&Value::Null, false)) {
                Ok(()) => self.run_unrecorded(ctx, server).await,
                Err(e) => Err(OpError::from(e)),
            };
        let (value, failed) = match &result {
            Ok(value) => (value.clone(), false),
            Err(e) => (serde_json::to_value(e).unwrap_or(Value::Null), true),
        };
        record(&value, failed).append_to(ctx.store.dir(), &ctx.env);
        result
    }

    async fn run_unrecorded(
        &self,
        ctx: &ops::Context,
        server: Option<&str>,
    ) -> Result<Value, OpError> {
        match self {
            Op::BackupCreate(options) => {
                json(ops::backup_create_with(ctx, server, options.clone()).await)
            }
            Op::BackupList(repo) => json(ops::backup_list_in(ctx, server, repo.as_deref()).await),
            Op::BackupVerify(b) => {
                json(ops::backup_verify_in(ctx, server, b.id.as_deref(), b.repo.as_deref()).await)
            }
            Op::BackupRestore(b) => json(
                ops::backup_restore_from(ctx, server, b.id.as_deref(), b.repo.as_deref()).await,
            ),
            Op::BackupDrill(b) => {
                json(ops::backup_drill(ctx, server, b.id.as_deref(), b.repo.as_deref()).await)
            }
            Op::SnapshotCreate => json(ops::snapshot_create(ctx, server).await),
            Op::SnapshotList => json(ops::snapshot_list(ctx, server).await),
            Op::SnapshotDelete(id) => json(ops::snapshot_delete(ctx, server, id).await),
            Op::SnapshotRestore(id) => json(ops::snapshot_restore(ctx, server, id).await),
            Op::Update => json(ops::update(ctx, server).await),
            Op::Restart => json(ops::restart(ctx, server).await),
            Op::Maintain(options) => json(ops::maintain(ctx, server, *options).await),
            Op::Status => json(ops::server_status(ctx, server).await),
        }
    }

    /// Why the policy would refuse it on `server` now (nothing is logged:
    /// a dry run is a question, not a request).
    pub fn refusal(&self, ctx: &ops::Context, server: &ServerRecord) -> Option<String> {
        ctx.policy
            .quiet()
            .check(self.operation(), Surface::Cli, Some(server), |p| {
                ctx.token_present(p)
            })
            .err()
            .map(|e| match e.hint() {
                Some(hint) => format!("{e} (hint: {hint})"),
                None => e.to_string(),
            })
    }

    /// The steps it would take on `server`, with the commands and API calls.
    pub fn plan(&self, ctx: &ops::Context, server: &ServerRecord) -> Vec<String> {
        let p = server.platform_id();
        let api = api(ctx, server);
        let ssh = ssh_target(server);
        match self {
            Op::BackupCreate(options) => {
                let mut steps = vec![
                    format!("Read the SSH host key of {ssh}"),
                    format!(
                        "Back up the {p} platform over SSH into {}/<new id> (published only when complete)",
                        backups_dir(ctx, server)
                    ),
                ];
                steps.extend(repo_step(ctx, server, &options.repo));
                steps
            }
            Op::BackupList(None) => vec![format!("Read {} (local)", backups_dir(ctx, server))],
            Op::BackupList(Some(repo)) => vec![format!(
                "List the snapshots of {} in repository {repo}",
                server.name
            )],
            Op::BackupVerify(b) if b.repo.is_some() => vec![format!(
                "Read every artifact of backup {} and compare it with the checksums recorded when it was stored",
                b.describe("(newest)")
            )],
            Op::BackupVerify(b) => vec![format!(
                "Recompute the checksums of backup {} (local)",
                b.describe("(newest)")
            )],
            Op::BackupDrill(b) => {
                let mut steps = Vec::new();
                if let Some(repo) = &b.repo {
                    steps.push(format!(
                        "Pull backup {} from repository {repo} into {} (as a restore does)",
                        b.id.as_deref().unwrap_or("(newest)"),
                        backups_dir(ctx, server)
                    ));
                }
                steps.extend([
                    format!("Verify backup {} (every checksum)", b.describe("(newest)")),
                    "Restore each database dump into a throwaway local PostgreSQL of its version; compare its tables and rows with the dump".to_owned(),
                    "Unpack each configuration archive here; validate sshd_config (sshd -t) and nginx.conf (nginx -t) where installed".to_owned(),
                    "Record the result for backup list and status (nothing on the server is touched)".to_owned(),
                ]);
                steps
            }
            Op::BackupRestore(b) => {
                let mut steps = Vec::new();
                if let Some(repo) = &b.repo {
                    steps.push(format!(
                        "Pull backup {} from repository {repo} into {} (checked against its recorded checksums; a local copy that verifies is used instead)",
                        b.id.as_deref().unwrap_or("(newest)"),
                        backups_dir(ctx, server)
                    ));
                }
                let id = b.id.as_deref().unwrap_or("(newest: none found)");
                steps.extend([
                    format!("Verify backup {id} (every checksum)"),
                    format!("Safety backup of the current state of {ssh}"),
                    format!(
                        "Restore {id} onto the {p} platform over SSH, replacing {} (started again whatever happens)",
                        ops::backup_holds(p)
                    ),
                    "Health check".to_owned(),
                ]);
                steps
            }
            Op::SnapshotCreate => vec![
                format!("Estimate the snapshot cost via {api}"),
                format!("Create snapshot kastell-<epoch-ms> via {api} and wait until available"),
            ],
            Op::SnapshotList => vec![format!("List the server's snapshots via {api} (read-only)")],
            Op::SnapshotDelete(id) => vec![format!("Delete snapshot {id} via {api}")],
            Op::SnapshotRestore(id) => vec![format!(
                "Rebuild server {} from snapshot {id} via {api} and wait until running",
                server.id
            )],
            Op::Update => vec![status_step(ctx, server), update_step(server)],
            Op::Restart => vec![
                format!("Read the boot id over SSH ({ssh})"),
                reboot_step(ctx, server),
                "Wait for SSH to answer with a new boot id".to_owned(),
                format!("Health Check of {p}"),
            ],
            Op::Maintain(o) => maintain_plan(ctx, server, *o),
            Op::Status => vec![
                format!("Read the boot id over SSH ({ssh})"),
                format!("Ask {api} for the server's status (cloud servers with a token)"),
                "Read the newest proven backup (verify or drill) from the kastell directory"
                    .to_owned(),
            ],
        }
    }
}

fn maintain_plan(ctx: &ops::Context, server: &ServerRecord, o: MaintainOptions) -> Vec<String> {
    let mut steps = Vec::new();
    if o.snapshot {
        steps.push(format!(
            "Snapshot: create kastell-<epoch-ms> via {} and wait until available",
            api(ctx, server)
        ));
    }
    steps.push(status_step(ctx, server));
    steps.push(update_step(server));
    steps.push("Health Check (a failure skips the reboot)".to_owned());
    if o.skip_reboot {
        steps.push("Reboot: skipped (--skip-reboot)".to_owned());
        steps.push("Final Check: skipped (no reboot)".to_owned());
    } else {
        let reboot = platform_info(server).map(|info| info.update.reboot);
        let when = if reboot == Some(RebootAfterUpdate::WhenRequired) {
            " (only if the update requires one)"
        } else {
            ""
        };
        steps.push(format!("{}{when}", reboot_step(ctx, server)));
        steps.push("Final Check: SSH with a new boot id, then health".to_owned());
    }
    steps
}

/// What `server`'s platform entry says of it; `None` for a platform this
/// build does not register (running the operation fails saying so).
fn platform_info(server: &ServerRecord) -> Option<PlatformInfo> {
    let entry = Registry::global().platform(server.platform_id()).ok()?;
    Some(entry.info())
}

/// The plan's step for storing a new backup in a repository, if one is
/// chosen (the server's default is looked up).
fn repo_step(ctx: &ops::Context, server: &ServerRecord, choice: &RepoChoice) -> Option<String> {
    let name = match choice {
        RepoChoice::LocalOnly => return None,
        RepoChoice::Named(name) => name.clone(),
        RepoChoice::ServerDefault => {
            let registry = crate::repos::RepoRegistry::load(ctx.store.dir()).ok()?;
            registry.default_for(&server.name).ok()??.name.clone()
        }
    };
    Some(format!(
        "Store the backup in repository {name} (encrypted, deduplicated; listed there only when complete)"
    ))
}

fn ssh_target(server: &ServerRecord) -> String {
    let ssh = server.ssh.clone().unwrap_or_default();
    format!(
        "{}@{}:{}",
        ssh.user.as_deref().unwrap_or(DEFAULT_USER),
        server.ip,
        ssh.port.unwrap_or(DEFAULT_PORT)
    )
}

fn backups_dir(ctx: &ops::Context, server: &ServerRecord) -> String {
    BackupLayout::new(ctx.store.dir())
        .server_dir(&server.name)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("(invalid: {e})"))
}

/// `the hetzner API (server 123)`, or why there is none.
fn api(ctx: &ops::Context, server: &ServerRecord) -> String {
    match ops::cloud_provider_id(server) {
        Ok(p) if ctx.token_present(p) => format!("the {p} API (server {})", server.id),
        Ok(p) => format!("the {p} API (server {}; no token set)", server.id),
        Err(_) => "no provider API (manual server)".to_owned(),
    }
}

fn status_step(ctx: &ops::Context, server: &ServerRecord) -> String {
    match ops::cloud_provider_id(server) {
        Ok(p) if ctx.token_present(p) => {
            format!(
                "Status Check via the {p} API (server {} must be running)",
                server.id
            )
        }
        Ok(p) => format!("Status Check: skipped (no {p} token)"),
        Err(_) => "Status Check: skipped (manual server)".to_owned(),
    }
}

fn update_step(server: &ServerRecord) -> String {
    match platform_info(server) {
        Some(info) => format!("{} over SSH ({})", info.update_step(), info.update.runs),
        None => format!(
            "{} Update over SSH (not in this build: the run will fail)",
            server.platform_id()
        ),
    }
}

fn reboot_step(ctx: &ops::Context, server: &ServerRecord) -> String {
    match ops::cloud_provider_id(server) {
        Ok(p) if ctx.token_present(p) => {
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
            format!("Reboot over SSH: {}", ops::reboot_command(&user))
        }
    }
}
