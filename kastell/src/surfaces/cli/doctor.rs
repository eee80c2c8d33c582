//! `kastell doctor [server] [--repo NAME]`: prints what
//! [`crate::surfaces::doctor::diagnose`] found, and whether each configured
//! repository's agent-facing credential is append-only
//! ([`crate::engine::repos::append_only`]). Exits 1 when something needs attention
//! (a store problem, an unreachable server, a repository credential that
//! can delete backups or could not be checked, a token its provider
//! refuses with `--check-tokens`), after printing the whole report.
//! `--fix` first makes the safe repairs ([`crate::surfaces::doctor_fix`]).

use std::process::ExitCode;

use clap::Args;
use kastell_core::{HostKeyTrust, Result};
use serde::Serialize;

use super::Context;
use crate::engine::repos::RepoRegistry;
use crate::engine::repos::append_only::{AppendOnlyCheck, check_all};
use crate::surfaces::doctor::{DoctorReport, ServerCheck, diagnose};
use crate::surfaces::leftovers::LeftoverCheck;
use crate::surfaces::token_check::{TokenCheck, check_tokens};

/// Arguments of `kastell doctor`.
#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// A server (name or IP) to check over SSH as well.
    pub server: Option<String>,
    /// Check only this repository's credential (default: every configured
    /// repository).
    #[arg(long, value_name = "NAME")]
    pub repo: Option<String>,
    /// Ask each provider's API whether each token kastell can use (its
    /// variable, and every account `kastell auth set` stored) is valid,
    /// read-only or refused; the tokens are never shown.
    #[arg(long)]
    pub check_tokens: bool,
    /// First repair what is safe to repair, saying what was done: the
    /// kastell directory's and its files' modes (0700/0600) and locks
    /// whose owner is gone; and it deletes the servers scratch drills left
    /// at the providers (marked kastell-drill) and the SSH keys kastell
    /// uploaded that no server of kastell's uses. What it cannot fix is
    /// reported with the command to run.
    #[arg(long)]
    pub fix: bool,
}

/// The JSON report: the doctor's, and the repositories' checks.
#[derive(Serialize)]
struct FullReport<'a> {
    #[serde(flatten)]
    report: &'a DoctorReport,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    repositories: &'a [AppendOnlyCheck],
    #[serde(skip_serializing_if = "Option::is_none")]
    repositories_problem: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fixed: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tokens: Option<&'a [TokenCheck]>,
    leftovers: &'a LeftoverCheck,
}

/// Runs `kastell doctor`. Fails only when the store cannot be opened or the
/// named server cannot be resolved; problems found are reported and give
/// exit code 1.
pub(crate) async fn run(args: DoctorArgs, ctx: &Context) -> Result<ExitCode> {
    let fixed = if args.fix {
        Some(crate::surfaces::doctor_fix::fix(&ctx.kastell_dir()?)?)
    } else {
        None
    };
    let store = ctx.store()?;
    let report = diagnose(&store, &ctx.env, args.server.as_deref()).await?;
    let (repositories, unreadable) = check_repositories(ctx, args.repo.as_deref()).await?;
    let octx = super::fleet::ops_context(ctx)?;
    let tokens = if args.check_tokens {
        Some(check_tokens(&octx).await)
    } else {
        None
    };
    let leftovers = crate::surfaces::leftovers::check(&octx, args.fix).await;
    if ctx.out.is_json() {
        ctx.out.json(&FullReport {
            report: &report,
            repositories: &repositories,
            repositories_problem: unreadable.as_deref(),
            fixed: fixed.as_deref(),
            tokens: tokens.as_deref(),
            leftovers: &leftovers,
        })?;
    } else {
        if let Some(fixed) = &fixed {
            if fixed.is_empty() {
                ctx.out.line("fix: nothing needed fixing")?;
            }
            for line in fixed {
                ctx.out.line(format_args!("fixed: {line}"))?;
            }
        }
        print_human(ctx, &report)?;
        if let Some(tokens) = &tokens {
            print_tokens(ctx, tokens)?;
        }
        if let Some(problem) = &unreadable {
            ctx.out
                .line(format_args!("repositories: problem: {problem}"))?;
        }
        for check in &repositories {
            for line in check.lines() {
                ctx.out.line(line)?;
            }
        }
        for line in leftovers.lines() {
            ctx.out.line(line)?;
        }
    }
    let repositories_ok =
        unreadable.is_none() && !repositories.iter().any(AppendOnlyCheck::needs_attention);
    let tokens_ok = tokens
        .as_deref()
        .is_none_or(|t| !t.iter().any(TokenCheck::failed));
    Ok(
        if report.healthy() && repositories_ok && tokens_ok && !leftovers.needs_attention() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
    )
}

/// The append-only checks of the repository `only` (refused when it is not
/// configured or the list cannot be read) or of every configured one (an
/// unreadable list is then a problem in the report, not a failure).
async fn check_repositories(
    ctx: &Context,
    only: Option<&str>,
) -> Result<(Vec<AppendOnlyCheck>, Option<String>)> {
    let registry = match (RepoRegistry::load(&ctx.kastell_dir()?), only) {
        (Ok(registry), _) => registry,
        (Err(e), Some(_)) => return Err(e),
        (Err(e), None) => return Ok((Vec::new(), Some(e.to_string()))),
    };
    let configs = match only {
        Some(name) => vec![registry.get(name)?.clone()],
        None => registry.all().to_vec(),
    };
    Ok((check_all(configs, &ctx.env).await, None))
}

/// The token checks as a table (or a line saying there are none).
fn print_tokens(ctx: &Context, tokens: &[TokenCheck]) -> Result<()> {
    if tokens.is_empty() {
        return ctx
            .out
            .line("tokens: none (set a provider's variable or run `kastell auth set PROVIDER`)");
    }
    let rows: Vec<Vec<String>> = tokens
        .iter()
        .map(|t| {
            vec![
                t.provider.clone(),
                t.account.clone(),
                t.source.clone(),
                match &t.detail {
                    Some(detail) => format!("{}: {detail}", t.status),
                    None => t.status.to_owned(),
                },
            ]
        })
        .collect();
    ctx.out
        .table(&["PROVIDER", "ACCOUNT", "FROM", "TOKEN"], &rows)
}

fn print_human(ctx: &Context, report: &DoctorReport) -> Result<()> {
    let out = &ctx.out;
    out.line(format_args!("kastell {}", report.version))?;
    if report.providers.is_empty() {
        out.line("providers: none compiled in")?;
    } else {
        let rows: Vec<Vec<String>> = report
            .providers
            .iter()
            .map(|p| {
                vec![
                    p.id.to_owned(),
                    p.display_name.to_owned(),
                    p.token_env.to_owned(),
                    if p.token_set { "set" } else { "not set" }.to_owned(),
                ]
            })
            .collect();
        out.table(&["PROVIDER", "NAME", "TOKEN", "TOKEN SET"], &rows)?;
    }
    if report.platforms.is_empty() {
        out.line("platforms: none compiled in")?;
    } else {
        let ids: Vec<&str> = report.platforms.iter().map(|p| p.id).collect();
        out.line(format_args!("platforms: {}", ids.join(", ")))?;
    }
    let store = &report.store;
    let state = if store.problems.is_empty() {
        "ok"
    } else {
        "NEEDS ATTENTION"
    };
    let presence = if store.exists {
        ""
    } else {
        " (not created yet)"
    };
    out.line(format_args!(
        "store: {}{presence}: {} server(s), {state}",
        store.path, store.servers
    ))?;
    for problem in &store.problems {
        out.line(format_args!("  problem: {problem}"))?;
    }
    for note in &store.notes {
        out.line(format_args!("  note: {note}"))?;
    }
    if let Some(check) = &report.server {
        print_server(ctx, check)?;
    }
    Ok(())
}

fn print_server(ctx: &Context, check: &ServerCheck) -> Result<()> {
    let out = &ctx.out;
    let target = format!("{}@{}:{}", check.user, check.ip, check.port);
    if !check.reachable {
        out.line(format_args!(
            "server {} ({target}): NOT REACHABLE",
            check.name
        ))?;
        if let Some(error) = &check.error {
            out.line(format_args!("  error ({}): {}", error.kind, error.message))?;
            if let Some(hint) = &error.hint {
                out.line(format_args!("  hint: {hint}"))?;
            }
        }
        return Ok(());
    }
    out.line(format_args!(
        "server {} ({target}): reachable, connect {} ms, round trip {} ms",
        check.name,
        check.connect_ms.unwrap_or(0),
        check.latency_ms.unwrap_or(0)
    ))?;
    if let Some(key) = &check.host_key {
        let trust = match key.trust {
            HostKeyTrust::Pinned => "matches the pinned key",
            HostKeyTrust::TrustedOnFirstUse => "trusted on first use and pinned",
            HostKeyTrust::NotApplicable => "no host key",
        };
        out.line(format_args!(
            "  host key {} ({}), {trust}",
            key.fingerprint, key.key_type
        ))?;
        if let Some(warning) = &key.warning {
            out.line(format_args!("  warning: {warning}"))?;
        }
    }
    if let Some(boot) = &check.boot_id {
        out.line(format_args!("  boot id {boot}"))?;
    }
    if let Some(tools) = &check.compressors {
        out.line(format_args!(
            "  compressors on the host: {} ({} core(s)); zstd {}",
            tools.summary(),
            tools.cores,
            match (tools.zstd, tools.zstd_bytes_per_sec) {
                (true, Some(speed)) => format!(
                    "present, {:.0} MB/s at level 1 on every core (zstd's benchmark)",
                    speed as f64 / 1e6
                ),
                (true, None) => "present".to_owned(),
                (false, _) => "MISSING: backups fall back to gzip or local zstd".to_owned(),
            }
        ))?;
    }
    if let (Some(link), Some(rate)) = (&check.link, check.link_mb_per_sec) {
        out.line(format_args!(
            "  link: {rate:.1} MB/s ({} bytes in {:.3} s)",
            link.bytes, link.seconds
        ))?;
    }
    if let Some(plan) = &check.compression_plan {
        out.line(format_args!("  backup compression (auto): {plan}"))?;
    }
    Ok(())
}
