//! Scheduled jobs as systemd timers, and the alert when one fails.
//!
//! `kastell schedule install` turns a target (one server or the fleet), an
//! optional repository and three calendar expressions into unit files:
//! per job a one-shot `.service` running the kastell binary that wrote it
//! and a `.timer` starting it. The jobs are
//!
//! | job | unit stem | runs |
//! |---|---|---|
//! | backup of one server | `kastell-backup-<server>` | `kastell backup create --force [--repo=R] -- <server>` |
//! | backup of the fleet | `kastell-fleet-backup` | `kastell backup create --all --force [--repo=R]` |
//! | prune (with a repository) | `kastell-prune-<repo>` | `kastell repo prune --apply --force -- <repo>` |
//! | restore drill, per server | `kastell-drill-<server>` | `kastell backup drill [--repo=R] -- <server>` |
//! | recovery rehearsal, per server (opt-in) | `kastell-scratch-drill-<server>` | `kastell drill --scratch --force -- <server>` |
//! | snapshot rotation of one server | `kastell-rotate-<server>` | `kastell snapshot rotate --keep-daily=N ... --apply --force -- <server>` |
//! | snapshot rotation of the fleet | `kastell-fleet-rotate` | `kastell snapshot rotate --all --keep-daily=N ... --apply --force` |
//!
//! Names reach the command line only after the store's own rules passed
//! (server names as `server add` checks them, repository names as `repo
//! init` does), always after `--` and never as an option's separate value
//! (`--repo=R`), so no name can be read as an option.
//!
//! Each service has `OnFailure=kastell-alert@%n.service`; that template
//! runs `kastell alert send --unit %i` ([`alert`]). Units carry
//! `KASTELL_DIR` and, when the operator names one, an `EnvironmentFile=`
//! (which must be private, like a repository's password file): never a
//! token or any other variable's value.
//!
//! Every file kastell writes starts with [`unit::MARKER`]; a file without
//! it is never overwritten or removed. Files are replaced atomically.

pub(crate) mod alert;
pub(crate) mod analyze;
pub(crate) mod unit;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use kastell_core::{Error, ErrorKind, Result};
use serde::Serialize;

use crate::env::Env;
pub(crate) use unit::{ALERT_TEMPLATE, Job, JobKind, Scope, Settings, UnitFile};

/// The default calendar of the backup job: every day at 03:00.
pub(crate) const DEFAULT_BACKUP_AT: &str = "*-*-* 03:00:00";
/// The default calendar of the prune job: every day at 04:30.
pub(crate) const DEFAULT_PRUNE_AT: &str = "*-*-* 04:30:00";
/// The default calendar of the snapshot rotation job: every day at 05:30.
pub(crate) const DEFAULT_ROTATE_AT: &str = "*-*-* 05:30:00";
/// The default calendar of the drill job: Sundays at 05:00.
pub(crate) const DEFAULT_DRILL_AT: &str = "Sun *-*-* 05:00:00";
/// Where system units go.
pub(crate) const SYSTEM_UNIT_DIR: &str = "/etc/systemd/system";
/// The prefix of every unit name kastell writes.
pub(crate) const UNIT_PREFIX: &str = "kastell-";

/// The directory systemd reads `scope`'s units from: for user units
/// `$XDG_CONFIG_HOME/systemd/user` (when set and absolute) else
/// `~/.config/systemd/user`; for system units [`SYSTEM_UNIT_DIR`]. Refuses
/// user units when neither `XDG_CONFIG_HOME` nor `HOME` is set.
pub(crate) fn default_unit_dir(scope: Scope, env: &Env) -> Result<PathBuf> {
    if scope == Scope::System {
        return Ok(PathBuf::from(SYSTEM_UNIT_DIR));
    }
    if let Some(config) = env.get_nonempty("XDG_CONFIG_HOME") {
        let config = PathBuf::from(config);
        if config.is_absolute() {
            return Ok(config.join("systemd/user"));
        }
    }
    match env.get_nonempty("HOME") {
        Some(home) => Ok(Path::new(&home).join(".config/systemd/user")),
        None => Err(Error::config_invalid(
            "cannot locate the user unit directory: neither XDG_CONFIG_HOME nor HOME is set",
        )
        .with_hint("Pass --unit-dir DIR, or --system for /etc/systemd/system")),
    }
}

/// Whose backups a schedule takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// One server, by its name in the store.
    Server(String),
    /// The whole fleet (`backup create --all`); drills are per server, for
    /// the servers named here (the fleet when the schedule is installed).
    Fleet(Vec<String>),
}

/// What to schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    /// Whose backups.
    pub target: Target,
    /// The repository backups go to and drills restore from.
    pub repo: Option<String>,
    /// When to back up.
    pub backup_at: String,
    /// When to prune the repository (`None`: no prune job).
    pub prune_at: Option<String>,
    /// When to drill (`None`: no drill job).
    pub drill_at: Option<String>,
    /// When to rehearse recovery on a throwaway server (`drill --scratch`,
    /// billable; `None`: no such job).
    pub scratch_drill_at: Option<String>,
    /// The snapshot rotation job (`None`: none).
    pub rotate: Option<Rotation>,
}

/// A snapshot rotation job: `snapshot rotate`'s keep rules and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rotation {
    /// The keep rules as `snapshot rotate` takes them (`--keep-daily`, 7).
    pub keep: Vec<(&'static str, u32)>,
    /// When to rotate.
    pub at: String,
}

/// Refuses a server name the fleet store would refuse (`server add`'s
/// rule, [`crate::state::store::validate_name`]) and a repository name the
/// repository list would refuse ([`crate::engine::backup::check_component`]), with
/// the store's own error, so a unit never carries a name that could be
/// read as an option (`-web`).
pub(crate) fn check_names(request: &Request) -> Result<()> {
    let servers: &[String] = match &request.target {
        Target::Server(server) => std::slice::from_ref(server),
        Target::Fleet(servers) => servers,
    };
    for server in servers {
        crate::state::store::validate_name(server)?;
    }
    if let Some(repo) = &request.repo {
        crate::engine::backup::check_component("repository name", repo)?;
    }
    Ok(())
}

/// `words`, then `--`, then the positional `names`: what the units run, so
/// a name is never read as an option.
fn command(words: &[&str], repo: Option<&str>, names: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
    if let Some(repo) = repo {
        args.push(format!("--repo={repo}"));
    }
    if !names.is_empty() {
        args.push("--".to_owned());
        args.extend(names.iter().map(|n| (*n).to_owned()));
    }
    args
}

/// The jobs `request` asks for: backup, then prune, then drills. Refuses a
/// name the store refuses ([`check_names`]) and one that makes a unit name
/// longer than systemd allows.
pub(crate) fn jobs(request: &Request) -> Result<Vec<Job>> {
    check_names(request)?;
    let repo = request.repo.as_deref();
    let into_repo = repo
        .map(|r| format!(" into repository {r}"))
        .unwrap_or_default();
    let mut jobs = Vec::new();
    let (backup, drilled): (Job, Vec<&str>) = match &request.target {
        Target::Server(server) => {
            let job = Job {
                kind: JobKind::Backup,
                stem: format!("{UNIT_PREFIX}backup-{}", unit::name_piece(server)?),
                description: format!("kastell: back up {server}{into_repo}"),
                args: command(&["backup", "create", "--force"], repo, &[server]),
                calendar: request.backup_at.clone(),
            };
            (job, vec![server.as_str()])
        }
        Target::Fleet(servers) => {
            let job = Job {
                kind: JobKind::Backup,
                stem: format!("{UNIT_PREFIX}fleet-backup"),
                description: format!("kastell: back up every server{into_repo}"),
                args: command(&["backup", "create", "--all", "--force"], repo, &[]),
                calendar: request.backup_at.clone(),
            };
            (job, servers.iter().map(String::as_str).collect())
        }
    };
    jobs.push(backup);
    if let (Some(repo), Some(at)) = (repo, &request.prune_at) {
        jobs.push(Job {
            kind: JobKind::Prune,
            stem: format!("{UNIT_PREFIX}prune-{}", unit::name_piece(repo)?),
            description: format!("kastell: prune repository {repo}"),
            args: command(&["repo", "prune", "--apply", "--force"], None, &[repo]),
            calendar: at.clone(),
        });
    }
    if let Some(at) = &request.drill_at {
        let from_repo = repo
            .map(|r| format!(" from repository {r}"))
            .unwrap_or_default();
        for server in drilled {
            jobs.push(Job {
                kind: JobKind::Drill,
                stem: format!("{UNIT_PREFIX}drill-{}", unit::name_piece(server)?),
                description: format!("kastell: restore drill of {server}{from_repo}"),
                args: command(&["backup", "drill"], repo, &[server]),
                calendar: at.clone(),
            });
        }
    }
    if let Some(at) = &request.scratch_drill_at {
        let servers: Vec<&str> = match &request.target {
            Target::Server(server) => vec![server.as_str()],
            Target::Fleet(servers) => servers.iter().map(String::as_str).collect(),
        };
        for server in servers {
            jobs.push(Job {
                kind: JobKind::Drill,
                stem: format!("{UNIT_PREFIX}scratch-drill-{}", unit::name_piece(server)?),
                description: format!(
                    "kastell: recovery rehearsed on a throwaway server for {server}"
                ),
                args: command(&["drill", "--scratch", "--force"], None, &[server]),
                calendar: at.clone(),
            });
        }
    }
    if let Some(rotation) = &request.rotate {
        jobs.push(rotate_job(&request.target, rotation)?);
    }
    for job in &jobs {
        unit::check_stem(&job.stem)?;
    }
    Ok(jobs)
}

/// The rotation job of `target`: `snapshot rotate` with the keep rules as
/// single words (`--keep-daily=7`), `--apply --force`, then the server (or
/// `--all`).
fn rotate_job(target: &Target, rotation: &Rotation) -> Result<Job> {
    let keep: Vec<String> = rotation
        .keep
        .iter()
        .map(|(flag, n)| format!("{flag}={n}"))
        .collect();
    let rules = keep.join(" ");
    let mut words: Vec<&str> = vec!["snapshot", "rotate"];
    words.extend(keep.iter().map(String::as_str));
    words.extend(["--apply", "--force"]);
    Ok(match target {
        Target::Server(server) => Job {
            kind: JobKind::Rotate,
            stem: format!("{UNIT_PREFIX}rotate-{}", unit::name_piece(server)?),
            description: format!("kastell: rotate the snapshots of {server} ({rules})"),
            args: command(&words, None, &[server]),
            calendar: rotation.at.clone(),
        },
        Target::Fleet(_) => {
            words.push("--all");
            Job {
                kind: JobKind::Rotate,
                stem: format!("{UNIT_PREFIX}fleet-rotate"),
                description: format!("kastell: rotate every server's snapshots ({rules})"),
                args: command(&words, None, &[]),
                calendar: rotation.at.clone(),
            }
        }
    })
}

/// Every unit of an installation, in the order they are written: each
/// job's service and timer, then the alert template. Refuses what the
/// renderers refuse ([`unit`]).
pub(crate) fn render(jobs: &[Job], settings: &Settings) -> Result<Vec<UnitFile>> {
    let mut units = Vec::with_capacity(jobs.len() * 2 + 1);
    for job in jobs {
        units.push(unit::service(job, settings)?);
        units.push(unit::timer(job)?);
    }
    units.push(unit::alert_template(settings)?);
    Ok(units)
}

/// Checks the operator's environment file and returns its absolute path:
/// it must exist, be a regular file, be valid UTF-8 as a path, and not be
/// readable or writable by group or others (it holds tokens), as for a
/// repository's password file. Refuses anything else, with a hint.
pub(crate) fn check_env_file(path: &Path) -> Result<PathBuf> {
    let absolute = std::path::absolute(path)
        .map_err(|e| Error::io(format!("locating {}", path.display()), e))?;
    let meta = std::fs::metadata(&absolute).map_err(|e| {
        Error::io(format!("reading the environment file {}", absolute.display()), e).with_hint(
            "Create it (mode 0600) with one NAME=value per line: KASTELL_ALERT_WEBHOOK=..., provider tokens, AWS_* keys",
        )
    })?;
    if !meta.is_file() {
        return Err(Error::invalid_input(format!(
            "the environment file {} is not a regular file",
            absolute.display()
        )));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "the environment file {} can be read by other users",
                absolute.display()
            ),
        )
        .with_hint(format!("Run `chmod 600 {}`", absolute.display())));
    }
    unit::utf8_path("the environment file", &absolute)?;
    Ok(absolute)
}

/// The variable names an environment file assigns (never their values),
/// read the simple way: `NAME=...` lines, `#`/`;` comments skipped.
/// Refuses only when the file cannot be read.
pub(crate) fn env_file_names(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    Ok(text
        .lines()
        .map(str::trim_start)
        .filter(|line| !line.starts_with('#') && !line.starts_with(';'))
        .filter_map(|line| line.split_once('='))
        .map(|(name, _)| name.trim().trim_start_matches("export ").trim().to_owned())
        .filter(|name| !name.is_empty())
        .collect())
}

/// A file in a unit directory whose name says it is kastell's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Found {
    /// Its file name.
    pub name: String,
    /// Its path.
    pub path: PathBuf,
    /// Whether it starts with [`MARKER`] (only those are ever touched).
    pub written_by_kastell: bool,
    /// Its `Description=`.
    pub description: Option<String>,
    /// Its `OnCalendar=` (timers).
    pub on_calendar: Option<String>,
    /// Its `ExecStart=` (services).
    pub exec_start: Option<String>,
}

/// Whether `name` is a unit name kastell may have written.
fn is_kastell_name(name: &str) -> bool {
    name.starts_with(UNIT_PREFIX) && (name.ends_with(".service") || name.ends_with(".timer"))
}

/// Reads `path` as a unit kastell wrote: `Ok(Some(text))` when it starts
/// with the marker, `Ok(None)` when it is missing, refuses (naming the
/// file) when it is a link, not a regular file, or someone else's.
fn own_unit(path: &Path) -> Result<Option<String>> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("inspecting {}", path.display()), e)),
    };
    let foreign = |why: &str| {
        Error::new(
            ErrorKind::AlreadyExists,
            format!("{} {why}; kastell leaves it alone", path.display()),
        )
        .with_hint(
            "kastell only replaces or removes units it wrote (they start with `# Written by kastell \
             schedule install`): move that file away yourself, or use another --unit-dir",
        )
    };
    if meta.file_type().is_symlink() {
        return Err(foreign("is a symbolic link"));
    }
    if !meta.is_file() {
        return Err(foreign("is not a regular file"));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    if !unit::is_kastell_unit(&text) {
        return Err(foreign("exists and was not written by kastell"));
    }
    Ok(Some(text))
}

/// The kastell-named units in `dir`, by name (an empty list when `dir` does
/// not exist). Refuses only when `dir` cannot be read.
pub(crate) fn scan(dir: &Path) -> Result<Vec<Found>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("reading {}", dir.display()), e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("reading {}", dir.display()), e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_kastell_name(&name) {
            continue;
        }
        let path = entry.path();
        let text = own_unit(&path).ok().flatten();
        let get = |key: &str| {
            text.as_deref()
                .and_then(|t| unit::setting(t, key))
                .map(str::to_owned)
        };
        found.push(Found {
            written_by_kastell: text.is_some(),
            description: get("Description"),
            on_calendar: get("OnCalendar"),
            exec_start: get("ExecStart"),
            name,
            path,
        });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// Refuses, before anything is written, when one of `units` would replace
/// a file in `dir` that kastell did not write (or a link, or a directory).
pub(crate) fn check_replaceable(dir: &Path, units: &[UnitFile]) -> Result<()> {
    for unit in units {
        own_unit(&dir.join(&unit.name))?;
    }
    Ok(())
}

/// Writes `units` into `dir` (created if missing), each atomically (temp
/// file and rename) with mode 0644, after [`check_replaceable`]. Returns
/// the paths written. Refuses on a foreign file or any I/O failure.
pub(crate) fn write_units(dir: &Path, units: &[UnitFile]) -> Result<Vec<PathBuf>> {
    check_replaceable(dir, units)?;
    std::fs::create_dir_all(dir).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
            Some("System units need root: run it with sudo, or install user units (--user)")
        } else {
            None
        };
        let err = Error::io(format!("creating {}", dir.display()), e);
        match hint {
            Some(h) => err.with_hint(h),
            None => err,
        }
    })?;
    let mut written = Vec::with_capacity(units.len());
    for unit in units {
        let path = dir.join(&unit.name);
        crate::state::store::write_atomic(&path, unit.content.as_bytes()).map_err(|e| {
            if e.kind() == ErrorKind::PermissionDenied {
                e.with_hint(
                    "System units need root: run it with sudo, or install user units (--user)",
                )
            } else {
                e
            }
        })?;
        // Units hold no secret; systemd and `systemctl cat` read them.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
            .map_err(|e| Error::io(format!("setting permissions of {}", path.display()), e))?;
        written.push(path);
    }
    Ok(written)
}

/// Writes `units` into a fresh temporary directory and runs
/// `systemd-analyze verify` on them there, so nothing reaches the unit
/// directory unverified. `Ok(false)` when `systemd-analyze` is missing;
/// refuses when it finds a problem (see [`analyze::verify`]).
pub(crate) fn verify_rendered(units: &[UnitFile]) -> Result<bool> {
    let tmp = tempfile::Builder::new()
        .prefix("kastell-units-")
        .tempdir()
        .map_err(|e| Error::io("creating a directory to verify the units in", e))?;
    let mut files = Vec::with_capacity(units.len());
    for unit in units {
        let path = tmp.path().join(&unit.name);
        std::fs::write(&path, &unit.content)
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        files.push(path);
    }
    analyze::verify(&files)
}

/// What [`remove`] did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Removal {
    /// The unit files removed.
    pub removed: Vec<PathBuf>,
    /// The `*.wants/` links `systemctl enable` made to them, removed too.
    pub links: Vec<PathBuf>,
    /// kastell-named files that kastell did not write, left alone.
    pub left_alone: Vec<PathBuf>,
}

/// The unit names `selection` means: `kastell-backup-web-1`,
/// `kastell-backup-web-1.service` and `.timer` all mean both files.
fn selected_names(selection: &[String]) -> Vec<(String, [String; 2])> {
    selection
        .iter()
        .map(|given| {
            let stem = given
                .strip_suffix(".service")
                .or_else(|| given.strip_suffix(".timer"))
                .unwrap_or(given);
            (
                given.clone(),
                [format!("{stem}.service"), format!("{stem}.timer")],
            )
        })
        .collect()
}

/// Removes kastell's units from `dir`: those `selection` names (a unit
/// stem or file name each), or with an empty selection every unit kastell
/// wrote there. The alert template goes too once no kastell job is left.
/// The links `systemctl enable` left in `dir/*.wants/` pointing at a
/// removed file go with it. With `dry_run` nothing is removed. Refuses,
/// before removing anything, a selected name with no file and a selected
/// file kastell did not write.
pub(crate) fn remove(dir: &Path, selection: &[String], dry_run: bool) -> Result<Removal> {
    let found = scan(dir)?;
    let mut removal = Removal::default();
    let mut doomed: Vec<PathBuf> = Vec::new();
    if selection.is_empty() {
        for unit in &found {
            if unit.written_by_kastell {
                doomed.push(unit.path.clone());
            } else {
                removal.left_alone.push(unit.path.clone());
            }
        }
    } else {
        for (given, names) in selected_names(selection) {
            let mut any = false;
            for name in names {
                let path = dir.join(&name);
                if own_unit(&path)?.is_some() {
                    any = true;
                    if !doomed.contains(&path) {
                        doomed.push(path);
                    }
                }
            }
            if !any {
                return Err(Error::not_found(format!(
                    "no kastell unit {given} in {}",
                    dir.display()
                ))
                .with_hint("See the installed units with `kastell schedule list`"));
            }
        }
        let alert = dir.join(ALERT_TEMPLATE);
        let jobs_left = found.iter().any(|u| {
            u.written_by_kastell
                && u.name != ALERT_TEMPLATE
                && u.name.ends_with(".service")
                && !doomed.contains(&u.path)
        });
        if !jobs_left && !doomed.contains(&alert) && own_unit(&alert).ok().flatten().is_some() {
            doomed.push(alert);
        }
    }
    removal.links = enable_links(dir, &doomed)?;
    if !dry_run {
        for path in removal.links.iter().chain(&doomed) {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(format!("removing {}", path.display()), e)),
            }
        }
    }
    removal.removed = doomed;
    Ok(removal)
}

/// The symbolic links in `dir/*.wants/` and `dir/*.requires/` that point
/// at one of `targets` (what `systemctl enable` created).
fn enable_links(dir: &Path, targets: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut links = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.ends_with(".wants") || name.ends_with(".requires")) {
            continue;
        }
        let sub = entry.path();
        let Ok(inner) = std::fs::read_dir(&sub) else {
            continue;
        };
        for link in inner.flatten() {
            let path = link.path();
            let Ok(target) = std::fs::read_link(&path) else {
                continue;
            };
            let target = if target.is_absolute() {
                target
            } else {
                sub.join(target)
            };
            let target = std::path::absolute(&target).unwrap_or(target);
            let hits = targets.iter().any(|t| {
                std::path::absolute(t).is_ok_and(|t| t == target)
                    || std::fs::canonicalize(t).is_ok_and(|t| t == target)
            });
            if hits && path.file_name() == target.file_name() {
                links.push(path);
            }
        }
    }
    links.sort();
    Ok(links)
}

/// The owner (uid) of `dir`, or `None` for root: system units run as the
/// owner of the kastell directory they use. Refuses when `dir` cannot be
/// inspected.
pub(crate) fn run_as_owner_of(dir: &Path) -> Result<Option<u32>> {
    let meta = std::fs::metadata(dir)
        .map_err(|e| Error::io(format!("inspecting {}", dir.display()), e))?;
    Ok(Some(meta.uid()).filter(|uid| *uid != 0))
}

#[cfg(test)]
mod tests;
