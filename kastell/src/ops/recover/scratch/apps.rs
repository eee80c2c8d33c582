//! What a scratch drill checks before it deletes its server: the backup's
//! own data as `backup drill` checks it (on this machine), then every app
//! on the recovered server over SSH, compared with what the backup holds:
//! a database's container running and, for PostgreSQL, each table's rows
//! equal to the dump's (the counts the local drill takes from the dump); a
//! volume's files and their SHA-256 equal to the backup's tar and a
//! container using it running; where a container declares a Docker health
//! check, its status `healthy` (a `starting` one is looked at again until
//! it has a verdict or the drill's time limit comes near; `unhealthy` or
//! still `starting` fails the app). Each difference names the app, the table
//! or file, what the backup holds and what the server had. What the server
//! sends is read by the platform's strict parsers
//! ([`kastell_core::Platform::observe_app`]) and only ever compared and
//! shown escaped.

use std::collections::BTreeMap;
use std::fs;
use std::future::Future;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use kastell_core::types::{
    AppData, AppDataKind, AppHealth, AppObserved, ArtifactRecord, ArtifactSource, BackupId,
    StepReport, StepTimer,
};
use kastell_core::{Error, ErrorKind, Result};
use tokio::time::Instant;

use super::super::flow::Recovered;
use crate::engine::backup::{Digesting, VerifiedSource};
use crate::engine::drill::{self, CheckOutcome, DrillReport};
use crate::engine::repos;
use crate::ops::Context;
use crate::state::store::{ServerRecord, display_safe};
use crate::state::verifications::AppProof;

/// The most differences listed per app (the rest are counted).
const MOST_LISTED: usize = 20;

/// How often an app whose health check says `starting` is looked at again.
const HEALTH_POLL: Duration = Duration::from_secs(2);

/// What the backup holds of one app's data, to compare with the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Holds {
    /// A PostgreSQL dump's rows per table.
    Rows(BTreeMap<String, u64>),
    /// A PostgreSQL dump the local drill could not count, and why.
    Uncounted(String),
    /// A volume's regular files and their SHA-256.
    Files(BTreeMap<String, String>),
    /// Another database's dump: only its container is checked.
    Opaque,
}

/// One app artifact of the backup and what it holds.
#[derive(Debug, Clone)]
pub(super) struct Expected {
    pub part: AppData,
    pub holds: Holds,
}

/// What the checks came to.
#[derive(Debug, Default)]
pub(crate) struct Checked {
    /// The checks' steps, timed.
    pub steps: Vec<StepReport>,
    /// Each app artifact's result.
    pub apps: Vec<AppProof>,
    /// Checks of the local drill that passed and that this machine could
    /// not run.
    pub passed: usize,
    /// See `passed`.
    pub skipped: usize,
    /// Things to know from the local drill.
    pub warnings: Vec<String>,
    /// What failed, when something did.
    pub error: Option<Error>,
}

/// Checks backup `backup_id` of `old` and its apps on the server
/// `recovered` (see the module), waiting for `starting` containers until
/// `deadline` at most. Every app is checked even after one failed, so the
/// error names them all.
pub(crate) async fn check(
    ctx: &Context,
    old: &ServerRecord,
    recovered: &Recovered,
    backup_id: &BackupId,
    deadline: Instant,
) -> Checked {
    let mut checked = Checked::default();
    let timer = StepTimer::start("Check the backup's data");
    let local = match ctx.engine.find(&old.name, backup_id) {
        Ok(backup) => {
            repos::off_runtime(move || {
                let (source, warnings) = backup.source()?;
                let report = drill::drill_verified(&source, warnings)?;
                let expected = expected(&source, &report)?;
                Ok((report, expected))
            })
            .await
        }
        Err(e) => Err(e),
    };
    let (report, expected) = match local {
        Ok(done) => done,
        Err(e) => {
            checked.steps.push(timer.failure(&e));
            checked.error = Some(e);
            return checked;
        }
    };
    checked.passed = report.count(CheckOutcome::Passed);
    checked.skipped = report.count(CheckOutcome::Skipped);
    if !report.passed() {
        let e = Error::new(
            ErrorKind::Corrupt,
            format!(
                "backup {backup_id} recovered, but its data did not pass the checks: {}",
                report.failures().join("; ")
            ),
        )
        .with_hint("Keep this backup for inspection, take a new one and drill again");
        checked.steps.push(timer.failure(&e));
        checked.error = Some(e);
        return checked;
    }
    checked.steps.push(timer.success(format!(
        "{} check(s) passed, {} skipped on {} artifact(s)",
        checked.passed,
        checked.skipped,
        report.artifacts.len()
    )));
    checked.warnings = report.warnings;
    if expected.is_empty() {
        return checked;
    }

    let transport = ctx.transport_unstored(&recovered.record);
    let platform = match ctx.platform_for(&recovered.record, transport) {
        Ok(platform) => platform,
        Err(e) => {
            checked.error = Some(e);
            return checked;
        }
    };
    for want in &expected {
        let part = &want.part;
        let timer = StepTimer::start(format!(
            "Check app {} ({}) on the new server: {}",
            display_safe(&part.name),
            part.app,
            part.volume.as_deref().unwrap_or(part.kind.as_str())
        ));
        let proof = match settled(|| platform.observe_app(part), deadline).await {
            Ok(seen) => compare(want, &seen),
            Err(e) => proof_of(
                part,
                vec![format!("could not be read: {}", e.message())],
                String::new(),
            ),
        };
        if proof.passed {
            checked.steps.push(timer.success(proof.detail.clone()));
        } else {
            let e = Error::new(ErrorKind::Corrupt, proof.mismatches.join("; "));
            checked.steps.push(timer.failure(&e));
        }
        checked.apps.push(proof);
    }
    let failed: Vec<String> = checked
        .apps
        .iter()
        .filter(|p| !p.passed)
        .map(|p| format!("{} ({}): {}", p.name, p.app, p.mismatches.join("; ")))
        .collect();
    if !failed.is_empty() {
        checked.error = Some(
            Error::new(
                ErrorKind::Corrupt,
                format!(
                    "backup {backup_id} recovered, but the apps on the new server are not what \
                     it holds: {}",
                    failed.join(" | ")
                ),
            )
            .with_hint(
                "Look at the named apps' restore steps; keep this backup for inspection, take \
                 a new one and drill again",
            ),
        );
    }
    checked
}

/// Observes an app with `look` until no container using it is `starting`
/// or the next look would come after `deadline`; returns the last
/// observation (still `starting` when the time ran out).
async fn settled<F, Fut>(mut look: F, deadline: Instant) -> Result<AppObserved>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<AppObserved>>,
{
    loop {
        let seen = look().await?;
        if seen.health != Some(AppHealth::Starting) || Instant::now() + HEALTH_POLL > deadline {
            return Ok(seen);
        }
        tokio::time::sleep(HEALTH_POLL).await;
    }
}

/// What the backup `source` holds per app artifact: a PostgreSQL dump's
/// rows from the local drill's `report`, a volume's files read from its
/// tar. Blocking.
fn expected(source: &VerifiedSource, report: &DrillReport) -> Result<Vec<Expected>> {
    let mut out = Vec::new();
    for record in source.records() {
        let Some(part) = record.app.clone() else {
            continue;
        };
        part.check()?;
        let holds = match part.kind {
            AppDataKind::Volume => Holds::Files(volume_files(source, &record)?),
            AppDataKind::Postgres => {
                match report.artifacts.iter().find(|a| a.record == record.name) {
                    Some(drilled)
                        if drilled
                            .checks
                            .iter()
                            .all(|c| c.outcome == CheckOutcome::Passed) =>
                    {
                        Holds::Rows(drilled.rows.clone())
                    }
                    Some(drilled) => Holds::Uncounted(
                        drilled
                            .checks
                            .iter()
                            .find(|c| c.outcome != CheckOutcome::Passed)
                            .map_or_else(String::new, |c| c.detail.clone()),
                    ),
                    None => Holds::Uncounted("the local drill did not restore it".to_owned()),
                }
            }
            _ => Holds::Opaque,
        };
        out.push(Expected { part, holds });
    }
    Ok(out)
}

/// The regular files of the volume artifact `record` and their SHA-256,
/// by path relative to the volume: unpacked as the local drill unpacks a
/// hostile tar ([`drill::unpack_tar`]) into a private temporary directory,
/// then walked without following links. Blocking.
fn volume_files(
    source: &VerifiedSource,
    record: &ArtifactRecord,
) -> Result<BTreeMap<String, String>> {
    let scratch = tempfile::Builder::new()
        .prefix("kastell-drill-")
        .tempdir()
        .map_err(|e| Error::io("creating the drill directory", e))?;
    if let Err(why) = drill::unpack_tar(source, record, scratch.path())? {
        return Err(Error::new(
            ErrorKind::Corrupt,
            format!(
                "the volume artifact {} could not be unpacked: {}",
                display_safe(&record.name),
                display_safe(&why)
            ),
        ));
    }
    let mut files = BTreeMap::new();
    sums_under(scratch.path(), "", &mut files)
        .map_err(|e| Error::io("reading the unpacked volume", e))?;
    Ok(files)
}

/// Adds the SHA-256 of every regular file under `dir` to `files`, by path
/// from the volume (`prefix` is `dir`'s). Links and special files are
/// left out, as `find -type f` leaves them out on the server; what tar
/// left unreadable is made readable first (the directory is ours).
fn sums_under(dir: &Path, prefix: &str, files: &mut BTreeMap<String, String>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        if kind.is_dir() {
            fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o700))?;
            sums_under(&entry.path(), &path, files)?;
        } else if kind.is_file() {
            fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o600))?;
            let mut digest = Digesting::new(io::sink());
            io::copy(&mut fs::File::open(entry.path())?, &mut digest)?;
            files.insert(path, digest.finish().2);
        }
    }
    Ok(())
}

/// The first 12 hex digits of a checksum, for people.
fn short(sum: &str) -> &str {
    sum.get(..12).unwrap_or(sum)
}

/// The proof of `part` with `mismatches` (passed when there are none)
/// and `detail`.
fn proof_of(part: &AppData, mut mismatches: Vec<String>, detail: String) -> AppProof {
    if mismatches.len() > MOST_LISTED {
        let more = mismatches.len() - MOST_LISTED;
        mismatches.truncate(MOST_LISTED);
        mismatches.push(format!("and {more} more"));
    }
    AppProof {
        app: part.app.clone(),
        name: display_safe(&part.name),
        kind: part.kind.as_str().to_owned(),
        volume: part.volume.clone(),
        passed: mismatches.is_empty(),
        detail,
        mismatches,
    }
}

/// Compares what the server had (`seen`) with what the backup holds.
pub(super) fn compare(want: &Expected, seen: &AppObserved) -> AppProof {
    let part = &want.part;
    let mut wrong = Vec::new();
    let whose = match part.kind {
        AppDataKind::Volume => "a container using it",
        _ => "its container",
    };
    if !seen.running {
        wrong.push(match part.kind {
            AppDataKind::Volume => format!(
                "no running container uses volume {}",
                part.volume.as_deref().unwrap_or_default()
            ),
            kind => format!("its {} container is not running", kind.as_str()),
        });
    }
    let running = match (seen.running, seen.health) {
        (true, Some(AppHealth::Healthy)) => "running and healthy",
        (false, _) | (true, None) => "running",
        (true, Some(AppHealth::Unhealthy)) => {
            wrong.push(format!("Docker's health check of {whose} says unhealthy"));
            "running"
        }
        (true, Some(AppHealth::Starting)) => {
            wrong.push(format!(
                "Docker's health check of {whose} still said starting when the drill's time \
                 limit came near"
            ));
            "running"
        }
    };
    let detail = match &want.holds {
        Holds::Rows(tables) => {
            let found = seen.rows.clone().unwrap_or_default();
            if seen.running {
                for (table, n) in tables {
                    let shown = display_safe(table);
                    match found.get(table) {
                        None => wrong.push(format!(
                            "table {shown}: the dump holds {n} rows, the server has no such table"
                        )),
                        Some(m) if m != n => wrong.push(format!(
                            "table {shown}: the dump holds {n} rows, the server has {m}"
                        )),
                        Some(_) => {}
                    }
                }
            }
            format!(
                "{running}; {} rows in {} table(s), table by table as in the dump",
                tables.values().sum::<u64>(),
                tables.len()
            )
        }
        Holds::Uncounted(why) => format!("{running}; rows not compared: {}", display_safe(why)),
        Holds::Files(files) => {
            let found = seen.files.clone().unwrap_or_default();
            for (path, sum) in files {
                let shown = display_safe(path);
                match found.get(path) {
                    None => wrong.push(format!(
                        "file {shown}: in the backup (sha256 {}), missing on the server",
                        short(sum)
                    )),
                    Some(other) if other != sum => wrong.push(format!(
                        "file {shown}: the backup's sha256 {}, the server's {}",
                        short(sum),
                        short(other)
                    )),
                    Some(_) => {}
                }
            }
            for path in found.keys().filter(|p| !files.contains_key(*p)) {
                wrong.push(format!(
                    "file {}: on the server, not in the backup",
                    display_safe(path)
                ));
            }
            format!(
                "{running}; {} file(s), each checksum as in the backup",
                files.len()
            )
        }
        Holds::Opaque => format!(
            "{running}; its {} data is checked by the artifact's checksum only, not on the \
             server (kastell counts the rows of PostgreSQL dumps only)",
            part.kind.as_str()
        ),
    };
    proof_of(part, wrong, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(kind: AppDataKind) -> AppData {
        AppData {
            app: "k1".into(),
            name: "blog\u{1b}[31m".into(),
            kind,
            volume: (kind == AppDataKind::Volume).then(|| "k1-data".to_owned()),
        }
    }

    #[test]
    fn rows_that_differ_name_the_table_and_both_counts() {
        let want = Expected {
            part: part(AppDataKind::Postgres),
            holds: Holds::Rows(BTreeMap::from([
                ("public.posts".to_owned(), 3),
                ("public.tags".to_owned(), 250),
            ])),
        };
        let mut seen = AppObserved {
            running: true,
            rows: Some(BTreeMap::from([
                ("public.posts".to_owned(), 3),
                ("public.tags".to_owned(), 250),
                ("public.extra".to_owned(), 1),
            ])),
            files: None,
            health: None,
        };
        let ok = compare(&want, &seen);
        assert!(ok.passed, "{ok:?}");
        assert!(!ok.name.contains('\u{1b}'), "{ok:?}");
        seen.rows = Some(BTreeMap::from([("public.posts".to_owned(), 2)]));
        let bad = compare(&want, &seen);
        assert!(!bad.passed);
        assert_eq!(
            bad.mismatches,
            [
                "table public.posts: the dump holds 3 rows, the server has 2",
                "table public.tags: the dump holds 250 rows, the server has no such table"
            ]
        );
        seen.running = false;
        let down = compare(&want, &seen);
        assert_eq!(down.mismatches, ["its postgres container is not running"]);
    }

    #[test]
    fn files_that_differ_are_named_missing_extra_or_changed() {
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        let want = Expected {
            part: part(AppDataKind::Volume),
            holds: Holds::Files(BTreeMap::from([
                ("index.html".to_owned(), a.clone()),
                ("img/x".to_owned(), a.clone()),
            ])),
        };
        let seen = AppObserved {
            running: true,
            rows: None,
            files: Some(BTreeMap::from([
                ("index.html".to_owned(), b.clone()),
                ("new\nfile".to_owned(), a.clone()),
            ])),
            health: None,
        };
        let proof = compare(&want, &seen);
        assert!(!proof.passed);
        assert_eq!(proof.mismatches.len(), 3, "{proof:?}");
        assert!(proof.mismatches[0].starts_with("file img/x: in the backup (sha256 aaaaaaaaaaaa)"));
        assert_eq!(
            proof.mismatches[1],
            "file index.html: the backup's sha256 aaaaaaaaaaaa, the server's bbbbbbbbbbbb"
        );
        assert!(!proof.mismatches[2].contains('\n'), "{proof:?}");
    }

    #[test]
    fn an_unhealthy_or_still_starting_container_fails_its_app() {
        let want = Expected {
            part: part(AppDataKind::Mysql),
            holds: Holds::Opaque,
        };
        let mut seen = AppObserved {
            running: true,
            health: Some(AppHealth::Healthy),
            ..AppObserved::default()
        };
        let ok = compare(&want, &seen);
        assert!(ok.passed, "{ok:?}");
        assert!(ok.detail.starts_with("running and healthy;"), "{ok:?}");
        assert!(ok.detail.contains("artifact's checksum only"), "{ok:?}");
        seen.health = Some(AppHealth::Unhealthy);
        let bad = compare(&want, &seen);
        assert_eq!(
            bad.mismatches,
            ["Docker's health check of its container says unhealthy"]
        );
        seen.health = Some(AppHealth::Starting);
        let slow = compare(&want, &seen);
        assert!(!slow.passed);
        assert!(
            slow.mismatches[0].contains("still said starting"),
            "{slow:?}"
        );
        seen.health = None;
        assert!(
            compare(&want, &seen).passed,
            "no health check: running is enough"
        );
    }

    fn looks(
        script: &[Option<AppHealth>],
    ) -> (
        std::sync::Arc<std::sync::atomic::AtomicUsize>,
        impl FnMut() -> std::future::Ready<Result<AppObserved>>,
    ) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let count = std::sync::Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        let script = script.to_vec();
        let look = move || {
            let i = seen.fetch_add(1, Ordering::SeqCst);
            let health = script[i.min(script.len() - 1)];
            std::future::ready(Ok(AppObserved {
                running: true,
                health,
                ..AppObserved::default()
            }))
        };
        (count, look)
    }

    #[tokio::test(start_paused = true)]
    async fn a_starting_container_is_waited_for_until_it_has_a_verdict_or_the_time_is_up() {
        use std::sync::atomic::Ordering;
        let start = Instant::now();
        let (count, look) = looks(&[
            Some(AppHealth::Starting),
            Some(AppHealth::Starting),
            Some(AppHealth::Healthy),
        ]);
        let seen = settled(look, start + Duration::from_secs(600))
            .await
            .unwrap();
        assert_eq!(seen.health, Some(AppHealth::Healthy));
        assert_eq!(count.load(Ordering::SeqCst), 3);
        assert_eq!(start.elapsed(), HEALTH_POLL * 2);

        let start = Instant::now();
        let (count, look) = looks(&[Some(AppHealth::Starting)]);
        let seen = settled(look, start + Duration::from_secs(9)).await.unwrap();
        assert_eq!(seen.health, Some(AppHealth::Starting), "given up");
        assert!(start.elapsed() <= Duration::from_secs(9));
        assert_eq!(count.load(Ordering::SeqCst), 5, "at 0, 2, 4, 6 and 8 s");

        let (count, look) = looks(&[Some(AppHealth::Unhealthy), Some(AppHealth::Healthy)]);
        let seen = settled(look, Instant::now() + Duration::from_secs(600))
            .await
            .unwrap();
        assert_eq!(
            seen.health,
            Some(AppHealth::Unhealthy),
            "a verdict is final"
        );
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn unpacked_files_are_summed_by_path_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("img/2026")).unwrap();
        fs::write(dir.path().join("index.html"), b"abc").unwrap();
        fs::write(dir.path().join("img/empty"), b"").unwrap();
        fs::set_permissions(
            dir.path().join("img/empty"),
            fs::Permissions::from_mode(0o000),
        )
        .unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("img/2026/link")).unwrap();
        let mut files = BTreeMap::new();
        sums_under(dir.path(), "", &mut files).unwrap();
        assert_eq!(files.len(), 2, "{files:?}");
        assert_eq!(
            files["index.html"],
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            files["img/empty"],
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
