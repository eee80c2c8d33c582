//! Restore drills: proof that a backup restores, not only that its bytes
//! are intact. Each artifact is restored into a throwaway target on this
//! machine and checked:
//! - a PostgreSQL dump ([`postgres`]) into a private local cluster of the
//!   dump's major version, then every table the dump holds data for must
//!   exist with exactly as many rows as the dump holds;
//! - a configuration archive ([`bare`]) unpacked, screened, then `sshd -t`
//!   and `nginx -t`, confined, on the unpacked configurations where this
//!   machine has them.
//!
//! The backup's checksums are verified first; nothing touches a server.
//! What the server sent is hostile input: nothing of it runs here (see
//! [`bare`], [`postgres`], README's trust boundary), every program fed with
//! it gets only `PATH` and `LANG=C` in its environment, and every name or
//! message from it is shown with control characters escaped.

mod bare;
mod confine;
mod copy_count;
mod plain_sql;
mod postgres;
mod screen;
mod tree;

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use kastell_core::types::{ArtifactFormat, ArtifactRecord, ArtifactSource};
use kastell_core::{Error, Result};
use schemars::JsonSchema;
use serde::Serialize;

use crate::engine::backup::{StoredBackup, VerifiedSource};

/// How a check of a drill ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckOutcome {
    /// It ran and found what it should.
    Passed,
    /// It ran and found a problem.
    Failed,
    /// This machine cannot run it (the validator is not installed); it
    /// neither proves nor fails the backup.
    Skipped,
}

/// One check of a drill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DrillCheck {
    /// What was checked (`restore`, `tables`, `rows`, `unpack`, `sshd -t`).
    pub name: String,
    /// How it ended.
    pub outcome: CheckOutcome,
    /// What was found.
    pub detail: String,
}

impl DrillCheck {
    /// A check that ran: passed or failed as `passed` says.
    fn ran(name: &str, passed: bool, detail: String) -> Self {
        Self {
            name: name.to_owned(),
            outcome: if passed {
                CheckOutcome::Passed
            } else {
                CheckOutcome::Failed
            },
            detail,
        }
    }

    /// A check this machine cannot run, and why.
    fn skipped(name: &str, why: &str) -> Self {
        Self {
            name: name.to_owned(),
            outcome: CheckOutcome::Skipped,
            detail: why.to_owned(),
        }
    }

    /// Whether it failed.
    pub fn failed(&self) -> bool {
        self.outcome == CheckOutcome::Failed
    }
}

/// The drill of one artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactDrill {
    /// The artifact's name.
    pub artifact: String,
    /// What it was restored into.
    pub target: String,
    /// The checks, in order.
    pub checks: Vec<DrillCheck>,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// The artifact's own name in the manifest (`artifact` is it made
    /// safe to show; not part of the report's JSON).
    #[serde(skip)]
    #[schemars(skip)]
    pub record: String,
    /// A PostgreSQL dump's rows per table, as the dump holds them (empty
    /// for other artifacts; not part of the report's JSON): what a
    /// rehearsal compares the recovered server's tables with.
    #[serde(skip)]
    #[schemars(skip)]
    pub rows: BTreeMap<String, u64>,
}

/// A whole drill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DrillReport {
    /// Each artifact's drill.
    pub artifacts: Vec<ArtifactDrill>,
    /// Artifacts no drill exists for (opaque files), checked by checksum
    /// only.
    pub unchecked: Vec<String>,
    /// Things to know (a legacy backup has no checksums).
    pub warnings: Vec<String>,
    /// How long it all took, in milliseconds.
    pub duration_ms: u64,
}

impl DrillReport {
    /// Whether no check failed.
    pub fn passed(&self) -> bool {
        self.artifacts
            .iter()
            .all(|a| a.checks.iter().all(|c| !c.failed()))
    }

    /// How many checks ended with `outcome`.
    pub fn count(&self, outcome: CheckOutcome) -> usize {
        self.artifacts
            .iter()
            .flat_map(|a| &a.checks)
            .filter(|c| c.outcome == outcome)
            .count()
    }

    /// The checks that were skipped, as `artifact: check: why`.
    pub fn skips(&self) -> Vec<String> {
        self.artifacts
            .iter()
            .flat_map(|a| {
                a.checks
                    .iter()
                    .filter(|c| c.outcome == CheckOutcome::Skipped)
                    .map(move |c| format!("{}: {}: {}", a.artifact, c.name, c.detail))
            })
            .collect()
    }

    /// The checks that failed, as `artifact: check: detail`.
    pub fn failures(&self) -> Vec<String> {
        self.artifacts
            .iter()
            .flat_map(|a| {
                a.checks
                    .iter()
                    .filter(|c| c.failed())
                    .map(move |c| format!("{}: {}: {}", a.artifact, c.name, c.detail))
            })
            .collect()
    }
}

/// Drills `backup` after verifying its checksums. Fails when the backup is
/// corrupt or a drill cannot run here (no PostgreSQL server installed, a
/// dump newer than every server here); a restore that runs but goes wrong
/// is a failed check in the report. Blocking.
pub fn drill(backup: &StoredBackup) -> Result<DrillReport> {
    let (source, warnings) = backup.source()?;
    drill_verified(&source, warnings)
}

/// Drills the artifacts of `source`, a backup whose checksums were
/// verified (with `warnings` from that); see [`drill`]. Blocking.
pub(crate) fn drill_verified(
    source: &VerifiedSource,
    warnings: Vec<String>,
) -> Result<DrillReport> {
    let started = Instant::now();
    let mut report = DrillReport {
        artifacts: Vec::new(),
        unchecked: Vec::new(),
        warnings,
        duration_ms: 0,
    };
    for record in source.records() {
        match record.format {
            ArtifactFormat::PgCustom | ArtifactFormat::PgPlain | ArtifactFormat::PgDirectoryTar => {
                report.artifacts.push(postgres::drill(source, &record)?);
            }
            ArtifactFormat::Tar => report.artifacts.push(bare::drill(source, &record)?),
            ArtifactFormat::Raw => report.unchecked.push(record.name.clone()),
        }
    }
    report.duration_ms = millis_since(started);
    Ok(report)
}

/// Text from a server (a validator's or a restore's message) made safe to
/// show: control characters other than newlines and tabs escaped
/// (`\u{1b}`), at most 2,000 characters.
fn plain(text: &str) -> String {
    const LIMIT: usize = 2000;
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == LIMIT {
            out.push('…');
            break;
        }
        if c.is_control() && c != '\n' && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// GNU tar's options for a hostile archive. By default (no `-P`) tar
/// strips a member name's leading `/`, refuses one with `..`, and puts a
/// symlink whose target is absolute or climbs is only put in place at the
/// end so no member is written through it, owners, permissions from the
/// archive (setuid, setgid), ACLs, SELinux contexts and extended
/// attributes (file capabilities) are not kept, and a directory's
/// permissions are applied after its contents are written.
const TAR_OPTIONS: &[&str] = &[
    "--no-same-owner",
    "--no-same-permissions",
    "--no-acls",
    "--no-selinux",
    "--no-xattrs",
    "--delay-directory-restore",
    "--no-overwrite-dir",
    "--force-local",
];

/// Unpacks the tar artifact `record` into the directory `into` with the
/// system's `tar` and [`TAR_OPTIONS`], in an environment of `PATH` and
/// `LANG=C` only. `Ok(Err(why))` when tar refused it; `Err` when tar could
/// not run or the artifact could not be read before tar said anything.
pub(crate) fn unpack_tar(
    source: &dyn ArtifactSource,
    record: &ArtifactRecord,
    into: &Path,
) -> Result<std::result::Result<(), String>> {
    let mut tar = kastell_core::env::allowlisted_command("tar");
    tar.args(["-x", "-f", "-"])
        .args(TAR_OPTIONS)
        .arg("-C")
        .arg(into)
        .current_dir(into);
    let mut child = tar
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io("running tar", e))?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| Error::unexpected("tar has no stdin"))?;
    let fed = feed(&mut source.open(&record.name)?, &mut [&mut stdin]);
    drop(stdin);
    let out = child
        .wait_with_output()
        .map_err(|e| Error::io("waiting for tar", e))?;
    let told = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    Ok(match (out.status.success(), fed) {
        (true, Ok(_)) => Ok(()),
        (_, Err(e)) if told.is_empty() => Err(format!(
            "reading {}: {e}",
            crate::state::store::display_safe(&record.name)
        )),
        _ => Err(told),
    })
}

/// Copies `reader` into every writer in `writers`, chunk by chunk, so one
/// read of an artifact feeds a restore and a check at once.
fn feed(reader: &mut dyn Read, writers: &mut [&mut dyn Write]) -> io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        for writer in writers.iter_mut() {
            writer.write_all(&buf[..n])?;
        }
        total += n as u64;
    }
    for writer in writers.iter_mut() {
        writer.flush()?;
    }
    Ok(total)
}

fn millis_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}
