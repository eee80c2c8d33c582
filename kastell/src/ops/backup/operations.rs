//! The backup operations as the surfaces see them ([`Operation`]):
//! `backup-create`, `backup-list`, `backup-restore`, `backup-verify`, and
//! `backup-prune`'s policy row; their arguments, plans and questions. The
//! work itself is the parent module's.

use async_trait::async_trait;
use kastell_core::types::AppSelection;
use kastell_core::wire::{CompressMode, DumpJobs};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::restore::{newest_size, safety_note};
use super::safety::{self, SafetyChoice};
use super::{
    BackupCreateResult, BackupListResult, BackupRestoreResult, BackupVerifyResult,
    backup_create_with, backup_list_in, backup_restore_apps, backup_verify_in,
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

/// The apps a backup or restore covers (Coolify's and Dokploy's
/// resources: their databases and volumes), by key or shown name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, clap::Args)]
#[serde(rename_all = "camelCase")]
pub struct AppArgs {
    /// Only these apps' data (Coolify/Dokploy; name or key); restore: in place.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 100)))]
    #[arg(
        long = "app",
        value_name = "NAME",
        help = "Only this app's data (repeatable; Coolify and Dokploy apps, by name or key)"
    )]
    pub app: Vec<String>,
    /// Leave these apps' data out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 100)))]
    #[arg(
        long = "exclude-app",
        value_name = "NAME",
        help = "Leave this app's data out (repeatable)"
    )]
    pub exclude_app: Vec<String>,
}

impl AppArgs {
    /// The selection the engine runs with (names trimmed, blanks dropped).
    pub fn selection(&self) -> AppSelection {
        let clean = |names: &[String]| -> Vec<String> {
            names
                .iter()
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty())
                .collect()
        };
        AppSelection {
            only: clean(&self.app),
            exclude: clean(&self.exclude_app),
        }
    }

    /// `, only apps a, b` / `, without apps c` for plans; empty for every
    /// app.
    fn describe(&self) -> String {
        let s = self.selection();
        let mut out = String::new();
        if !s.only.is_empty() {
            out.push_str(&format!(", only app(s) {}", s.only.join(", ")));
        }
        if !s.exclude.is_empty() {
            out.push_str(&format!(", without app(s) {}", s.exclude.join(", ")));
        }
        out
    }
}

/// Arguments of `backup-restore`: which backup, which apps, and the
/// safety copy taken first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, clap::Args)]
#[serde(rename_all = "camelCase")]
pub struct RestoreArgs {
    /// The backup.
    #[serde(flatten)]
    #[command(flatten)]
    pub backup: BackupRef,
    /// The apps.
    #[serde(flatten)]
    #[command(flatten)]
    pub apps: AppArgs,
    /// backup-restore only: the safety copy of the current state taken
    /// first: `auto` (the server's default repository, else local),
    /// `snapshot` (provider snapshot, billed monthly), `repo`, `local` or
    /// `none` (refused over MCP and where safety levels are configured,
    /// unless safety.json allows it).
    #[serde(default)]
    #[arg(
        long,
        value_enum,
        default_value = "auto",
        help = "Safety copy taken first: auto (default repository, else local), snapshot (provider, billed monthly), repo, local or none"
    )]
    pub safety: SafetyChoice,
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
    /// The apps to back up.
    #[serde(flatten)]
    #[command(flatten)]
    pub apps: AppArgs,
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
            apps: self.apps.selection(),
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
            doc: "back the server up over SSH (platform database, configuration and apps' data, or the configured paths on bare servers) into the local store with checksums (and a repository, with repo).",
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
                "Back up the {} platform over SSH into {}/<new id> (published only when complete{})",
                server.platform_id(),
                plan::backups_dir(ctx, server),
                args.apps.describe()
            ),
        ];
        steps.extend(plan::repo_step(ctx, server, &args.options().repo));
        steps
    }

    /// A table of the apps' data: per app, its size before (estimated)
    /// and stored after, and its artifacts.
    fn render(body: &BackupCreateResult) -> Vec<String> {
        super::apps_table(&body.body.apps)
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
            doc: "verify a backup, take the safety copy (safety: auto, snapshot, repo, local or none), then stop the platform, restore and start it again (needs backupId).",
        }),
        cli: Some(CliCommand {
            path: &["backup", "restore"],
            about: "Restore a backup onto its server (default: the newest that is not a safety backup), after a safety copy of the current state (--safety).",
            target: CliTarget::One,
        }),
    };
    type Args = RestoreArgs;
    type Body = BackupRestoreResult;

    async fn run(ctx: &Context, query: Option<&str>, args: &RestoreArgs) -> OpResult<Self::Body> {
        backup_restore_apps(
            ctx,
            query,
            args.backup.id(),
            args.backup.repo.name(),
            &args.apps.selection(),
            args.safety,
        )
        .await
    }

    fn plan(ctx: &Context, server: &ServerRecord, args: &RestoreArgs) -> Vec<String> {
        let apps = args.apps.selection();
        let copy = match safety::resolve(ctx, server, args.safety, args.backup.repo.name()) {
            Ok(step) => safety::plan_line(&step, server, newest_size(ctx, server)),
            Err(e) => format!("Safety copy: refused ({})", e.message()),
        };
        let args = &args.backup;
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
        if apps.is_only() {
            steps.extend([
                verify,
                format!(
                    "{copy} (a backup covers only app(s) {}) of {}",
                    apps.only.join(", "),
                    plan::ssh_target(server)
                ),
                format!(
                    "Restore the data of app(s) {} from {id} in place, stopping only their containers (the platform keeps running)",
                    apps.only.join(", ")
                ),
                "Health check".to_owned(),
            ]);
            return steps;
        }
        let without = if apps.exclude.is_empty() {
            String::new()
        } else {
            format!(" (but the data of app(s) {})", apps.exclude.join(", "))
        };
        steps.extend([
            verify,
            format!("{copy} of {}", plan::ssh_target(server)),
            format!(
                "Restore {id} onto the {} platform over SSH, replacing {}{without} (started again whatever happens)",
                server.platform_id(),
                crate::ops::backup_holds(server.platform_id())
            ),
            "Health check".to_owned(),
        ]);
        steps
    }

    fn question(server: &ServerRecord, args: &RestoreArgs) -> String {
        let apps = args.apps.selection();
        let args = &args.backup;
        if apps.is_only() {
            return format!(
                "This will restore the data of app(s) {} on \"{}\" ({}) from backup {}. Their current data will be OVERWRITTEN. Continue?",
                apps.only.join(", "),
                server.name,
                server.ip,
                args.describe("(newest)")
            );
        }
        format!(
            "This will restore \"{}\" ({}) from backup {}. Current data will be OVERWRITTEN. Continue?",
            server.name,
            server.ip,
            args.describe("(newest)")
        )
    }

    fn target(args: &RestoreArgs) -> Option<&str> {
        args.backup.id()
    }

    fn repo(args: &RestoreArgs) -> Option<&str> {
        args.backup.repo.name()
    }

    /// The newest local backup that is not a safety backup, named in the
    /// question and the plan, and restored exactly (not re-picked after
    /// the question). From a repository, the newest there is picked when
    /// it runs.
    fn pin(ctx: &Context, server: &ServerRecord, args: &mut RestoreArgs) {
        let args = &mut args.backup;
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
