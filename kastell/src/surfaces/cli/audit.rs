//! `kastell audit verify|show`: check the hash-chained audit log
//! ([`crate::state::audit`]) against its anchor, and show its newest entries.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use kastell_core::Result;

use super::Context;
use crate::state::audit::{AuditEntry, AuditFilter, AuditLog, Outcome};

/// The audit commands.
#[derive(Debug, Clone, Subcommand)]
pub enum AuditCommand {
    /// Check every line of the audit log and its anchor (exit code 0
    /// when intact, 1 naming the first problem when not).
    Verify,
    /// Show the newest audit entries.
    Show(ShowArgs),
}

/// Arguments of `audit show`.
#[derive(Debug, Clone, Args)]
pub struct ShowArgs {
    /// Only entries about this server.
    #[arg(long, value_name = "SERVER")]
    pub server: Option<String>,
    /// Only entries of this operation (backup-restore, snapshot-create, ...).
    #[arg(long, value_name = "OP")]
    pub op: Option<String>,
    /// Only entries that ended this way: ok, error, refused, dry-run,
    /// declined or started.
    #[arg(long, value_name = "OUTCOME", value_parser = parse_outcome)]
    pub outcome: Option<Outcome>,
    /// At most this many entries, the newest.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: usize,
}

fn parse_outcome(text: &str) -> std::result::Result<Outcome, String> {
    Outcome::parse(text).ok_or_else(|| {
        let names: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
        format!("{text:?} is not one of {}", names.join(", "))
    })
}

/// Runs an audit command.
pub(crate) fn run(cmd: AuditCommand, ctx: &Context) -> Result<ExitCode> {
    let log = AuditLog::for_env(&ctx.kastell_dir()?, &ctx.env)?;
    match cmd {
        AuditCommand::Verify => verify(&log, ctx),
        AuditCommand::Show(args) => show(&log, &args, ctx),
    }
}

fn verify(log: &AuditLog, ctx: &Context) -> Result<ExitCode> {
    let report = log.verify()?.into_result()?;
    if ctx.json {
        ctx.out.json(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut summary = report.summary();
    if let Some(first) = summary.get(..1) {
        summary = first.to_uppercase() + &summary[1..];
    }
    ctx.out.line(summary)?;
    for warning in &report.warnings {
        ctx.out.line(format!("warning: {warning}"))?;
    }
    ctx.out.line(format!("anchor: {}", report.anchor_path))?;
    Ok(ExitCode::SUCCESS)
}

fn show(log: &AuditLog, args: &ShowArgs, ctx: &Context) -> Result<ExitCode> {
    let filter = AuditFilter {
        server: args.server.clone(),
        op: args.op.clone(),
        outcome: args.outcome,
        limit: Some(args.limit),
    };
    let page = log.entries(&filter)?;
    if ctx.json {
        ctx.out.json(&page)?;
        return Ok(ExitCode::SUCCESS);
    }
    if page.entries.is_empty() {
        ctx.out.line("No audit entries.")?;
    } else {
        let rows: Vec<Vec<String>> = page.entries.iter().map(row).collect();
        ctx.out.table(
            &[
                "TIME", "SURFACE", "CLIENT", "OP", "SERVER", "OUTCOME", "DURATION", "IDS",
            ],
            &rows,
        )?;
    }
    if page.skipped_corrupt > 0 {
        ctx.out.line(format!(
            "{} damaged line(s) skipped; run `kastell audit verify` to see where",
            page.skipped_corrupt
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// One table row; the table escapes control characters in every cell.
fn row(entry: &AuditEntry) -> Vec<String> {
    let ids = entry
        .ids
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    vec![
        entry.ts.clone(),
        entry.surface.as_str().to_owned(),
        entry.client.clone().unwrap_or_else(|| "-".to_owned()),
        entry.op.clone(),
        entry.server.clone().unwrap_or_else(|| "-".to_owned()),
        entry.outcome.as_str().to_owned(),
        duration(entry.duration_ms),
        ids,
    ]
}

/// `340ms`, `12.3s`, `4m05s`.
fn duration(ms: u64) -> String {
    match ms {
        0..1000 => format!("{ms}ms"),
        1000..60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        _ => format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::audit::AuditSurface;
    use crate::surfaces::cli::{Cli, Command};
    use clap::Parser;

    #[test]
    fn show_parses_its_filters() {
        let cli = Cli::try_parse_from([
            "kastell",
            "audit",
            "show",
            "--server",
            "web-1",
            "--outcome",
            "refused",
            "--limit",
            "5",
        ])
        .unwrap();
        let Command::Audit(AuditCommand::Show(args)) = cli.command else {
            panic!("audit show expected");
        };
        assert_eq!(args.server.as_deref(), Some("web-1"));
        assert_eq!(args.outcome, Some(Outcome::Refused));
        assert_eq!(args.limit, 5);
        let err = Cli::try_parse_from(["kastell", "audit", "show", "--outcome", "fine"]);
        assert_eq!(err.unwrap_err().exit_code(), 2);
        let cli = Cli::try_parse_from(["kastell", "audit", "show"]).unwrap();
        let Command::Audit(AuditCommand::Show(args)) = cli.command else {
            panic!("audit show expected");
        };
        assert_eq!(args.limit, 20);
    }

    #[test]
    fn rows_show_every_column() {
        let mut entry = AuditEntry::new(AuditSurface::Mcp, "backup-restore", Outcome::Ok)
            .with_client("claude-code 1.0")
            .with_id("backup_id", "b-1")
            .with_id("snapshot_id", "s-2")
            .with_duration(std::time::Duration::from_millis(65_500));
        entry.ts = "2026-01-02T03:04:05.000Z".into();
        assert_eq!(
            row(&entry),
            vec![
                "2026-01-02T03:04:05.000Z",
                "mcp",
                "claude-code 1.0",
                "backup-restore",
                "-",
                "ok",
                "1m05s",
                "backup_id=b-1 snapshot_id=s-2",
            ]
        );
        assert_eq!(duration(340), "340ms");
        assert_eq!(duration(12_340), "12.3s");
    }
}
