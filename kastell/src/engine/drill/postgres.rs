//! The drill of a PostgreSQL dump: restored into a throwaway local cluster
//! of the dump's major version (or the nearest newer one), then every
//! table the dump holds data for must exist with exactly the rows the
//! dump holds for it.
//!
//! One read of the artifact feeds both the restore and the count: a
//! custom-format dump goes to `pg_restore -d` and, at the same time, to a
//! second `pg_restore --data-only -f -` whose SQL is counted; a plain SQL
//! dump goes to `psql` and is counted as it passes. The tar of a parallel
//! (`pg_dump -Fd`) dump is unpacked into a temporary directory first, which
//! both `pg_restore` runs then read (the restore with two jobs).
//!
//! The dump is hostile input. Its SQL runs as [`RESTORER`], a role that is
//! not a superuser and owns only the drill's database, so `COPY ... FROM
//! PROGRAM`, `CREATE FUNCTION ... LANGUAGE C`, `pg_read_file` or
//! `lo_import` are refused by the server (which, when kastell is root, runs
//! as the `postgres` OS user). A plain dump reaches `psql` through
//! [`MetaGuard`]: no meta-command of the dump runs, and psql is held in
//! restricted mode; a psql too old for that restricted mode does not
//! restore plain dumps (the check is skipped, saying so).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Stdio};
use std::time::Instant;

use kastell_core::types::{ArtifactFormat, ArtifactRecord, ArtifactSource};
use kastell_core::{Error, ErrorKind, Result};
use kastell_pg::Cluster;

use super::copy_count::CopyCounter;
use super::plain_sql::{self, MetaGuard};
use super::tree;
use super::{ArtifactDrill, DrillCheck, feed, millis_since, plain, unpack_tar};

/// How much of a plain dump is searched for its version header.
const HEADER_BYTES: usize = 64 * 1024;

/// The database a drill restores into.
const DRILL_DB: &str = "kastell_drill";

/// The role a dump's SQL runs as: no superuser, no other database, no
/// role creation; the owner of [`DRILL_DB`] only.
const RESTORER: &str = "kastell_drill_restorer";

/// Sets up the drill's database, owned by [`RESTORER`].
fn prepare(cluster: &Cluster) -> Result<()> {
    cluster.execute(
        "postgres",
        &format!(
            "CREATE ROLE {RESTORER} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION \
             NOBYPASSRLS; CREATE DATABASE {DRILL_DB} OWNER {RESTORER}; \
             REVOKE ALL ON DATABASE postgres, template1 FROM PUBLIC;"
        ),
    )
}

/// A client command of the cluster that connects as [`RESTORER`].
fn as_restorer(cluster: &Cluster, program: &str) -> std::process::Command {
    let mut command = cluster.client(program);
    command.env("PGUSER", RESTORER);
    command
}

fn failed(what: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::CommandFailed, format!("restore drill: {what}"))
}

/// The server major version a dump was taken from, from its header:
/// `Dumped from database version: 15.18` in `pg_restore -l`'s listing of
/// a custom dump, `-- Dumped from database version 15.18` atop a plain
/// one. `None` when it does not say.
fn dump_major(
    source: &dyn ArtifactSource,
    record: &ArtifactRecord,
    unpacked: Option<&Path>,
) -> Result<Option<u32>> {
    let header = match (record.format, unpacked) {
        (_, Some(dir)) => {
            let newest = kastell_pg::pick(None)?;
            let out = kastell_core::env::allowlisted_command(newest.bin_dir.join("pg_restore"))
                .arg("-l")
                .arg(dir)
                .output()
                .map_err(|e| Error::io("running pg_restore -l", e))?;
            if !out.status.success() {
                return Err(unreadable(record, &out.stderr));
            }
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
        (ArtifactFormat::PgCustom, None) => {
            let newest = kastell_pg::pick(None)?;
            let mut child =
                kastell_core::env::allowlisted_command(newest.bin_dir.join("pg_restore"))
                    .arg("-l")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .map_err(|e| Error::io("running pg_restore -l", e))?;
            let stdin = take_stdin(&mut child)?;
            let mut reader = source.open(&record.name)?;
            // pg_restore stops reading after the table of contents: a
            // broken pipe here is expected.
            let feeder = std::thread::spawn(move || {
                let mut stdin = stdin;
                let _ = std::io::copy(&mut reader, &mut stdin);
            });
            let out = child
                .wait_with_output()
                .map_err(|e| Error::io("waiting for pg_restore -l", e))?;
            let _ = feeder.join();
            if !out.status.success() {
                return Err(unreadable(record, &out.stderr));
            }
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
        (_, None) => {
            let mut head = Vec::with_capacity(HEADER_BYTES);
            source
                .open(&record.name)?
                .take(HEADER_BYTES as u64)
                .read_to_end(&mut head)
                .map_err(|e| {
                    Error::io(
                        format!(
                            "reading {}",
                            crate::state::store::display_safe(&record.name)
                        ),
                        e,
                    )
                })?;
            String::from_utf8_lossy(&head).into_owned()
        }
    };
    Ok(header.lines().find_map(|line| {
        let rest = line.split("Dumped from database version").nth(1)?;
        let version = rest.trim_start_matches([':', ' ']);
        version.split(['.', ' ']).next()?.parse().ok()
    }))
}

/// `pg_restore -l` could not read the dump `record`.
fn unreadable(record: &ArtifactRecord, stderr: &[u8]) -> Error {
    failed(format!(
        "pg_restore cannot read the dump {}: {}",
        crate::state::store::display_safe(&record.name),
        plain(String::from_utf8_lossy(stderr).trim())
    ))
    .with_hint("Install a newer PostgreSQL client, or drill another backup")
}

fn take_stdin(child: &mut Child) -> Result<ChildStdin> {
    child
        .stdin
        .take()
        .ok_or_else(|| Error::unexpected("a child process has no stdin"))
}

/// Collects a child's stderr on a thread.
fn stderr_of(child: &mut Child) -> std::thread::JoinHandle<String> {
    let stderr = child.stderr.take();
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut stderr) = stderr {
            let _ = stderr.read_to_string(&mut text);
        }
        text
    })
}

/// What restoring printed and how it ended.
struct Restored {
    ok: bool,
    errors: Vec<String>,
    expected: BTreeMap<String, u64>,
}

/// The errors a restore printed. A plain dump names its owners; those
/// roles do not exist here, and only those statements may fail.
fn error_lines(text: &str, custom: bool) -> Vec<String> {
    text.lines()
        .filter(|l| l.contains("ERROR:") || l.contains("error:"))
        .filter(|l| custom || !l.contains("role") || !l.contains("does not exist"))
        .map(plain)
        .collect()
}

/// Restores the unpacked directory dump `dir` into the cluster with two
/// jobs, after counting its rows with `pg_restore --data-only`.
fn restore_directory(cluster: &Cluster, dir: &Path, record: &ArtifactRecord) -> Result<Restored> {
    let mut lister = cluster
        .client("pg_restore")
        .args(["--data-only", "-f", "-"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io("starting pg_restore --data-only", e))?;
    let lister_err = stderr_of(&mut lister);
    let mut stdout = lister
        .stdout
        .take()
        .ok_or_else(|| Error::unexpected("pg_restore has no stdout"))?;
    let mut counter = CopyCounter::default();
    let copied = std::io::copy(&mut stdout, &mut counter);
    let listed = lister
        .wait()
        .map_err(|e| Error::io("waiting for pg_restore", e))?;
    let lister_text = lister_err.join().unwrap_or_default();
    if !listed.success() || copied.is_err() {
        return Err(failed(format!(
            "pg_restore could not read the data of {}: {}",
            crate::state::store::display_safe(&record.name),
            plain(lister_text.trim())
        )));
    }
    let expected = counter.finish();
    let out = as_restorer(cluster, "pg_restore")
        .args([
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "-j",
            "2",
            "-d",
            DRILL_DB,
        ])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| Error::io("running the restore", e))?;
    let errors = error_lines(&String::from_utf8_lossy(&out.stderr), true);
    Ok(Restored {
        ok: out.status.success() && errors.is_empty(),
        errors,
        expected,
    })
}

/// Restores `record` into the cluster while counting its rows. A plain
/// dump carrying a meta-command is stopped there and not restored.
fn restore(
    cluster: &Cluster,
    source: &dyn ArtifactSource,
    record: &ArtifactRecord,
    restrict_key: Option<&str>,
) -> Result<Restored> {
    let custom = record.format == ArtifactFormat::PgCustom;
    let mut restorer = if custom {
        let mut c = as_restorer(cluster, "pg_restore");
        c.args([
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "-d",
            DRILL_DB,
        ]);
        c
    } else {
        // A plain dump names its owners; the roles do not exist here, and
        // those statements are the only ones allowed to fail.
        let mut c = as_restorer(cluster, "psql");
        c.args(["-X", "-q", "-d", DRILL_DB, "-f", "-"]);
        c
    };
    let mut restorer = restorer
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io("starting the restore", e))?;
    let restorer_err = stderr_of(&mut restorer);
    let mut restore_in = take_stdin(&mut restorer)?;
    let mut reader = source.open(&record.name)?;
    let mut refused = None;

    let (fed, expected) = if custom {
        let mut lister = cluster
            .client("pg_restore")
            .args(["--data-only", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::io("starting pg_restore --data-only", e))?;
        let lister_err = stderr_of(&mut lister);
        let mut list_in = take_stdin(&mut lister)?;
        let stdout = lister
            .stdout
            .take()
            .ok_or_else(|| Error::unexpected("pg_restore has no stdout"))?;
        let counting = std::thread::spawn(move || {
            let mut counter = CopyCounter::default();
            let mut lines = BufReader::with_capacity(1 << 20, stdout);
            loop {
                let buf = match lines.fill_buf() {
                    Ok([]) | Err(_) => break,
                    Ok(buf) => buf,
                };
                let n = buf.len();
                let _ = counter.write_all(buf);
                lines.consume(n);
            }
            counter.finish()
        });
        let fed = feed(&mut reader, &mut [&mut restore_in, &mut list_in]);
        drop(list_in);
        let listed = lister
            .wait()
            .map_err(|e| Error::io("waiting for pg_restore", e))?;
        let counts = counting
            .join()
            .map_err(|_| Error::unexpected("the row counter panicked"))?;
        let lister_text = lister_err.join().unwrap_or_default();
        if !listed.success() {
            return Err(failed(format!(
                "pg_restore could not read the data of {}: {}",
                crate::state::store::display_safe(&record.name),
                plain(lister_text.trim())
            )));
        }
        (fed, counts)
    } else {
        let mut counter = CopyCounter::default();
        let mut guard = MetaGuard::new(&mut restore_in, restrict_key)
            .map_err(|e| Error::io("starting the restore", e))?;
        let fed = feed(&mut reader, &mut [&mut guard, &mut counter]);
        let (found, _) = guard.finish();
        refused = found;
        (fed, counter.finish())
    };
    drop(restore_in);
    let status = restorer
        .wait()
        .map_err(|e| Error::io("waiting for the restore", e))?;
    let text = restorer_err.join().unwrap_or_default();
    let mut errors = error_lines(&text, custom);
    if let Some(found) = refused {
        errors.insert(0, found.to_string());
    } else if let Err(e) = fed {
        if errors.is_empty() {
            return Err(Error::io(
                format!(
                    "feeding {} to the restore",
                    crate::state::store::display_safe(&record.name)
                ),
                e,
            ));
        }
    }
    Ok(Restored {
        ok: status.success() && errors.is_empty(),
        errors,
        expected,
    })
}

/// A fresh `\restrict` key when the cluster's psql has restricted mode;
/// `None` when it is too old.
fn psql_restrict_key(cluster: &Cluster) -> Result<Option<String>> {
    let out = cluster
        .client("psql")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io("running psql --version", e))?;
    if !plain_sql::knows_restrict(&String::from_utf8_lossy(&out.stdout)) {
        return Ok(None);
    }
    plain_sql::restrict_key()
        .map(Some)
        .map_err(|e| Error::io("reading /dev/urandom", e))
}

/// The drill of a plain dump this machine's psql cannot restore safely.
fn too_old_psql(record: &ArtifactRecord, cluster: &Cluster, started: Instant) -> ArtifactDrill {
    ArtifactDrill {
        artifact: crate::state::store::display_safe(&record.name),
        target: format!("PostgreSQL {}", cluster.major()),
        checks: vec![DrillCheck::skipped(
            "restore",
            &format!(
                "the psql of PostgreSQL {} here has no restricted mode (\\restrict: 13.22, \
                 14.19, 15.14, 16.10, 17.6 and later), without which a plain dump's \
                 meta-commands would run on this machine; upgrade its postgresql-client",
                cluster.major()
            ),
        )],
        duration_ms: millis_since(started),
        record: record.name.clone(),
        rows: BTreeMap::new(),
    }
}

/// SQL that quotes `text` as a string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Drills the dump `record`: restore, then tables and rows compared with
/// the dump. Fails (rather than reporting a failed check) only when the
/// drill itself cannot run: no PostgreSQL here, an unreadable dump.
pub(super) fn drill(source: &dyn ArtifactSource, record: &ArtifactRecord) -> Result<ArtifactDrill> {
    let started = Instant::now();
    let scratch = if record.format == ArtifactFormat::PgDirectoryTar {
        let scratch = tempfile::Builder::new()
            .prefix("kastell-drill-")
            .tempdir()
            .map_err(|e| Error::io("creating the drill directory", e))?;
        if let Err(why) = unpack_tar(source, record, scratch.path())? {
            return Err(failed(format!(
                "the parallel dump {} could not be unpacked: {}",
                crate::state::store::display_safe(&record.name),
                plain(&why)
            )));
        }
        // pg_dump -Fd writes regular files only: a symlink would have
        // pg_restore read a file of this machine as the dump's data.
        let tidied =
            tree::tidy(scratch.path()).map_err(|e| Error::io("checking the unpacked dump", e))?;
        if let Some(odd) = tidied.symlinks.first().or(tidied.removed.first()) {
            return Err(failed(format!(
                "the parallel dump {} holds {}, which is no regular file and which pg_dump never \
                 writes; it was not restored",
                crate::state::store::display_safe(&record.name),
                crate::state::store::display_safe(odd)
            ))
            .with_hint("The backup is not what pg_dump wrote: take a new one"));
        }
        Some(scratch)
    } else {
        None
    };
    let unpacked = scratch.as_ref().map(|s| s.path());
    let major = dump_major(source, record, unpacked)?;
    let server = kastell_pg::pick(major)?;
    let cluster = Cluster::start_on(server)?;
    let restrict_key = match record.format {
        ArtifactFormat::PgPlain => match psql_restrict_key(&cluster)? {
            Some(key) => Some(key),
            None => return Ok(too_old_psql(record, &cluster, started)),
        },
        _ => None,
    };
    prepare(&cluster)?;
    let restored = match unpacked {
        Some(dir) => restore_directory(&cluster, dir, record)?,
        None => restore(&cluster, source, record, restrict_key.as_deref())?,
    };
    let restore_started = started.elapsed();
    let mut checks = vec![DrillCheck::ran(
        "restore",
        restored.ok,
        if restored.ok {
            format!(
                "restored into a throwaway PostgreSQL {} (the dump is from {})",
                cluster.major(),
                major.map_or_else(|| "an unknown version".to_owned(), |m| m.to_string())
            )
        } else {
            format!(
                "the restore into PostgreSQL {} failed: {}",
                cluster.major(),
                restored
                    .errors
                    .iter()
                    .take(3)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        },
    )];
    // What the dump created is queried as the restorer too: its names are
    // the server's, and reach SQL below.
    let present: Vec<String> = cluster
        .psql_as(
            RESTORER,
            DRILL_DB,
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') \
             AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
             AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1",
        )?
        .lines()
        .map(str::to_owned)
        .collect();
    let missing: Vec<&String> = restored
        .expected
        .keys()
        .filter(|t| !present.contains(t))
        .collect();
    checks.push(DrillCheck::ran(
        "tables",
        missing.is_empty(),
        if missing.is_empty() {
            format!(
                "all {} tables of the dump exist after the restore",
                restored.expected.len()
            )
        } else {
            format!(
                "{} of the dump's {} tables are missing after the restore: {}",
                missing.len(),
                restored.expected.len(),
                missing
                    .iter()
                    .take(5)
                    .map(|s| crate::state::store::display_safe(s))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
    ));
    let counted: Vec<(&String, &u64)> = restored
        .expected
        .iter()
        .filter(|(t, _)| present.contains(t))
        .collect();
    let mut actual = BTreeMap::new();
    if !counted.is_empty() {
        let sql = counted
            .iter()
            .map(|(table, _)| format!("SELECT {}, count(*) FROM {table}", literal(table)))
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        for line in cluster
            .psql_as(RESTORER, DRILL_DB, &format!("{sql};"))?
            .lines()
        {
            if let Some((table, n)) = line.rsplit_once('|') {
                actual.insert(table.to_owned(), n.parse::<u64>().unwrap_or(u64::MAX));
            }
        }
    }
    let wrong: Vec<String> = counted
        .iter()
        .filter(|(t, n)| actual.get(*t) != Some(n))
        .map(|(t, n)| {
            format!(
                "{}: {} of {n}",
                crate::state::store::display_safe(t),
                actual.get(*t).copied().unwrap_or(0)
            )
        })
        .collect();
    let rows: u64 = restored.expected.values().sum();
    checks.push(DrillCheck::ran(
        "rows",
        wrong.is_empty() && missing.is_empty(),
        if wrong.is_empty() {
            format!("{rows} rows restored, table by table as many as the dump holds")
        } else {
            format!("row counts differ from the dump: {}", wrong.join(", "))
        },
    ));
    tracing::debug!(
        "drill of {}: restore {} ms, checks {} ms",
        crate::state::store::display_safe(&record.name),
        restore_started.as_millis(),
        (started.elapsed() - restore_started).as_millis()
    );
    Ok(ArtifactDrill {
        artifact: crate::state::store::display_safe(&record.name),
        target: format!("PostgreSQL {}", cluster.major()),
        checks,
        duration_ms: millis_since(started),
        record: record.name.clone(),
        rows: restored.expected,
    })
}
