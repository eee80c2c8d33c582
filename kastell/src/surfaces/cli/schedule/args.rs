//! The arguments of `kastell schedule install|list|remove|run`, and where
//! a unit directory is.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use kastell_core::{Error, Result};

use super::Context;
use super::rotate::checked_keep_rules;
use crate::engine::schedule::{self, Scope};

/// The schedule commands.
#[derive(Debug, Clone, Subcommand)]
pub enum ScheduleCommand {
    /// Write systemd units that run backups, prunes and restore drills on a
    /// calendar, and report a failed one to KASTELL_ALERT_WEBHOOK.
    Install(Box<InstallArgs>),
    /// The kastell units in the unit directory (--on-server: the servers
    /// that back themselves up, and what each says about its last run).
    #[command(visible_alias = "show")]
    List(ListArgs),
    /// Remove units kastell wrote (never any other file).
    Remove(RemoveArgs),
    /// Run a server's on-server backup now, over SSH, as its timer would.
    Run(RunArgs),
}

/// Arguments of `schedule list`.
#[derive(Debug, Clone, Default, Args)]
pub struct ListArgs {
    /// Where the units are.
    #[command(flatten)]
    pub dir: DirArgs,
    /// List the on-server backups instead (asks each server over SSH).
    #[arg(long, conflicts_with_all = ["system", "unit_dir"])]
    pub on_server: bool,
}

/// Arguments of `schedule run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Run the on-server backup (the only kind `run` runs; required).
    #[arg(long, required = true)]
    pub on_server: bool,
    /// The server (name or IP); optional when there is only one.
    #[arg(long, value_name = "NAME", conflicts_with = "all")]
    pub server: Option<String>,
    /// Every server in the fleet.
    #[arg(long)]
    pub all: bool,
}

/// Which unit directory: user (default), system, or one given.
#[derive(Debug, Clone, Default, Args)]
pub struct DirArgs {
    /// User units, run by your own service manager (the default):
    /// $XDG_CONFIG_HOME/systemd/user, else ~/.config/systemd/user.
    #[arg(long, conflicts_with = "system")]
    pub user: bool,
    /// System units in /etc/systemd/system (needs root), run as the owner of
    /// the kastell directory.
    #[arg(long)]
    pub system: bool,
    /// Use this unit directory instead.
    #[arg(long, value_name = "DIR")]
    pub unit_dir: Option<PathBuf>,
}

impl DirArgs {
    pub(super) fn scope(&self) -> Scope {
        if self.system {
            Scope::System
        } else {
            Scope::User
        }
    }

    /// The unit directory, absolute. Refuses as
    /// [`schedule::default_unit_dir`] does.
    pub(super) fn dir(&self, ctx: &Context) -> Result<PathBuf> {
        match &self.unit_dir {
            Some(dir) => std::path::absolute(dir)
                .map_err(|e| Error::io(format!("locating {}", dir.display()), e)),
            None => schedule::default_unit_dir(self.scope(), &ctx.env),
        }
    }
}

/// Arguments of `schedule install`.
#[derive(Debug, Clone, Args)]
pub struct InstallArgs {
    /// Where the units go.
    #[command(flatten)]
    pub dir: DirArgs,
    /// The server (name or IP) to back up and drill; optional when there is
    /// only one.
    #[arg(long, value_name = "NAME", conflicts_with = "all")]
    pub server: Option<String>,
    /// Back up the whole fleet in one job (`backup create --all`) and drill
    /// each of its servers.
    #[arg(long)]
    pub all: bool,
    /// The repository backups also go to, drills restore from and the prune
    /// job prunes (see `kastell repo`).
    #[arg(long, value_name = "NAME")]
    pub repo: Option<String>,
    /// When to back up (systemd calendar; default `*-*-* 03:00:00`).
    #[arg(long, value_name = "CALENDAR")]
    pub backup_at: Option<String>,
    /// When to prune the repository (default `*-*-* 04:30:00`).
    #[arg(long, value_name = "CALENDAR", requires = "repo")]
    pub prune_at: Option<String>,
    /// When to run the restore drill (default `Sun *-*-* 05:00:00`).
    #[arg(long, value_name = "CALENDAR", conflicts_with = "no_drill")]
    pub drill_at: Option<String>,
    /// Schedule no restore drill.
    #[arg(long)]
    pub no_drill: bool,
    /// Also rehearse recovery on a throwaway server on this calendar
    /// (`drill --scratch`, per server; billable, under its default cost
    /// cap and time limit; no such job unless given).
    #[arg(long, value_name = "CALENDAR")]
    pub scratch_drill_at: Option<String>,
    /// Also rotate the provider snapshots kastell took, keeping by these
    /// rules (`daily=7,weekly=4`; also `last=N`, `monthly=N`): see
    /// `kastell snapshot rotate`.
    #[arg(long, value_name = "RULES", value_parser = checked_keep_rules)]
    pub rotate_keep: Option<String>,
    /// When to rotate snapshots (default `*-*-* 05:30:00`).
    #[arg(long, value_name = "CALENDAR", requires = "rotate_keep")]
    pub rotate_at: Option<String>,
    /// An environment file (mode 0600) the units read: provider tokens,
    /// AWS_* keys, KASTELL_ALERT_WEBHOOK. Its values never enter a unit.
    #[arg(long, value_name = "PATH")]
    pub env_file: Option<PathBuf>,
    /// Print the units and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Install on each server (--server, --all) a timer that backs it up
    /// there, straight into a repository of its own under --repo (S3 or
    /// SFTP), with its own login: no backup byte passes through this
    /// machine (README, "On-server backups").
    #[arg(
        long,
        requires = "repo",
        conflicts_with_all = ["prune_at", "drill_at", "no_drill", "scratch_drill_at", "rotate_keep", "env_file", "system", "unit_dir"]
    )]
    pub on_server: bool,
    /// With --on-server and an S3 repository: the directory holding each
    /// server's own S3 key as `<server>.env` (AWS_ACCESS_KEY_ID=,
    /// AWS_SECRET_ACCESS_KEY=; mode 0600). An SFTP repository needs none:
    /// each server makes its own SSH key.
    #[arg(long, value_name = "DIR", requires = "on_server")]
    pub keys_dir: Option<PathBuf>,
    /// With --on-server: a healthchecks-style URL each server pings at
    /// the start (URL/start), on success (URL) and on failure (URL/fail).
    /// Kept only in the server's 0600 environment file.
    #[arg(long, value_name = "URL", requires = "on_server")]
    pub ping_url: Option<String>,
}

/// Arguments of `schedule remove`.
#[derive(Debug, Clone, Args)]
pub struct RemoveArgs {
    /// Units to remove (`kastell-backup-web-1`, with or without .service or
    /// .timer); default: every unit kastell wrote there.
    #[arg(value_name = "UNIT")]
    pub units: Vec<String>,
    /// Where the units are.
    #[command(flatten)]
    pub dir: DirArgs,
    /// Show what would be removed and remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation (required when not in a terminal).
    #[arg(long)]
    pub force: bool,
    /// Remove the on-server backup of --server or --all instead: its timer
    /// stopped and every file kastell wrote there removed (the
    /// repository and its backups stay).
    #[arg(long, conflicts_with_all = ["units", "system", "unit_dir"])]
    pub on_server: bool,
    /// With --on-server: the server (name or IP).
    #[arg(
        long,
        value_name = "NAME",
        requires = "on_server",
        conflicts_with = "all"
    )]
    pub server: Option<String>,
    /// With --on-server: every server in the fleet.
    #[arg(long, requires = "on_server")]
    pub all: bool,
}
