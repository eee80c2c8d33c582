//! `drill --scratch`: a rehearsal of recovery. The server's backup is
//! recovered onto a throwaway server kastell creates (role drill), the
//! backup's data is checked as `backup drill` checks it and every app on
//! the new server is compared with the backup ([`apps`]), the recovery
//! time and each app's result are recorded in `verifications.json`, and
//! the server is deleted, whatever happened: on success, on failure, past the time limit
//! and on `SIGINT`/`SIGTERM`. A drill killed outright leaves a marked
//! server, which the next drill and `kastell doctor` find and delete.

mod apps;
mod cleanup;

use std::time::{Duration, Instant};

use async_trait::async_trait;
use kastell_core::types::{ManagedRole, ServerId, StepReport, StepTimer};
use kastell_core::{Error, ErrorKind};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::super::backup::local_copy;
use super::super::context::Context;
use super::super::operation::{CliCommand, CliTarget, Operation, Scope, Spec};
use super::super::reply::Reply;
use super::super::result::{OpError, OpResult, Step, steps};
use super::RecoverFrom;
use super::flow::{self, Priced, find_created};
use crate::engine::recover::Target;
use crate::policy::{Category, Rule, Surface};
use crate::shutdown::{Ended, run_until_signal};
use crate::state::store::ServerRecord;
use crate::state::verifications::{self, AppProof, PhaseTime, Proof, Verification};
use cleanup::{delete, left_over, sweep};

/// The cap on a drill's cost when none is given, in the provider's
/// currency.
pub(crate) const DEFAULT_MAX_COST: f64 = 1.0;

/// The time limit when none is given.
pub(crate) const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(3600);

/// The part of the time limit an app's `starting` health check is not
/// waited into, kept for reporting it and deleting the server: a tenth of
/// the limit, at most [`MOST_RESERVED`].
fn reserve(limit: Duration) -> Duration {
    (limit / 10).min(MOST_RESERVED)
}

/// See [`reserve`].
const MOST_RESERVED: Duration = Duration::from_secs(60);

/// Every scratch drill server's name starts with this.
pub(crate) const NAME_PREFIX: &str = "kastell-drill-";

/// Arguments of `drill-scratch`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, clap::Args)]
#[serde(rename_all = "camelCase")]
pub struct ScratchArgs {
    /// Rehearse on a throwaway server (the CLI asks for it by name, so
    /// nobody creates a server by accident).
    #[serde(skip)]
    #[arg(
        long,
        help = "Rehearse the recovery on a throwaway server kastell creates and deletes (required)"
    )]
    pub scratch: bool,
    /// Where the throwaway server goes (default: the server's own
    /// provider) and from which backup.
    #[serde(flatten)]
    #[command(flatten)]
    pub from: RecoverFrom,
    /// Cost cap, provider's currency (default 1).
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1000.0))]
    #[arg(
        long = "max-cost",
        value_name = "AMOUNT",
        help = "Refuse before creating when the drill could cost more (default 1)"
    )]
    pub max_cost: Option<f64>,
    /// Time limit: 90s, 30m, 2h (default 1h).
    #[serde(default)]
    #[schemars(length(min = 2, max = 16), regex(pattern = r"^[0-9]+[smh]$"))]
    #[arg(
        long = "time-limit",
        value_name = "DURATION",
        help = "Stop and delete the server past this (90s, 30m, 2h; default 1h)"
    )]
    pub time_limit: Option<String>,
}

impl ScratchArgs {
    fn limit(&self) -> Result<Duration, Error> {
        let Some(text) = self.time_limit.as_deref().map(str::trim) else {
            return Ok(DEFAULT_TIME_LIMIT);
        };
        let (number, unit) = match text.char_indices().last() {
            Some((i, _)) => text.split_at(i),
            None => ("", ""),
        };
        let unit = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            _ => 0,
        };
        match number.parse::<u64>() {
            Ok(n) if n > 0 && unit > 0 && n.saturating_mul(unit) <= 86_400 => {
                Ok(Duration::from_secs(n * unit))
            }
            _ => Err(Error::invalid_input(format!(
                "--time-limit {text:?} is not a duration of at most a day"
            ))
            .with_hint("Write it as seconds, minutes or hours: 90s, 30m, 2h")),
        }
    }

    fn cap(&self) -> Result<f64, Error> {
        match self.max_cost {
            None => Ok(DEFAULT_MAX_COST),
            Some(cap) if cap.is_finite() && cap >= 0.0 => Ok(cap),
            Some(_) => Err(
                Error::invalid_input("--max-cost must be a number of at least 0")
                    .with_hint("Give the most the drill may cost, e.g. --max-cost 0.50"),
            ),
        }
    }
}

/// A rehearsal that recovered the server onto a throwaway one, checked
/// the data and deleted the server.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DrillScratch {
    /// The backup rehearsed with.
    pub backup_id: String,
    /// Where the throwaway server ran (`hetzner:cx22@fsn1`).
    pub target: String,
    /// What the drill could cost at most, with the price it is from.
    pub cost: String,
    /// The measured recovery: from the first request to the platform
    /// healthy on the new server, in milliseconds.
    pub recovery_ms: u64,
    /// Each phase with its duration, then the checks and the deletion.
    pub steps: Vec<Step>,
    /// How many data checks ran and passed.
    pub checks_passed: usize,
    /// How many data checks this machine could not run.
    pub checks_skipped: usize,
    /// Each app's data checked on the recovered server before it was
    /// deleted (none on a platform without apps).
    pub apps: Vec<AppProof>,
    /// `Recovered onto a throwaway server in 41.2s; ...`.
    pub message: String,
    /// When it was recorded (RFC 3339).
    pub verified_at: String,
    /// Things to know (leftovers of earlier drills deleted, ...).
    pub warnings: Vec<String>,
}

/// The reply carrying a [`DrillScratch`].
pub type DrillScratchResult = Reply<DrillScratch>;

/// The start of every scratch server's name for `server`: the prefix and
/// the server's name as a hostname piece (cut to keep the whole name under
/// providers' 63 characters; anything but letters and digits becomes `-`).
fn name_stem(server: &str) -> String {
    let short: String = server
        .chars()
        .take(30)
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("{NAME_PREFIX}{short}-")
}

/// The name of a scratch server for `server`: its stem and the time.
fn scratch_name(server: &str) -> String {
    format!(
        "{}{}",
        name_stem(server),
        chrono::Utc::now().format("%Y%m%d%H%M%S")
    )
}

/// What the drill could cost: the hourly price times the started hours of
/// `limit`, else the monthly price.
fn worst_cost(priced: &Priced, limit: Duration) -> f64 {
    match priced.price.hourly {
        Some(hourly) => hourly * (limit.as_secs().div_ceil(3600).max(1) as f64),
        None => priced.price.monthly,
    }
}

/// Rehearses the recovery of the server `query` names (see the module).
/// Order: policy (SAFE_MODE blocks it: billable), `--scratch` (CLI), the
/// arguments, the backup, earlier drills' leftovers at the target (deleted),
/// the price against `--max-cost` (refused before anything is created);
/// then the recovery under the time limit and the signals, the deletion,
/// the data checks and the record.
pub async fn drill_scratch(
    ctx: &Context,
    query: Option<&str>,
    args: &ScratchArgs,
) -> OpResult<DrillScratchResult> {
    let admitted = ctx.admit(DrillScratchOp::ID, query)?;
    let old = &admitted.server;
    let refuse = |e: Error, ran: &[StepReport]| OpError::from(e).on(old).with_steps(ran);
    if ctx.surface == Surface::Cli && !args.scratch {
        return Err(refuse(
            Error::invalid_input("kastell drill rehearses a recovery on a throwaway server: pass --scratch")
                .with_hint("`kastell drill SERVER --scratch` creates, checks and deletes a server; `kastell backup drill SERVER` drills here without one"),
            &[],
        ));
    }
    let limit = args.limit().map_err(|e| refuse(e, &[]))?;
    let cap = args.cap().map_err(|e| refuse(e, &[]))?;
    let target = match args.from.to.as_deref() {
        Some(to) => Target::parse(to),
        None => old
            .provider_id()
            .filter(|_| !old.is_manual())
            .map(|p| Target {
                provider: p.to_owned(),
                size: None,
                region: None,
            })
            .ok_or_else(|| {
                Error::invalid_input(format!("{} has no provider to rehearse at", old.name))
                    .with_hint("Name one with --to PROVIDER[:SIZE][@REGION]")
            }),
    }
    .map_err(|e| refuse(e, &[]))?;
    let (backup_id, mut warnings) = local_copy(ctx, old, args.from.backup_id.as_deref(), None)
        .await
        .map_err(|e| refuse(e, &[]))?;
    let name = scratch_name(&old.name);
    let priced = flow::price(ctx, old, &target, &name, ManagedRole::Drill)
        .await
        .map_err(|e| refuse(e, &[]))?;
    warnings.extend(sweep(ctx, &priced, &name_stem(&old.name)).await);
    let cost = worst_cost(&priced, limit);
    let cost_line = format!(
        "at most {}{cost:.2} ({} for up to {}s)",
        priced.price.currency,
        priced.price,
        limit.as_secs()
    );
    if cost > cap {
        return Err(refuse(
            Error::invalid_input(format!(
                "the drill could cost {}{cost:.2}, more than --max-cost {cap:.2}: {}",
                priced.price.currency, priced.price
            ))
            .with_hint("Nothing was created. Raise --max-cost, choose a smaller size (--to PROVIDER:SIZE) or a shorter --time-limit"),
            &[],
        ));
    }
    ctx.progress().message(&format!(
        "Rehearsing the recovery of {} from backup {backup_id} on throwaway server {name} ({cost_line})",
        old.name
    ));

    let started = Instant::now();
    let checks_until = tokio::time::Instant::now() + limit - reserve(limit);
    let work = tokio::time::timeout(limit, async {
        let recovered = flow::recover_onto(ctx, old, &priced, &backup_id).await?;
        let checked = apps::check(ctx, old, &recovered, &backup_id, checks_until).await;
        Ok::<_, flow::Failed>((recovered, checked))
    });
    let ended = run_until_signal(work).await;
    let mut checked = apps::Checked::default();
    let (mut ran, created, failure, recovery_ms) = match ended {
        Ok(Ended::Finished(Ok(Ok((recovered, done))))) => {
            warnings.extend(recovered.warnings);
            let id = ServerId::new(recovered.record.id.clone()).ok();
            let recovery_ms = recovered.steps.iter().map(|s| s.duration_ms).sum();
            let mut ran = recovered.steps;
            checked = done;
            ran.append(&mut checked.steps);
            let failure = checked.error.take();
            (ran, id, failure, recovery_ms)
        }
        Ok(Ended::Finished(Ok(Err(failed)))) => {
            (failed.steps, failed.created, Some(failed.error), 0)
        }
        Ok(Ended::Finished(Err(_elapsed))) => {
            let e = Error::timeout(format!(
                "the recovery did not finish within the time limit ({}s)",
                limit.as_secs()
            ))
            .with_hint("Raise --time-limit, or look at the phases that ran to see what was slow");
            (
                vec![priced.step.clone()],
                find_created(&priced).await,
                Some(e),
                0,
            )
        }
        Ok(Ended::Stopped(signal)) => {
            let e = Error::new(
                ErrorKind::Cancelled,
                format!("the drill was stopped by {}", signal.name()),
            );
            (
                vec![priced.step.clone()],
                find_created(&priced).await,
                Some(e),
                0,
            )
        }
        Err(e) => (vec![priced.step.clone()], None, Some(e), 0),
    };
    let recovery_ms = if recovery_ms > 0 {
        recovery_ms
    } else {
        u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
    };

    let timer = StepTimer::start("Delete the throwaway server");
    let delete_failed = match delete(&priced.provider, created.as_ref()).await {
        Ok(detail) => {
            ran.push(timer.success(detail));
            None
        }
        Err(e) => {
            ran.push(timer.failure(&e));
            Some(e)
        }
    };
    if let Some(error) = failure {
        let error = match delete_failed {
            None => {
                error.or_hint("The throwaway server was deleted; fix the cause and drill again")
            }
            Some(d) => left_over(error, &priced, created.as_ref(), &d),
        };
        return Err(refuse(error, &ran));
    }
    if let Some(d) = delete_failed {
        let error = Error::new(
            d.kind(),
            format!(
                "the rehearsal passed but its server could not be deleted: {}",
                d.message()
            ),
        );
        return Err(refuse(
            left_over(error, &priced, created.as_ref(), &d),
            &ran,
        ));
    }
    warnings.append(&mut checked.warnings);
    let (passed, skipped) = (checked.passed, checked.skipped);
    let apps_passed = checked.apps.len();

    let verified_at = verifications::now();
    verifications::remember(
        ctx.store.dir(),
        Verification {
            server: old.name.clone(),
            backup_id: backup_id.to_string(),
            repository: None,
            proof: Proof::Scratch,
            verified_at: verified_at.clone(),
            duration_ms: recovery_ms,
            checks_skipped: u32::try_from(skipped).unwrap_or(u32::MAX),
            phases: ran
                .iter()
                .map(|s| PhaseTime {
                    name: s.name.clone(),
                    duration_ms: s.duration_ms,
                })
                .collect(),
            apps: checked.apps.clone(),
        },
    );
    Ok(Reply::on(
        old,
        DrillScratch {
            backup_id: backup_id.to_string(),
            target: format!(
                "{}:{}@{}",
                priced.provider_id, priced.spec.size, priced.spec.region
            ),
            cost: cost_line,
            recovery_ms,
            steps: steps(&ran),
            checks_passed: passed,
            checks_skipped: skipped,
            apps: checked.apps,
            message: format!(
                "Recovered onto a throwaway server in {:.1}s, healthy; {passed} data check(s) passed and {apps_passed} app check(s) on the server passed before it was deleted",
                recovery_ms as f64 / 1000.0
            ),
            verified_at,
            warnings,
        },
        Vec::new(),
    ))
}

/// `≈ $5.00/mo ($0.0070/h)` for the plan, priced now on a thread of its
/// own (plans are synchronous); what went wrong when it cannot be priced.
pub(crate) fn price_line(
    ctx: &Context,
    server: &ServerRecord,
    target: &Target,
    name: &str,
    role: ManagedRole,
) -> String {
    let priced = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| Error::unexpected(format!("pricing runtime: {e}")))?;
                runtime.block_on(flow::price(ctx, server, target, name, role))
            })
            .join()
            .unwrap_or_else(|_| Err(Error::unexpected("pricing failed")))
    });
    match priced {
        Ok(priced) => format!(
            "{} {} in {}, {}",
            priced.provider_id, priced.spec.size, priced.spec.region, priced.price
        ),
        Err(e) => format!("price unknown ({})", e.message()),
    }
}

/// `drill-scratch`: rehearse the recovery on a throwaway server.
pub struct DrillScratchOp;

#[async_trait]
impl Operation for DrillScratchOp {
    const SPEC: &'static Spec = &Spec {
        rule: Rule::new("drill-scratch", Category::SafeWrite)
            .blocked(
                "Scratch drills are disabled in SAFE_MODE",
                "Set KASTELL_SAFE_MODE=false to enable scratch drills (they create a billable server for a while)",
            )
            .billable()
            .long()
            .needs_platform(),
        scope: Scope::Server,
        // Not offered over MCP (to keep tools/list small): an agent
        // asks for `recover`, or a person schedules rehearsals.
        mcp: None,
        cli: Some(CliCommand {
            path: &["drill"],
            about: "With --scratch: rehearse the server's recovery on a throwaway server kastell creates, measures, checks and deletes (billable, under --max-cost and --time-limit).",
            target: CliTarget::One,
        }),
    };
    type Args = ScratchArgs;
    type Body = DrillScratchResult;

    async fn run(ctx: &Context, query: Option<&str>, args: &ScratchArgs) -> OpResult<Self::Body> {
        drill_scratch(ctx, query, args).await
    }

    fn plan(ctx: &Context, server: &ServerRecord, args: &ScratchArgs) -> Vec<String> {
        let target = match args.from.to.as_deref() {
            Some(to) => Target::parse(to),
            None => Ok(Target {
                provider: server.provider_id().unwrap_or("(none)").to_owned(),
                size: None,
                region: None,
            }),
        };
        let target = match target {
            Ok(target) => target,
            Err(e) => return vec![format!("Refused: {}", e.message())],
        };
        let name = format!("{NAME_PREFIX}{}-<time>", server.name);
        vec![
            format!(
                "Delete throwaway servers earlier drills left at {} (marked kastell-drill)",
                target.provider
            ),
            format!(
                "Create {name} at {target}: {} (refused above --max-cost {:.2})",
                price_line(ctx, server, &target, &name, ManagedRole::Drill),
                args.max_cost.unwrap_or(DEFAULT_MAX_COST)
            ),
            format!(
                "Recover backup {} of {} onto it (wait for SSH, install {}, restore, start, health), within {}",
                args.from.backup_id.as_deref().unwrap_or("(newest)"),
                server.name,
                server.platform_id(),
                args.time_limit.as_deref().unwrap_or("1h")
            ),
            "Delete the server (also on failure, timeout, SIGINT or SIGTERM)".to_owned(),
            "Check the backup's data as backup drill does, then each app on the new server (rows per table, volume files and checksums, containers running and healthy where they declare a health check); record the recovery time per phase for status".to_owned(),
        ]
    }

    fn question(server: &ServerRecord, args: &ScratchArgs) -> String {
        format!(
            "Create a throwaway server at {} (billed for the drill, at most {:.2}) to rehearse recovering \"{}\"?",
            args.from
                .to
                .as_deref()
                .or(server.provider_id())
                .unwrap_or("(no provider)"),
            args.max_cost.unwrap_or(DEFAULT_MAX_COST),
            server.name
        )
    }

    fn render(body: &DrillScratchResult) -> Vec<String> {
        let mut lines = vec![body.message.clone()];
        lines.extend(body.apps.iter().map(|a| {
            format!(
                "  {} ({}), {}: {}",
                a.name,
                a.app,
                a.volume.as_deref().unwrap_or(&a.kind),
                a.detail
            )
        }));
        lines.push(format!("Cost: {}", body.cost));
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_limits_and_caps_are_checked() {
        let mut args = ScratchArgs::default();
        assert_eq!(args.limit().unwrap(), DEFAULT_TIME_LIMIT);
        for (text, secs) in [("90s", 90), ("30m", 1800), ("2h", 7200)] {
            args.time_limit = Some(text.into());
            assert_eq!(args.limit().unwrap(), Duration::from_secs(secs));
        }
        for bad in ["", "0m", "m", "5d", "25h", "1.5h", "-1s", "5é"] {
            args.time_limit = Some(bad.into());
            assert_eq!(
                args.limit().unwrap_err().kind(),
                ErrorKind::InvalidInput,
                "{bad}"
            );
        }
        assert_eq!(args.cap().unwrap(), DEFAULT_MAX_COST);
        args.max_cost = Some(f64::NAN);
        assert!(args.cap().is_err());
        args.max_cost = Some(-1.0);
        assert!(args.cap().is_err());
    }

    #[test]
    fn scratch_names_fit_providers_and_say_what_they_are() {
        let name = scratch_name(&"w".repeat(80));
        assert!(name.starts_with(NAME_PREFIX));
        assert!(name.len() <= 63, "{name}");
        let odd = scratch_name("Web_1.prod");
        assert!(odd.starts_with("kastell-drill-web-1-prod-"), "{odd}");
    }
}
