//! `kastell schedule install|list|remove`: systemd timers that back up,
//! prune and drill on a calendar (see [`crate::engine::schedule`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use kastell_core::{Error, Result};
use serde::Serialize;

mod args;
mod onserver;
mod onserver_storage;
mod rotate;

use super::Context;
use super::confirm::{Confirmation, confirm};
use crate::engine::repos::RepoRegistry;
use crate::engine::schedule::{
    self, DEFAULT_BACKUP_AT, DEFAULT_DRILL_AT, DEFAULT_PRUNE_AT, DEFAULT_ROTATE_AT, Job, JobKind,
    Request, Rotation, Scope, Settings, Target, UnitFile, analyze,
};
use rotate::keep_rules;

pub(crate) use args::ScheduleCommand;
use args::{DirArgs, InstallArgs, RemoveArgs};

/// Runs a schedule command.
pub(crate) async fn run(cmd: ScheduleCommand, ctx: &Context) -> Result<ExitCode> {
    match cmd {
        ScheduleCommand::Install(args) if args.on_server => {
            let records = onserver::targets(ctx, args.server.as_deref(), args.all)?;
            let on = onserver::InstallOnServer {
                repo: args.repo.clone().unwrap_or_default(),
                keys_dir: args.keys_dir.clone(),
                ping_url: args.ping_url.clone(),
                calendar: args.backup_at.clone(),
                dry_run: args.dry_run,
            };
            onserver::install(ctx, records, &on).await
        }
        ScheduleCommand::Install(args) => install(ctx, &args),
        ScheduleCommand::List(args) if args.on_server => onserver::list(ctx).await,
        ScheduleCommand::List(args) => list(ctx, &args.dir),
        ScheduleCommand::Remove(args) if args.on_server => {
            let records = onserver::targets(ctx, args.server.as_deref(), args.all)?;
            onserver::remove(ctx, records, args.dry_run, args.force).await
        }
        ScheduleCommand::Remove(args) => remove(ctx, &args),
        ScheduleCommand::Run(args) => {
            let records = onserver::targets(ctx, args.server.as_deref(), args.all)?;
            onserver::run_now(ctx, records).await
        }
    }
}

/// Prints a warning on stderr and keeps it for the JSON report.
fn warn(warnings: &mut Vec<String>, text: String) {
    eprintln!("warning: {text}");
    warnings.push(text);
}

/// One scheduled job in the install report.
#[derive(Debug, Serialize)]
struct JobReport {
    kind: JobKind,
    service: String,
    timer: String,
    on_calendar: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    normalized: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_elapse: Option<String>,
    command: Vec<String>,
}

/// One unit file in the install report.
#[derive(Debug, Serialize)]
struct UnitReport {
    name: String,
    path: PathBuf,
    /// The text (dry runs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<String>,
}

/// What `schedule install` did or, with `--dry-run`, would do.
#[derive(Debug, Serialize)]
struct InstallReport {
    dry_run: bool,
    scope: Scope,
    unit_dir: PathBuf,
    verified: bool,
    jobs: Vec<JobReport>,
    units: Vec<UnitReport>,
    next: String,
    warnings: Vec<String>,
}

/// The calendars the jobs run on, checked with `systemd-analyze calendar`
/// (`None` per job when it is not installed).
fn check_calendars(
    request: &Request,
    warnings: &mut Vec<String>,
) -> Result<Vec<(String, Option<analyze::Calendar>)>> {
    let mut given = vec![("--backup-at", request.backup_at.as_str())];
    if let Some(at) = &request.prune_at {
        given.push(("--prune-at", at));
    }
    if let Some(at) = &request.drill_at {
        given.push(("--drill-at", at));
    }
    if let Some(at) = &request.scratch_drill_at {
        given.push(("--scratch-drill-at", at));
    }
    if let Some(rotation) = &request.rotate {
        given.push(("--rotate-at", &rotation.at));
    }
    let mut checked = Vec::new();
    let mut missing = false;
    for (what, spec) in given {
        let info = analyze::calendar(what, spec)?;
        missing |= info.is_none();
        checked.push((spec.to_owned(), info));
    }
    if missing {
        warn(
            warnings,
            format!(
                "{} is not installed: the calendars and units were not verified (install the systemd package)",
                analyze::SYSTEMD_ANALYZE
            ),
        );
    }
    Ok(checked)
}

/// The target the arguments name, resolved in the fleet store.
fn target(ctx: &Context, args: &InstallArgs) -> Result<Target> {
    let store = ctx.store()?;
    if args.all {
        let names: Vec<String> = store.servers()?.into_iter().map(|s| s.name).collect();
        if names.is_empty() {
            return Err(Error::not_found("No servers in the fleet")
                .with_hint("Add one with `kastell server add`"));
        }
        return Ok(Target::Fleet(names));
    }
    Ok(Target::Server(store.resolve(args.server.as_deref())?.name))
}

/// The request: target, repository (checked), calendars with defaults.
/// A repository without a retention policy gets no prune job (a warning),
/// unless `--prune-at` asked for one (refused).
fn request(ctx: &Context, args: &InstallArgs, warnings: &mut Vec<String>) -> Result<Request> {
    let target = target(ctx, args)?;
    let mut prune_at = None;
    if let Some(name) = &args.repo {
        let registry = RepoRegistry::load(&ctx.kastell_dir()?)?;
        let config = registry.get(name)?;
        if config.keep.is_empty() {
            if args.prune_at.is_some() {
                return Err(Error::invalid_input(format!(
                    "repository {name} has no retention policy, so a prune job would fail every time"
                ))
                .with_hint(
                    "Add the repository again with --keep-daily N (and others), or leave out --prune-at",
                ));
            }
            warn(
                warnings,
                format!("repository {name} has no retention policy: no prune job is scheduled"),
            );
        } else {
            prune_at = Some(
                args.prune_at
                    .clone()
                    .unwrap_or_else(|| DEFAULT_PRUNE_AT.to_owned()),
            );
        }
    }
    Ok(Request {
        target,
        repo: args.repo.clone(),
        backup_at: args
            .backup_at
            .clone()
            .unwrap_or_else(|| DEFAULT_BACKUP_AT.to_owned()),
        prune_at,
        drill_at: (!args.no_drill).then(|| {
            args.drill_at
                .clone()
                .unwrap_or_else(|| DEFAULT_DRILL_AT.to_owned())
        }),
        scratch_drill_at: args.scratch_drill_at.clone(),
        rotate: match &args.rotate_keep {
            Some(text) => Some(Rotation {
                keep: keep_rules(text).map_err(|e| {
                    Error::invalid_input(format!("--rotate-keep: {e}"))
                        .with_hint("Give rules such as daily=7,weekly=4")
                })?,
                at: args
                    .rotate_at
                    .clone()
                    .unwrap_or_else(|| DEFAULT_ROTATE_AT.to_owned()),
            }),
            None => None,
        },
    })
}

/// The settings the units share: this binary, the kastell directory, the
/// checked environment file and, for system units, the user to run as.
fn settings(
    ctx: &Context,
    args: &InstallArgs,
    scope: Scope,
    warnings: &mut Vec<String>,
) -> Result<Settings> {
    let exe =
        std::env::current_exe().map_err(|e| Error::io("locating the running kastell binary", e))?;
    if !exe.is_file() {
        return Err(Error::invalid_state(format!(
            "the running kastell binary {} is gone (replaced while it ran?)",
            exe.display()
        ))
        .with_hint("Run `kastell schedule install` again with the installed binary"));
    }
    let kastell_dir = ctx.kastell_dir()?;
    let env_file = match &args.env_file {
        Some(path) => {
            let path = schedule::check_env_file(path)?;
            let names = schedule::env_file_names(&path)?;
            if !names.iter().any(|n| n == schedule::alert::WEBHOOK_VAR) {
                warn(
                    warnings,
                    format!(
                        "{} sets no {}: a failed job is only in the journal",
                        path.display(),
                        schedule::alert::WEBHOOK_VAR
                    ),
                );
            }
            Some(path)
        }
        None => {
            warn(
                warnings,
                format!(
                    "no --env-file: the units get no tokens and no {}, so a failed job is only in the journal",
                    schedule::alert::WEBHOOK_VAR
                ),
            );
            None
        }
    };
    let run_as = match scope {
        Scope::System => schedule::run_as_owner_of(&kastell_dir)?,
        Scope::User => None,
    };
    Ok(Settings {
        exe,
        kastell_dir,
        env_file,
        scope,
        run_as,
    })
}

/// `systemctl [--user] daemon-reload && systemctl [--user] enable --now
/// <timers>`.
fn enable_command(scope: Scope, jobs: &[Job]) -> String {
    let timers: Vec<String> = jobs.iter().map(Job::timer_name).collect();
    let systemctl = scope.systemctl();
    format!(
        "{systemctl} daemon-reload && {systemctl} enable --now {}",
        timers.join(" ")
    )
}

fn install(ctx: &Context, args: &InstallArgs) -> Result<ExitCode> {
    let scope = args.dir.scope();
    let unit_dir = args.dir.dir(ctx)?;
    let mut warnings = Vec::new();
    let request = request(ctx, args, &mut warnings)?;
    // Every calendar is checked before anything else happens.
    let calendars = check_calendars(&request, &mut warnings)?;
    let settings = settings(ctx, args, scope, &mut warnings)?;
    let jobs = schedule::jobs(&request)?;
    let units = schedule::render(&jobs, &settings)?;
    schedule::check_replaceable(&unit_dir, &units)?;
    let verified = schedule::verify_rendered(&units)?;
    if !args.dry_run {
        schedule::write_units(&unit_dir, &units)?;
    }
    let report = InstallReport {
        dry_run: args.dry_run,
        scope,
        unit_dir: unit_dir.clone(),
        verified,
        jobs: jobs
            .iter()
            .map(|job| {
                let info = calendars
                    .iter()
                    .find(|(spec, _)| *spec == job.calendar)
                    .and_then(|(_, info)| info.clone());
                let mut command = vec![settings.exe.display().to_string()];
                command.extend(job.args.iter().cloned());
                JobReport {
                    kind: job.kind,
                    service: job.service_name(),
                    timer: job.timer_name(),
                    on_calendar: job.calendar.clone(),
                    normalized: info.as_ref().map(|i| i.normalized.clone()),
                    next_elapse: info.map(|i| i.next_elapse),
                    command,
                }
            })
            .collect(),
        units: units
            .iter()
            .map(|u| UnitReport {
                name: u.name.clone(),
                path: unit_dir.join(&u.name),
                content: args.dry_run.then(|| u.content.clone()),
            })
            .collect(),
        next: enable_command(scope, &jobs),
        warnings,
    };
    if ctx.json {
        ctx.out.json(&report)?;
    } else {
        print_install(ctx, &report, &units, &unit_dir)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_install(
    ctx: &Context,
    report: &InstallReport,
    units: &[UnitFile],
    unit_dir: &Path,
) -> Result<()> {
    if report.dry_run {
        for unit in units {
            ctx.out
                .line(format!("# {}", unit_dir.join(&unit.name).display()))?;
            ctx.out.line(&unit.content)?;
        }
    }
    let verified = if report.verified {
        " (checked with systemd-analyze verify)"
    } else {
        ""
    };
    ctx.out.line(if report.dry_run {
        format!(
            "Dry run: {} units would be written to {}{verified}; nothing was written.",
            units.len(),
            unit_dir.display()
        )
    } else {
        format!(
            "Wrote {} units to {}{verified}:",
            units.len(),
            unit_dir.display()
        )
    })?;
    let rows: Vec<Vec<String>> = report
        .jobs
        .iter()
        .map(|job| {
            vec![
                job.timer.clone(),
                job.on_calendar.clone(),
                job.next_elapse.clone().unwrap_or_else(|| "-".to_owned()),
                format!(
                    "kastell {}",
                    job.command.get(1..).unwrap_or_default().join(" ")
                ),
            ]
        })
        .collect();
    ctx.out
        .table(&["TIMER", "CALENDAR", "NEXT", "RUNS"], &rows)?;
    ctx.out.line(if report.dry_run {
        "After installing, start the timers with:"
    } else {
        "Start the timers with:"
    })?;
    ctx.out.line(format!("  {}", report.next))?;
    Ok(())
}

/// What `schedule list` shows.
#[derive(Debug, Serialize)]
struct ListReport {
    scope: Scope,
    unit_dir: PathBuf,
    units: Vec<schedule::Found>,
}

fn list(ctx: &Context, args: &DirArgs) -> Result<ExitCode> {
    let unit_dir = args.dir(ctx)?;
    let units = schedule::scan(&unit_dir)?;
    if ctx.json {
        ctx.out.json(&ListReport {
            scope: args.scope(),
            unit_dir,
            units,
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    if units.is_empty() {
        ctx.out.line(format!(
            "No kastell units in {}. Write some with `kastell schedule install`.",
            unit_dir.display()
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = units
        .iter()
        .map(|u| {
            let what = if u.written_by_kastell {
                u.on_calendar
                    .clone()
                    .or_else(|| u.description.clone())
                    .unwrap_or_default()
            } else {
                "not written by kastell: left alone".to_owned()
            };
            vec![
                u.name.clone(),
                if u.written_by_kastell { "yes" } else { "no" }.to_owned(),
                what,
            ]
        })
        .collect();
    ctx.out.line(format!("Units in {}:", unit_dir.display()))?;
    ctx.out
        .table(&["UNIT", "KASTELL", "SCHEDULE / WHAT"], &rows)?;
    Ok(ExitCode::SUCCESS)
}

/// What `schedule remove` did or would do.
#[derive(Debug, Serialize)]
struct RemoveReport {
    dry_run: bool,
    unit_dir: PathBuf,
    #[serde(flatten)]
    removal: schedule::Removal,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

fn remove(ctx: &Context, args: &RemoveArgs) -> Result<ExitCode> {
    let scope = args.dir.scope();
    let unit_dir = args.dir.dir(ctx)?;
    let plan = schedule::remove(&unit_dir, &args.units, true)?;
    let removal = if args.dry_run || plan.removed.is_empty() {
        plan
    } else {
        let question = format!(
            "Remove {} kastell unit(s) from {}?",
            plan.removed.len(),
            unit_dir.display()
        );
        if confirm(&question, args.force)? == Confirmation::Declined {
            eprintln!("Cancelled: nothing was removed.");
            return Ok(ExitCode::SUCCESS);
        }
        schedule::remove(&unit_dir, &args.units, false)?
    };
    let timers: Vec<String> = removal
        .removed
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|n| n.ends_with(".timer"))
        .collect();
    let systemctl = scope.systemctl();
    let next = (!removal.removed.is_empty()).then(|| {
        if timers.is_empty() {
            format!("{systemctl} daemon-reload")
        } else {
            format!(
                "{systemctl} stop {}; {systemctl} daemon-reload",
                timers.join(" ")
            )
        }
    });
    let report = RemoveReport {
        dry_run: args.dry_run,
        unit_dir: unit_dir.clone(),
        removal,
        next,
    };
    if ctx.json {
        ctx.out.json(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    let removal = &report.removal;
    if removal.removed.is_empty() {
        ctx.out.line(format!(
            "No kastell units to remove in {}.",
            unit_dir.display()
        ))?;
    } else {
        ctx.out.line(format!(
            "{} {} unit(s) from {}:",
            if args.dry_run {
                "Would remove"
            } else {
                "Removed"
            },
            removal.removed.len(),
            unit_dir.display()
        ))?;
        for path in removal.removed.iter().chain(&removal.links) {
            ctx.out.line(format!("  {}", path.display()))?;
        }
    }
    for path in &removal.left_alone {
        ctx.out.line(format!(
            "Left alone (not written by kastell): {}",
            path.display()
        ))?;
    }
    if let Some(next) = &report.next {
        ctx.out.line(format!(
            "{} timers systemd still has loaded with:",
            if args.dry_run {
                "Then stop the"
            } else {
                "Stop the"
            }
        ))?;
        ctx.out.line(format!("  {next}"))?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests;
