//! `kastell alert send|test`: one POST to `KASTELL_ALERT_WEBHOOK` (see
//! [`crate::engine::schedule::alert`]). The URL is never printed: output and errors
//! name only its scheme and host.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use kastell_core::{Error, Result};

use super::Context;
use crate::engine::schedule::alert::{self, Alert, Webhook};

/// The alert commands.
#[derive(Debug, Clone, Subcommand)]
pub enum AlertCommand {
    /// Report a failed systemd unit to KASTELL_ALERT_WEBHOOK (what
    /// kastell-alert@.service runs when a scheduled job fails).
    Send(SendArgs),
    /// Send a test alert to KASTELL_ALERT_WEBHOOK.
    Test(TestArgs),
}

/// Arguments of `alert send`.
#[derive(Debug, Clone, Args)]
pub struct SendArgs {
    /// The unit that failed (kastell-backup-web-1.service).
    #[arg(long, value_name = "UNIT")]
    pub unit: String,
    /// What to say (default: which unit failed, where and when).
    #[arg(long, value_name = "TEXT")]
    pub message: Option<String>,
    /// The unit is a user unit: read its journal with `journalctl
    /// --user-unit`.
    #[arg(long)]
    pub user: bool,
    /// Do not attach the unit's last journal lines.
    #[arg(long)]
    pub no_journal: bool,
}

/// Arguments of `alert test`.
#[derive(Debug, Clone, Args)]
pub struct TestArgs {
    /// What to say instead of the standard test text.
    #[arg(long, value_name = "TEXT")]
    pub message: Option<String>,
}

/// Runs an alert command.
pub(crate) async fn run(cmd: AlertCommand, ctx: &Context) -> Result<ExitCode> {
    // The webhook is checked first: a bad URL fails before anything runs.
    let webhook = Webhook::from_env(&ctx.env)?;
    let alert = match cmd {
        AlertCommand::Send(args) => {
            alert::check_unit_name(&args.unit)?;
            let journal = if args.no_journal {
                Vec::new()
            } else {
                let (unit, user) = (args.unit.clone(), args.user);
                tokio::task::spawn_blocking(move || alert::journal_tail(&unit, user))
                    .await
                    .map_err(|e| Error::unexpected(format!("reading the journal failed: {e}")))?
            };
            Alert::failure(&args.unit, args.message.as_deref(), journal)?
        }
        AlertCommand::Test(args) => Alert::test(args.message.as_deref()),
    };
    let delivery = alert::send(&webhook, &alert).await?;
    if ctx.json {
        ctx.out.json(&delivery)?;
    } else {
        let what = match &alert.unit {
            Some(unit) => format!("the alert about {unit}"),
            None => "a test alert".to_owned(),
        };
        ctx.out.line(format!(
            "Sent {what} to {} ({} body, answer {})",
            delivery.to,
            serde_json::to_value(delivery.format)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            delivery.status
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}
