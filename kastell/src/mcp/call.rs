//! One parsed tool call and how it runs: which operation, whether it is
//! long work (reported with progress, run as a task for clients that
//! support tasks) and the result it renders.

use kastell_core::Error;
use rmcp::model::{CallToolResult, JsonObject};

use super::output::{BackupOutput, InfoOutput, LogsOutput, MaintainOutput};
use super::params::{
    self, BACKUP_TOOL, BackupAction, BackupArgs, INFO_TOOL, InfoAction, InfoArgs, LOGS_TOOL,
    LogsAction, LogsArgs, LogsSource, MAINTAIN_TOOL, MaintainAction, MaintainArgs,
};
use super::render::finish;
use super::tools;
use crate::ops::{self, Action, Context, CreateOptions, LogSource, MaintainOptions, RepoChoice};

/// A tool call whose arguments parsed.
#[derive(Debug, Clone)]
pub(crate) enum Call {
    /// `server_backup`.
    Backup(BackupArgs),
    /// `server_maintain`.
    Maintain(MaintainArgs),
    /// `server_info`.
    Info(InfoArgs),
    /// `server_logs`.
    Logs(LogsArgs),
}

impl Call {
    /// Parses a call of tool `name`: `None` for a tool kastell does not
    /// have, else the call or what was wrong with its arguments.
    pub(crate) fn parse(name: &str, arguments: JsonObject) -> Option<Result<Self, Error>> {
        Some(match name {
            tools::BACKUP => params::parse(&BACKUP_TOOL, arguments).map(Self::Backup),
            tools::MAINTAIN => params::parse(&MAINTAIN_TOOL, arguments).map(Self::Maintain),
            tools::INFO => params::parse(&INFO_TOOL, arguments).map(Self::Info),
            tools::LOGS => params::parse(&LOGS_TOOL, arguments).map(Self::Logs),
            _ => return None,
        })
    }

    /// The tool and action it calls.
    pub(crate) fn action(&self) -> Action {
        match self {
            Self::Backup(a) => match a.action {
                BackupAction::BackupCreate => Action::BackupCreate,
                BackupAction::BackupList => Action::BackupList,
                BackupAction::BackupRestore => Action::BackupRestore,
                BackupAction::SnapshotCreate => Action::SnapshotCreate,
                BackupAction::SnapshotList => Action::SnapshotList,
                BackupAction::SnapshotDelete => Action::SnapshotDelete,
                BackupAction::SnapshotRestore => Action::SnapshotRestore,
            },
            Self::Maintain(a) => match a.action {
                MaintainAction::Update => Action::Update,
                MaintainAction::Restart => Action::Restart,
                MaintainAction::Maintain => Action::Maintain,
            },
            Self::Info(a) => match a.action {
                InfoAction::List => Action::InfoList,
                InfoAction::Status => Action::InfoStatus,
                InfoAction::Health => Action::InfoHealth,
            },
            Self::Logs(a) => match a.action {
                LogsAction::Logs => Action::Logs,
                LogsAction::Monitor => Action::Monitor,
            },
        }
    }

    /// The action's name (`backup-create`, `maintain`, ...).
    pub(crate) fn label(&self) -> &'static str {
        self.action().parts().1
    }

    /// Whether this is long work, as the operations table says
    /// ([`crate::policy::Rule::long_running`]): backups and restores,
    /// snapshot creation and restore, updates, reboots and maintenance.
    /// Long work reports progress, may be cancelled at its safe points, and
    /// runs as a task for clients that support tasks.
    pub(crate) fn is_long(&self) -> bool {
        self.action().parts().2.rule().long_running
    }

    /// Runs the call in `ctx` (whose progress hook receives the
    /// operation's steps) and renders its result.
    pub(crate) async fn run(self, ctx: &Context) -> CallToolResult {
        match self {
            Self::Backup(args) => backup(ctx, args).await,
            Self::Maintain(args) => maintain(ctx, args).await,
            Self::Info(args) => info(ctx, args).await,
            Self::Logs(args) => logs(ctx, args).await,
        }
    }
}

async fn backup(ctx: &Context, args: BackupArgs) -> CallToolResult {
    let server = params::server(&args.server);
    let snapshot_id = args.snapshot_id.as_deref().unwrap_or("");
    let repo = args.repo.as_deref().filter(|r| !r.trim().is_empty());
    match args.action {
        BackupAction::BackupCreate => {
            let options = CreateOptions {
                repo: RepoChoice::from_arg(repo),
                ..CreateOptions::default()
            };
            finish(
                ops::backup_create_with(ctx, server, options).await,
                BackupOutput::BackupCreate,
            )
        }
        BackupAction::BackupList => finish(
            ops::backup_list_in(ctx, server, repo).await,
            BackupOutput::BackupList,
        ),
        BackupAction::BackupRestore => finish(
            ops::backup_restore_from(ctx, server, args.backup_id.as_deref(), repo).await,
            BackupOutput::BackupRestore,
        ),
        BackupAction::SnapshotCreate => finish(
            ops::snapshot_create(ctx, server).await,
            BackupOutput::SnapshotCreate,
        ),
        BackupAction::SnapshotList => finish(
            ops::snapshot_list(ctx, server).await,
            BackupOutput::SnapshotList,
        ),
        BackupAction::SnapshotDelete => finish(
            ops::snapshot_delete(ctx, server, snapshot_id).await,
            BackupOutput::SnapshotDelete,
        ),
        BackupAction::SnapshotRestore => finish(
            ops::snapshot_restore(ctx, server, snapshot_id).await,
            BackupOutput::SnapshotRestore,
        ),
    }
}

async fn maintain(ctx: &Context, args: MaintainArgs) -> CallToolResult {
    let server = params::server(&args.server);
    match args.action {
        MaintainAction::Update => finish(ops::update(ctx, server).await, MaintainOutput::Update),
        MaintainAction::Restart => finish(ops::restart(ctx, server).await, MaintainOutput::Restart),
        MaintainAction::Maintain => {
            let options = MaintainOptions {
                skip_reboot: args.skip_reboot,
                reboot_even_if_unhealthy: args.reboot_even_if_unhealthy,
                snapshot: args.snapshot,
            };
            finish(
                ops::maintain(ctx, server, options).await,
                MaintainOutput::Maintain,
            )
        }
    }
}

async fn info(ctx: &Context, args: InfoArgs) -> CallToolResult {
    let server = params::server(&args.server);
    match args.action {
        InfoAction::List => finish(ops::server_list(ctx).await, InfoOutput::List),
        InfoAction::Status => finish(ops::server_status(ctx, server).await, InfoOutput::Status),
        InfoAction::Health => finish(ops::server_health(ctx, server).await, InfoOutput::Health),
    }
}

async fn logs(ctx: &Context, args: LogsArgs) -> CallToolResult {
    let server = params::server(&args.server);
    match args.action {
        LogsAction::Logs => {
            let source = match args.source {
                LogsSource::System => LogSource::System,
                LogsSource::Platform => LogSource::Platform,
            };
            finish(
                ops::logs(ctx, server, source, args.lines).await,
                LogsOutput::Logs,
            )
        }
        LogsAction::Monitor => finish(ops::monitor(ctx, server).await, LogsOutput::Monitor),
    }
}
