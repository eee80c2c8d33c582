//! `snapshot-rotate`: keep rules (last N, daily, weekly, monthly) for the
//! provider snapshots kastell took of a server, on every provider with
//! snapshots. Only snapshots named by kastell's marker (`kastell-<epoch-ms>`
//! from `snapshot create`, `kastell-maintain-<epoch-ms>` from `maintain`)
//! are candidates, and where the provider marks snapshots
//! ([`Snapshot::managed`]: Hetzner's `managed-by=kastell` label, the
//! `kastell-managed` image tag at Linode and DigitalOcean) only those that
//! also carry the marker; their time is the one kastell wrote into the
//! name. Vultr snapshots can carry no marker (a description, no tags), so
//! there the name alone decides.
//! Nothing is deleted without `apply`; the monthly cost before and after
//! is shown; a schedule that stopped taking snapshots refuses the rotation
//! (see [`rules::guard`]).

mod rules;

#[allow(unused_imports)]
use super::Operation as _;
use super::reply::Reply;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use kastell_core::types::{Snapshot, SnapshotStatus};
use kastell_core::{CloudProvider, Error};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::context::{Context, server_id};
use super::operation::{CliCommand, CliTarget, McpAction, Operation, Scope, Spec};
use super::plan;
use super::result::{OpError, OpResult};
use super::snapshot::SnapshotListOp;
use super::suggest::Candidate;
use crate::policy::{Category, Rule};
use crate::state::store::ServerRecord;
use rules::{Dated, KeepRules};

/// The keep rules and whether to delete: `snapshot-rotate`'s arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, clap::Args)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RotateArgs {
    /// snapshot-rotate: keep N newest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000), help = "Keep the newest N of kastell's snapshots")]
    pub keep_last: Option<u32>,
    /// snapshot-rotate: keep N daily.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000), help = "Keep the newest snapshot of each of the last N days (UTC) that have one")]
    pub keep_daily: Option<u32>,
    /// snapshot-rotate: keep N weekly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000), help = "Keep the newest snapshot of each of the last N ISO weeks that have one")]
    pub keep_weekly: Option<u32>,
    /// snapshot-rotate: keep N monthly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000), help = "Keep the newest snapshot of each of the last N months that have one")]
    pub keep_monthly: Option<u32>,
    /// snapshot-rotate: delete (else dry run).
    #[serde(default)]
    #[arg(
        long,
        help = "Delete the snapshots the rules do not keep (without it nothing is deleted: the run only lists them)"
    )]
    pub apply: bool,
}

impl RotateArgs {
    fn rules(&self) -> KeepRules {
        KeepRules {
            last: self.keep_last,
            daily: self.keep_daily,
            weekly: self.keep_weekly,
            monthly: self.keep_monthly,
        }
    }

    /// `--keep-daily 7 --keep-weekly 4`.
    fn words(&self) -> String {
        let mut words = Vec::new();
        for (flag, n) in [
            ("--keep-last", self.keep_last),
            ("--keep-daily", self.keep_daily),
            ("--keep-weekly", self.keep_weekly),
            ("--keep-monthly", self.keep_monthly),
        ] {
            if let Some(n) = n {
                words.push(format!("{flag} {n}"));
            }
        }
        if words.is_empty() {
            "no keep rule".to_owned()
        } else {
            words.join(" ")
        }
    }
}

/// One of kastell's snapshots and what the rotation does with it.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotatedSnapshot {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// When taken.
    pub taken_at: String,
    /// The rules keeping it.
    pub kept_by: Vec<String>,
}

/// The rotation of one server's snapshots.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotRotate {
    /// Whether deleted (`apply`).
    pub applied: bool,
    /// Kept, newest first.
    pub kept: Vec<RotatedSnapshot>,
    /// Deleted (or would be).
    pub deleted: Vec<RotatedSnapshot>,
    /// Monthly cost now.
    pub monthly_cost_before: String,
    /// Monthly cost after.
    pub monthly_cost_after: String,
    /// What happened.
    pub message: String,
}

/// The reply carrying a [`SnapshotRotate`].
pub type SnapshotRotateResult = Reply<SnapshotRotate>;

/// The time kastell wrote into `name`, a snapshot of server `server`, when
/// it is one of kastell's snapshot names (`kastell-<epoch-ms>`,
/// `kastell-maintain-<epoch-ms>`, or the same after Linode's label
/// convention `kastell-<server>-`): the marker rotation goes by. Anything
/// else (another tool's, a person's, a name with more after the digits) is
/// `None`.
pub(crate) fn kastell_marker(name: &str, server: &str) -> Option<DateTime<Utc>> {
    marked_time(name).or_else(|| {
        let rest = name.strip_prefix(&format!("kastell-{server}-"))?;
        marked_time(&format!("kastell-{rest}"))
    })
}

/// Whether the provider's marker lets `snapshot` be rotated: a snapshot
/// the provider says is not kastell's (`managed == Some(false)`, such as a
/// Hetzner image named like kastell's but without its label) never is;
/// where the provider has no marker (`None`) the name decides.
fn is_candidate(snapshot: &Snapshot) -> bool {
    snapshot.managed != Some(false)
}

fn marked_time(name: &str) -> Option<DateTime<Utc>> {
    let digits = name
        .strip_prefix("kastell-maintain-")
        .or_else(|| name.strip_prefix("kastell-"))?;
    if !(10..=16).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let ms: i64 = digits.parse().ok()?;
    Utc.timestamp_millis_opt(ms).single()
}

/// Rotates `server`'s snapshots by `args`' rules. Order: policy (SAFE_MODE
/// blocks it; manual refused; token required; a destructive operation),
/// server, the rules (none or a 0 refused), provider, the listing;
/// then the schedule guard (refused, deleting nothing, when the rules imply
/// a schedule the newest snapshot is older than); then, with `apply`, the
/// deletions one by one (the provider checks each belongs to the server),
/// stopping at the first failure with what was deleted so far.
pub async fn snapshot_rotate(
    ctx: &Context,
    query: Option<&str>,
    args: &RotateArgs,
) -> OpResult<SnapshotRotateResult> {
    let admitted = ctx.admit(SnapshotRotateOp::ID, query)?;
    let server = admitted.server;
    let fail = |e: Error| OpError::from(e).on(&server);
    let rules = args.rules();
    rules.validate().map_err(fail)?;
    let provider = ctx.provider_for(&server).map_err(fail)?;
    let id = server_id(&server).map_err(fail)?;
    let listed = provider.list_snapshots(&id).await.map_err(fail)?;

    let ours: Vec<(&Snapshot, DateTime<Utc>)> = listed
        .iter()
        .filter(|s| s.status == SnapshotStatus::Available)
        .filter(|s| is_candidate(s))
        .filter_map(|s| kastell_marker(&s.name, id.as_str()).map(|at| (s, at)))
        .collect();
    let dated: Vec<Dated> = ours
        .iter()
        .enumerate()
        .map(|(index, (_, at))| Dated { index, at: *at })
        .collect();
    rules::guard(&rules, &dated, Utc::now()).map_err(fail)?;
    let mut kept = Vec::new();
    let mut doomed = Vec::new();
    for (index, reasons) in rules::apply(&rules, &dated) {
        let (snapshot, at) = ours[index];
        let shown = RotatedSnapshot {
            id: snapshot.id.to_string(),
            name: snapshot.name.clone(),
            taken_at: at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            kept_by: reasons,
        };
        if shown.kept_by.is_empty() {
            doomed.push((snapshot, shown));
        } else {
            kept.push(shown);
        }
    }
    let (before, after) = costs(provider.as_ref(), &id, &listed, &doomed).await;

    let mut deleted = Vec::new();
    if args.apply {
        let progress = ctx.progress();
        for (snapshot, shown) in doomed {
            progress.message(&format!("Deleting snapshot {} ({})", shown.id, shown.name));
            if let Err(e) = provider.delete_snapshot(&id, &snapshot.id).await {
                let done = deleted.len();
                let message = format!(
                    "Deleting snapshot {} failed after {done} deleted: {}",
                    shown.id,
                    e.message()
                );
                return Err(fail(e.with_message(message)).with_suggestions(ctx.suggest(
                    &server,
                    vec![Candidate::new(SnapshotListOp::ID, "See what is left")],
                )));
            }
            deleted.push(shown);
        }
    } else {
        deleted = doomed.into_iter().map(|(_, shown)| shown).collect();
    }
    let message = match (args.apply, deleted.len()) {
        (_, 0) => format!(
            "Nothing to delete: the rules keep all {} of kastell's snapshots",
            kept.len()
        ),
        (true, n) => format!("Deleted {n} of kastell's snapshots; kept {}", kept.len()),
        (false, n) => format!(
            "Dry run: would delete {n} of kastell's snapshots and keep {} (--apply deletes them)",
            kept.len()
        ),
    };
    Ok(Reply::on(
        &server,
        SnapshotRotate {
            applied: args.apply,
            kept,
            deleted,
            monthly_cost_before: before,
            monthly_cost_after: after,
            message,
        },
        ctx.suggest(
            &server,
            vec![Candidate::new(SnapshotListOp::ID, "See the snapshots")],
        ),
    ))
}

/// The monthly cost of all of the server's snapshots, before and after the
/// `doomed` go: each at its own size when known, else at the provider's
/// estimate for one of this server's, by the provider's rate per GB.
/// `unknown` for both when the provider gives no estimate.
async fn costs(
    provider: &dyn CloudProvider,
    id: &kastell_core::types::ServerId,
    listed: &[Snapshot],
    doomed: &[(&Snapshot, RotatedSnapshot)],
) -> (String, String) {
    let estimate = match provider.snapshot_cost_estimate(id).await {
        Ok(estimate) => estimate,
        Err(e) => {
            tracing::debug!("snapshot cost estimate failed: {e}");
            return ("unknown".to_owned(), "unknown".to_owned());
        }
    };
    let rate = if estimate.size_gb > 0.0 {
        estimate.monthly / estimate.size_gb
    } else {
        0.0
    };
    let cost = |s: &Snapshot| s.size_gb.map_or(estimate.monthly, |gb| gb * rate);
    let before: f64 = listed.iter().map(cost).sum();
    let gone: f64 = doomed.iter().map(|(s, _)| cost(s)).sum();
    let money = |v: f64| format!("{}{:.2}/mo", estimate.currency, v.max(0.0));
    (money(before), money(before - gone))
}

/// `snapshot-rotate`: keep rules for kastell's provider snapshots.
pub struct SnapshotRotateOp;

#[async_trait]
impl Operation for SnapshotRotateOp {
    const SPEC: &'static Spec = &Spec {
        rule: Rule::new("snapshot-rotate", Category::Destructive)
            .blocked(
                "Snapshot rotation is disabled in SAFE_MODE",
                "Set KASTELL_SAFE_MODE=false to enable snapshot rotation (it deletes snapshots)",
            )
            .cloud_only(),
        scope: Scope::Server,
        mcp: Some(McpAction {
            tool: "server_backup",
            action: "snapshot-rotate",
            doc: "keep rules (keepLast/Daily/Weekly/Monthly) for kastell's snapshots; deletes only with apply.",
        }),
        cli: Some(CliCommand {
            path: &["snapshot", "rotate"],
            about: "Keep rules for kastell's own snapshots (a dry run unless --apply).",
            target: CliTarget::Fleet,
        }),
    };
    type Args = RotateArgs;
    type Body = SnapshotRotateResult;

    async fn run(ctx: &Context, query: Option<&str>, args: &RotateArgs) -> OpResult<Self::Body> {
        snapshot_rotate(ctx, query, args).await
    }

    fn plan(ctx: &Context, server: &ServerRecord, args: &RotateArgs) -> Vec<String> {
        let api = plan::api(ctx, server);
        let mut steps = vec![
            format!(
                "List the server's snapshots via {api}; only kastell-<epoch-ms> and kastell-maintain-<epoch-ms> ones are candidates"
            ),
            format!(
                "Keep by {}; refuse when the newest is older than those rules' schedule",
                args.words()
            ),
            format!("Estimate the monthly cost before and after via {api}"),
        ];
        steps.push(if args.apply {
            format!("Delete each snapshot the rules do not keep via {api}")
        } else {
            "Delete nothing (no --apply): list what would go".to_owned()
        });
        steps
    }

    fn question(server: &ServerRecord, args: &RotateArgs) -> String {
        if args.apply {
            format!(
                "Delete kastell's snapshots of \"{}\" ({}) that {} does not keep? Deleted snapshots cannot be restored.",
                server.name,
                server.ip,
                args.words()
            )
        } else {
            format!(
                "List which of kastell's snapshots of \"{}\" ({}) {} would delete? Nothing is deleted without --apply.",
                server.name,
                server.ip,
                args.words()
            )
        }
    }

    fn render(body: &Self::Body) -> Vec<String> {
        let mut lines = vec![format!(
            "Monthly cost: {} before, {} after",
            body.body.monthly_cost_before, body.body.monthly_cost_after
        )];
        let verb = if body.body.applied {
            "deleted"
        } else {
            "would delete"
        };
        for s in &body.body.deleted {
            lines.push(format!("{verb}: {} {} ({})", s.id, s.name, s.taken_at));
        }
        for s in &body.body.kept {
            lines.push(format!(
                "kept: {} {} ({}; {})",
                s.id,
                s.name,
                s.taken_at,
                s.kept_by.join(", ")
            ));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::kastell_marker;

    #[test]
    fn only_kastells_own_names_are_marked() {
        assert!(kastell_marker("kastell-1765000000000", "7").is_some());
        assert!(kastell_marker("kastell-maintain-1765000000000", "7").is_some());
        // Linode's labels: kastell-<instance>-<name without kastell->.
        assert!(kastell_marker("kastell-7-1765000000000", "7").is_some());
        assert!(kastell_marker("kastell-7-maintain-1765000000000", "7").is_some());
        assert!(
            kastell_marker("kastell-8-1765000000000", "7").is_none(),
            "another server's"
        );
        assert!(kastell_marker("kastell-7-nightly-1765000000000", "7").is_none());
        for other in [
            "kastell-",
            "kastell-abc",
            "kastell-1765000000000-mine",
            "my-kastell-1765000000000",
            "seed-web-0",
            "kastell-maintain-",
            "kastell-12345",
            "",
        ] {
            assert!(kastell_marker(other, "7").is_none(), "{other}");
        }
        let at = kastell_marker("kastell-1765000000000", "7").unwrap();
        assert_eq!(at.timestamp_millis(), 1_765_000_000_000);
    }
}
