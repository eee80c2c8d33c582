//! The backup operations as the surfaces see them ([`Operation`]):
//! `backup-create`, `backup-list`, `backup-restore`, `backup-verify`, and
//! `backup-prune`'s policy row; their arguments, plans and questions. The
//! work itself is the parent module's.

use async_trait::async_trait;
use kastell_core::wire::{CompressMode, DumpJobs};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    BackupCreateResult, BackupListResult, BackupRestoreResult, BackupVerifyResult,
    backup_create_with, backup_list_in, backup_restore_from, backup_verify_in, safety_note,
};
use crate::ops::context::Context;
use crate::ops::operation::{CliCommand, CliTarget, McpAction, Operation, Scope, Spec};
use crate::ops::plan;
use crate::ops::repository::{CreateOptions, RepoChoice};
use crate::ops::result::OpResult;
use crate::policy::{Category, Rule};
use crate::state::store::ServerRecord;

/// The repository argument of the backup operations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, clap::Args)]
#[serde(rename_all = "camelCase")]
pub struct RepoArg {
    /// Backup repository (a name from `kastell repo list`; encrypted,
    /// deduplicated, off this machine). backup-create: also store the new
    /// backup there once it is complete (default: the server's default
    /// repository, if any). backup-list: list the backups held there.
    /// backup-restore: restore a backup held there (pulled and checked
    /// first). Absent: the local store.
    #[serde(default)]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9_-]+$"))]
    #[arg(
        long,
        value_name = "NAME",
        help = "Read from this backup repository (see `kastell repo list`) instead of the local store"
    )]
    pub repo: Option<String>,
}

impl RepoArg {
    /// The repository named, if any (blank counts as none).
    pub(crate) fn name(&self) -> Option<&str> {
        self.repo.as_deref().filter(|r| !r.trim().is_empty())
    }
}

/// Which backup an operation reads: an id (none: the newest) in a
/// repository (none: the local store).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, clap::Args)]
#[serde(rename_all = "camelCase")]
pub struct BackupRef {
    /// Backup id for backup-restore, from backup-list (letters, digits, `-`
    /// and `_`).
    #[serde(default)]
    #[schemars(length(min = 1, max = 256), regex(pattern = r"^[A-Za-z0-9_-]+$"))]
    #[arg(
        long = "backup",
        value_name = "ID",
        help = "The backup id (default: the newest that is not a restore's safety backup)"
    )]
    pub backup_id: Option<String>,
    /// The repository it is in.
    #[serde(flatten)]
    #[command(flatten)]
    pub repo: RepoArg,
}

impl BackupRef {
    /// The backup id named, if any (blank counts as none: the newest).
    pub(crate) fn id(&self) -> Option<&str> {
        self.backup_id.as_deref().filter(|b| !b.trim().is_empty())
    }

    fn describe(&self, newest: &str) -> String {
        plan::describe_backup(self.id(), self.repo.name(), newest)
    }
}

/// Arguments of `backup-create`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, clap::Args)]
#[serde(rename_all = "camelCase")]
// The repository is written to here, not read from: its own help.
#[command(mut_arg("repo", |a| a.help(
    "Also store the new backup in this repository (see `kastell repo list`; default: the server's default repository)"
)))]
pub struct CreateArgs {
    /// The repository the new backup also goes to.
    #[serde(flatten)]
    #[command(flatten)]
    pub repo: RepoArg,
    /// Keep the new backup in the local store only, even when the server
    /// has a default repository.
    #[serde(skip)]
    #[arg(long, conflicts_with = "repo")]
    pub local_only: bool,
    /// Where to compress: `auto` (on the server when the host has zstd,
    /// pigz or gzip and the measured link is slower than it compresses),
    /// `server` (whenever the host can), `local` (raw over SSH, zstd
    /// here) or `none` (raw, stored uncompressed).
    #[serde(skip)]
    #[arg(long, value_name = "WHERE", default_value = "auto", value_parser = compress_mode)]
    pub compress: CompressMode,
    /// Parallel jobs for the database dump (PaaS platforms): `auto` (in
    /// parallel when the database is large, with several large tables,
    /// spare cores and connections, and room on the server for the dump),
    /// or a number from 1 (one stream, nothing written on the server) to
    /// 16. More than one runs `pg_dump -Fd -j N` into a temporary
    /// directory on the server, removed however the backup ends.
    #[serde(skip)]
    #[arg(long, value_name = "N", default_value = "auto", value_parser = dump_jobs)]
    pub jobs: DumpJobs,
}

impl CreateArgs {
    /// The options the engine runs with.
    pub fn options(&self) -> CreateOptions {
        let repo = if self.local_only {
            RepoChoice::LocalOnly
        } else {
            RepoChoice::from_arg(self.repo.name())
        };
        CreateOptions {
            compress: self.compress,
            jobs: self.jobs,
            repo,
        }
    }
}

fn compress_mode(text: &str) -> std::result::Result<CompressMode, String> {
    text.parse::<CompressMode>().map_err(|e| e.to_string())
}

fn dump_jobs(text: &str) -> std::result::Result<DumpJobs, String> {
    text.parse::<DumpJobs>()
        .map_err(|e| format!("{} ({})", e, e.hint().unwrap_or_default()))
}

/// `backup-create`: back a server up over SSH.
pub struct BackupCreateOp;

#[async_trait]
impl Operation for BackupCreateOp {
    const SPEC: &'static Spec = &Spec {
        rule: Rule::new("backup-create", Category::SafeWrite).long(),
        scope: Scope::Server,
        mcp: Some(McpAction {
            tool: "server_backup",
            action: "backup-create",
            doc: "back the server up over SSH (platform database and configuration, or the configured paths on bare servers) into the local store with checksums (and a repository, with repo).",
        }),
        cli: Some(CliCommand {
            path: &["backup", "create"],
            about: "Back a server up over SSH into the kastell directory.",
            target: CliTarget::Fleet,
        }),
    };
    type Args = CreateArgs;
    type Body = BackupCreateResult;

    async fn run(ctx: &Context, query: Option<&str>, args: &CreateArgs) -> OpResult<Self::Body> {
        backup_create_with(ctx, query, args.options()).await
    }

    fn plan(ctx: &Context, server: &ServerRecord, args: &CreateArgs) -> Vec<String> {
        let mut steps = vec![
            format!("Read the SSH host key of {}", plan::ssh_target(server)),
            format!(
                "Back up the {} platform over SSH into {}/<new id> (published only when complete)",
                server.platform_id(),
                plan::backups_dir(ctx, server)
            ),
        ];
        steps.extend(plan::repo_step(ctx, server, &args.options().repo));
        steps
    }
}

/// `backup-list`: a server's backups, newest first.
pub struct BackupListOp;

#[async_trait]
impl Operation for BackupListOp {
    const SPEC: &'static Spec = &Spec {
        rule: Rule::new("backup-list", Category::Read),
        scope: Scope::Server,
        mcp: Some(McpAction {
            tool: "server_backup",
            action: "backup-list",
            doc: "list local backups (or a repository's), newest first.",
        }),
        cli: Some(CliCommand {
            path: &["backup", "list"],
            about: "List a server's backups, newest first.",
            target: CliTarget::Read,
        }),
    };
    type Args = RepoArg;
    type Body = BackupListResult;

    async fn run(ctx: &Context, query: Option<&str>, args: &RepoArg) -> OpResult<Self::Body> {
        backup_list_in(ctx, query, args.name()).await
    }

    fn plan(ctx: &Context, server: &ServerRecord, args: &RepoArg) -> Vec<String> {
        match args.name() {
            None => vec![format!("Read {} (local)", plan::backups_dir(ctx, server))],
            Some(repo) => vec![format!(
                "List the snapshots of {} in repository {repo}",
                server.name
            )],
        }
    }
}

/// `backup-restore`: restore a backup onto its server.
pub struct BackupRestoreOp;

#[async_trait]
impl Operation for BackupRestoreOp {
    const SPEC: &'static Spec = &Spec {
        rule: Rule::new("backup-restore", Category::Destructive)
            .blocked(
                "Restore disabled in SAFE_MODE",
                "Set KASTELL_SAFE_MODE=false to enable restore operations",
            )
            .needs_platform()
            .long(),
        scope: Scope::Server,
        mcp: Some(McpAction {
            tool: "server_backup",
            action: "backup-restore",
            doc: "verify a backup, take a safety backup, then stop the platform, restore and start it again (needs backupId).",
        }),
        cli: Some(CliCommand {
            path: &["backup", "restore"],
            about: "Restore a backup onto its server (default: the newest that is not a safety backup), after a safety backup of the current state.",
            target: CliTarget::One,
        }),
    };
    type Args = BackupRef;
    type Body = BackupRestoreResult;

    async fn run(ctx: &Context, query: Option<&str>, args: &BackupRef) -> OpResult<Self::Body> {
        backup_restore_from(ctx, query, args.id(), args.repo.name()).await
    }

    fn plan(ctx: &Context, server: &ServerRecord, args: &BackupRef) -> Vec<String> {
        let mut steps = Vec::new();
        if let Some(repo) = args.repo.name() {
            steps.push(format!(
                "Pull backup {} from repository {repo} into {} (checked against its recorded checksums; a local copy that verifies is used instead)",
                args.id().unwrap_or("(newest)"),
                plan::backups_dir(ctx, server)
            ));
        }
        let id = args.id().unwrap_or("(newest: none found)");
        let verify = match args.id().and_then(|id| safety_note(ctx, server, id)) {
            Some(note) => format!("Verify backup {id} (every checksum); {note}"),
            None => format!("Verify backup {id} (every checksum)"),
        };
        steps.extend([
            verify,
            format!(
                "Safety backup of the current state of {}",
                plan::ssh_target(server)
            ),
            format!(
                "Restore {id} onto the {} platform over SSH, replacing {} (started again whatever happens)",
                server.platform_id(),
                crate::ops::backup_holds(server.platform_id())
            ),
            "Health check".to_owned(),
        ]);
        steps
    }

    fn question(server: &ServerRecord, args: &BackupRef) -> String {
        format!(
            "This will restore \"{}\" ({}) from backup {}. Current data will be OVERWRITTEN. Continue?",
            server.name,
            server.ip,
            args.describe("(newest)")
        )
    }

    fn target(args: &BackupRef) -> Option<&str> {
        args.id()
    }

    fn repo(args: &BackupRef) -> Option<&str> {
        args.repo.name()
    }

    /// The newest local backup that is not a safety backup, named in the
    /// question and the plan, and restored exactly (not re-picked after
    /// the question). From a repository, the newest there is picked when
    /// it runs.
    fn pin(ctx: &Context, server: &ServerRecord, args: &mut BackupRef) {
        if args.id().is_none() && args.repo.name().is_none() {
            if let Ok(newest) = ctx.engine.latest(&server.name) {
                args.backup_id = Some(newest.id.to_string());
            }
        }
    }
}

/// `backup-verify`: recompute a backup's checksums.
pub struct BackupVerifyOp;

#[async_trait]
impl Operation for BackupVerifyOp {
    const SPEC: &'static Spec = &Spec {
        rule: Rule::new("backup-verify", Category::Read),
        scope: Scope::Server,
        mcp: None,
        cli: Some(CliCommand {
            path: &["backup", "verify"],
            about: "Recompute a backup's checksums (default: the newest).",
            target: CliTarget::Read,
        }),
    };
    type Args = BackupRef;
    type Body = BackupVerifyResult;

    async fn run(ctx: &Context, query: Option<&str>, args: &BackupRef) -> OpResult<Self::Body> {
        backup_verify_in(ctx, query, args.id(), args.repo.name()).await
    }

    fn plan(_: &Context, _: &ServerRecord, args: &BackupRef) -> Vec<String> {
        if args.repo.name().is_some() {
            vec![format!(
                "Read every artifact of backup {} and compare it with the checksums recorded when it was stored",
                args.describe("(newest)")
            )]
        } else {
            vec![format!(
                "Recompute the checksums of backup {} (local)",
                args.describe("(newest)")
            )]
        }
    }
}

/// `backup-prune`: delete local backups by retention rules. Its command
/// (`backup prune`) is its own.
pub const BACKUP_PRUNE: &Spec = &Spec {
    rule: Rule::new("backup-prune", Category::Destructive).blocked(
        "Backup pruning is disabled in SAFE_MODE",
        "Set KASTELL_SAFE_MODE=false to enable deleting backups (run without --apply to see the plan)",
    ),
    scope: Scope::Server,
    mcp: None,
    cli: None,
};
