//! `--dry-run`: the exact plan (servers, steps, commands and API calls)
//! and nothing else. Only the fleet store and the local backups are read:
//! no provider call, no SSH connection, no security-log entry.

use std::process::ExitCode;

use kastell_core::Result;
use serde::Serialize;

use super::Context;
use super::op::Op;
use crate::ops;
use crate::state::store::ServerRecord;

/// What a dry run would do.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Plan {
    /// Always `true`.
    pub dry_run: bool,
    /// The command (`restart`, `backup create`, ...).
    pub command: String,
    /// One entry per server, in the fleet's order.
    pub servers: Vec<ServerPlan>,
    /// The rollout's canary, batches and failure budget, for a rollout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<serde_json::Value>,
}

/// What a dry run would do on one server.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ServerPlan {
    /// Server name.
    pub server: String,
    /// Server IP.
    pub ip: String,
    /// Provider id, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Platform id (`bare` when it runs none).
    pub platform: String,
    /// Whether the policy allows it now.
    pub allowed: bool,
    /// Why not, when it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// The steps in order, with their commands and API calls.
    pub steps: Vec<String>,
}

/// The plan of `op` on `servers`.
pub(crate) fn plan(octx: &ops::Context, op: &Op, servers: &[ServerRecord]) -> Plan {
    Plan {
        dry_run: true,
        command: op.title(),
        rollout: None,
        servers: servers
            .iter()
            .map(|s| {
                let refused = op.refusal(octx, s);
                ServerPlan {
                    server: s.name.clone(),
                    ip: s.ip.clone(),
                    provider: s.provider_id().map(str::to_owned),
                    platform: s.platform_id().to_owned(),
                    allowed: refused.is_none(),
                    refused,
                    steps: op.plan(octx, s),
                }
            })
            .collect(),
    }
}

/// Prints the plan of `op` on `servers` (a rollout's stages first, when
/// it is one). Exit code 1 when the policy would refuse it on any of them.
pub(crate) fn print(
    ctx: &Context,
    octx: &ops::Context,
    op: &Op,
    servers: &[ServerRecord],
    rollout: Option<serde_json::Value>,
) -> Result<ExitCode> {
    let mut plan = plan(octx, op, servers);
    plan.rollout = rollout;
    let ok = plan.servers.iter().all(|s| s.allowed);
    if ctx.out.is_json() {
        ctx.out.json(&plan)?;
    } else {
        let out = &ctx.out;
        out.line(format_args!(
            "Dry run of {} on {} server(s); nothing will be changed.",
            plan.command,
            plan.servers.len()
        ))?;
        if let Some(rollout) = &plan.rollout {
            print_stages(ctx, rollout)?;
        }
        for s in &plan.servers {
            let provider = s.provider.as_deref().unwrap_or("manual");
            out.line(format_args!(
                "{} ({}, {provider}, {})",
                s.server, s.ip, s.platform
            ))?;
            if let Some(why) = &s.refused {
                out.line(format_args!("  would be refused: {why}"))?;
                continue;
            }
            for (i, step) in s.steps.iter().enumerate() {
                out.line(format_args!("  {}. {step}", i + 1))?;
            }
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A rollout's stages, one line each, and its failure budget.
fn print_stages(ctx: &Context, rollout: &serde_json::Value) -> Result<()> {
    let text = |key: &str| {
        rollout
            .get(key)
            .map(ToString::to_string)
            .unwrap_or_default()
    };
    ctx.out.line(format_args!(
        "Rollout: stops at {} failure(s), pause {}s between batches",
        text("maxFailures"),
        text("pauseSecs")
    ))?;
    let stages = rollout
        .get("stages")
        .and_then(serde_json::Value::as_array)
        .cloned()
        .unwrap_or_default();
    for stage in stages {
        let name = stage
            .get("stage")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("");
        let servers: Vec<&str> = stage
            .get("servers")
            .and_then(serde_json::Value::as_array)
            .map(|a| a.iter().filter_map(serde_json::Value::as_str).collect())
            .unwrap_or_default();
        ctx.out
            .line(format_args!("  {name}: {}", servers.join(", ")))?;
    }
    Ok(())
}
