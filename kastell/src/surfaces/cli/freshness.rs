//! `kastell backup freshness`: how old each on-server backup's newest
//! complete run is, read from the repositories themselves (see
//! [`crate::engine::onserver::freshness`]). Exits 1 and sends the alert
//! (`KASTELL_ALERT_WEBHOOK`) when a server's is too old, missing or
//! unreadable, so it can run on a timer on any machine that can read
//! the repositories.

use std::process::ExitCode;

use clap::Args;
use kastell_core::{Error, Result};
use serde::Serialize;

use super::Context;
use crate::engine::onserver::freshness::{self, DEFAULT_MAX_AGE, Freshness, Verdict};
use crate::engine::onserver::state::OnServerList;
use crate::engine::repos::RepoRegistry;
use crate::engine::schedule::alert::{self, Alert, Webhook};

/// Arguments of `backup freshness`.
#[derive(Debug, Clone, Args)]
pub struct FreshnessArgs {
    /// Only these servers (default: every server with an on-server backup).
    #[arg(value_name = "SERVER")]
    pub servers: Vec<String>,
    /// The oldest a newest backup may be (`26h`, `90m`, `2d`, `1d12h`).
    #[arg(long, value_name = "AGE", default_value = DEFAULT_MAX_AGE)]
    pub max_age: String,
    /// Do not send the alert (still exits 1 when a server is stale).
    #[arg(long)]
    pub no_alert: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    max_age: String,
    servers: Vec<Freshness>,
    /// Whether the alert was sent (absent: nothing to alert on or
    /// `--no-alert`).
    #[serde(skip_serializing_if = "Option::is_none")]
    alerted: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alert_error: Option<String>,
}

/// Runs `backup freshness`.
pub(crate) async fn run(ctx: &Context, args: &FreshnessArgs) -> Result<ExitCode> {
    let max_age = freshness::parse_age(&args.max_age)?;
    let kastell_dir = ctx.kastell_dir()?;
    let list = OnServerList::load(&kastell_dir)?;
    let registry = RepoRegistry::load(&kastell_dir)?;
    if list.all().is_empty() {
        return Err(
            Error::not_found("no server backs itself up (no on-server backups)")
                .with_hint("Install them with `kastell schedule install --on-server --repo NAME`"),
        );
    }
    for wanted in &args.servers {
        if !list.all().contains_key(wanted) {
            let known: Vec<&str> = list.all().keys().map(String::as_str).collect();
            return Err(
                Error::not_found(format!("{wanted} has no on-server backup"))
                    .with_hint(format!("Servers with one: {}", known.join(", "))),
            );
        }
    }
    let mut results = Vec::new();
    for (server, entry) in list.all() {
        if !args.servers.is_empty() && !args.servers.contains(server) {
            continue;
        }
        let result = match registry.get(&entry.repository) {
            Ok(config) => freshness::check(server, config, &ctx.env, max_age).await,
            Err(e) => Freshness {
                server: server.clone(),
                repository: entry.repository.clone(),
                verdict: Verdict::Unreadable,
                newest: None,
                age_seconds: None,
                error: Some(e.to_string()),
            },
        };
        results.push(result);
    }
    let alarming: Vec<String> = results
        .iter()
        .filter(|f| f.is_alarming())
        .map(Freshness::line)
        .collect();
    let (alerted, alert_error) = if alarming.is_empty() || args.no_alert {
        (None, None)
    } else {
        match Webhook::from_env(&ctx.env) {
            Ok(webhook) => {
                match alert::send(&webhook, &Alert::stale(&args.max_age, &alarming)).await {
                    Ok(_) => (Some(true), None),
                    Err(e) => (Some(false), Some(e.to_string())),
                }
            }
            Err(e) => (Some(false), Some(e.to_string())),
        }
    };
    let report = Report {
        max_age: args.max_age.clone(),
        servers: results,
        alerted,
        alert_error,
    };
    if ctx.json {
        ctx.out.json(&report)?;
    } else {
        let rows: Vec<Vec<String>> = report
            .servers
            .iter()
            .map(|f| {
                vec![
                    f.server.clone(),
                    f.repository.clone(),
                    f.newest.clone().unwrap_or_else(|| "-".to_owned()),
                    f.age_seconds
                        .map(freshness::age_words)
                        .unwrap_or_else(|| "-".to_owned()),
                    serde_json::to_value(f.verdict)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                ]
            })
            .collect();
        ctx.out
            .table(&["SERVER", "REPOSITORY", "NEWEST", "AGE", "VERDICT"], &rows)?;
        for f in report.servers.iter().filter(|f| f.error.is_some()) {
            ctx.out.line(f.line())?;
        }
        match (&report.alerted, &report.alert_error) {
            (Some(true), _) => ctx.out.line("Sent the alert.")?,
            (Some(false), Some(e)) => eprintln!("warning: the alert was not sent: {e}"),
            _ => {}
        }
    }
    Ok(if alarming.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
