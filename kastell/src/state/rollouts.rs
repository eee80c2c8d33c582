//! The rollout journal: one file per fleet rollout,
//! `rollouts/<id>.json` in the kastell directory, holding its plan (which
//! server is in which stage), its failure budget and every server's status
//! with timestamps, rewritten atomically after every change so a crash
//! leaves the last state whole. `rollouts/<id>.lock` is held (`flock`) by
//! the one process driving the rollout, and names it, so a second one is
//! refused with who holds it; `rollouts/<id>.abort` asks the driver to
//! stop between servers.
//!
//! Files are opened without blocking and only when regular (a FIFO or a
//! link put in their place is refused), as every file of the directory is.

use std::fs::File;
use std::path::{Path, PathBuf};

use chrono::{SecondsFormat, Utc};
use kastell_core::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::state::lockfile::{Tried, try_lock};
use crate::state::store::{read_regular, write_atomic};

/// The directory of the journals, in the kastell directory.
pub(crate) const ROLLOUTS_DIR: &str = "rollouts";

/// The journal format this build writes and reads.
pub(crate) const VERSION: u32 = 1;

/// The longest rollout id accepted.
const MAX_ID_LEN: usize = 64;

/// Where one server of a rollout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServerState {
    /// Not started yet.
    Pending,
    /// Started and not known to have finished (after a crash: re-checked
    /// before anything else is done to it).
    InFlight,
    /// Finished successfully; never run again by this rollout.
    Done,
    /// Finished with a failure; counts against the budget.
    Failed,
    /// Not run on purpose (outside its maintenance window); no failure.
    Skipped,
    /// Never touched: the rollout stopped (budget, canary, abort) first.
    Untouched,
}

impl ServerState {
    /// The state as the journal and reports spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::InFlight => "in-flight",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Untouched => "untouched",
        }
    }

    /// Whether the server still has work to do in this rollout.
    pub fn open(self) -> bool {
        matches!(self, Self::Pending | Self::InFlight)
    }
}

/// Where the rollout as a whole is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RolloutState {
    /// Being driven, or interrupted while driven (the lock tells which).
    Running,
    /// Every server is done, failed or skipped and the budget held.
    Finished,
    /// Stopped by a canary failure or the failure budget; the rest is
    /// untouched.
    Stopped,
    /// Stopped at a safe point because it was asked to (Ctrl-C, a
    /// cancelled MCP task); `rollout resume` goes on.
    Cancelled,
    /// Aborted by `rollout abort`; the rest is untouched.
    Aborted,
}

impl RolloutState {
    /// The state as the journal and reports spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Finished => "finished",
            Self::Stopped => "stopped",
            Self::Cancelled => "cancelled",
            Self::Aborted => "aborted",
        }
    }

    /// Whether `rollout resume` can go on with it.
    pub fn resumable(self) -> bool {
        matches!(self, Self::Running | Self::Cancelled)
    }
}

/// One server in a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerEntry {
    /// Its name in the fleet.
    pub name: String,
    /// Its stage: 0 is the canary, then the batches from 1.
    pub stage: usize,
    /// Where it is.
    pub status: ServerState,
    /// When its work started (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// When its work ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Its boot id just before its work started, to tell after a crash
    /// whether it rebooted since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id_before: Option<String>,
    /// One line on how it ended (the error, why it was skipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// How a rollout was asked for, as typed (for reports).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// `1`, or `tag web`.
    pub canary: String,
    /// `25%`, `5`.
    pub batch: String,
    /// `1`, `10%`.
    pub max_failures: String,
    /// Seconds between two batches.
    pub pause_secs: u64,
    /// Servers worked on at once within a batch.
    pub concurrency: usize,
}

/// One rollout's journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Journal {
    /// The journal format.
    pub version: u32,
    /// Its id (`r-20261207-061530-1a2b`).
    pub id: String,
    /// The operation it runs on each server (`maintain`).
    pub operation: String,
    /// The operation's own arguments, as the operation serialises them.
    pub args: Value,
    /// Where it was started (`cli`, `mcp`).
    pub surface: String,
    /// When it was created and last written.
    pub created_at: String,
    /// When it was last written.
    pub updated_at: String,
    /// Where it is.
    pub state: RolloutState,
    /// As asked for.
    pub settings: Settings,
    /// How many failures stop it.
    pub budget: usize,
    /// How many stages (the canary and the batches).
    pub stages: usize,
    /// Every server, in plan order.
    pub servers: Vec<ServerEntry>,
    /// Why it stopped, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
}

/// Now, as the journal writes times.
pub(crate) fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A new rollout id: the time and a short mix of the process id and the
/// clock, so two started in one second differ.
pub(crate) fn new_id() -> String {
    let at = Utc::now();
    let nanos = at.timestamp_subsec_nanos();
    let mix = (nanos ^ std::process::id().rotate_left(16)) & 0xffff;
    format!("r-{}-{mix:04x}", at.format("%Y%m%d-%H%M%S"))
}

/// Refuses an id that is not one kastell could have made (it becomes a
/// file name): letters, digits and `-` only.
pub(crate) fn check_id(id: &str) -> Result<()> {
    let fine = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !id.starts_with('-');
    if fine {
        Ok(())
    } else {
        Err(Error::invalid_input(format!(
            "{:?} is not a rollout id",
            crate::state::store::display_safe(id)
        ))
        .with_hint(
            "Rollout ids look like r-20261207-061530-1a2b; list them with `kastell rollout status`",
        ))
    }
}

/// The journals' directory in `dir`, created 0700.
fn rollouts_dir(dir: &Path) -> Result<PathBuf> {
    let path = dir.join(ROLLOUTS_DIR);
    super::paths::ensure_private_dir(&path)?;
    Ok(path)
}

fn journal_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(ROLLOUTS_DIR).join(format!("{id}.json"))
}

fn abort_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(ROLLOUTS_DIR).join(format!("{id}.abort"))
}

impl Journal {
    /// Reads rollout `id`'s journal from the kastell directory `dir`.
    /// Refuses an id kastell could not have made, a missing journal
    /// (`NotFound`, saying how to list them), one that is not a regular
    /// file, and one that does not parse (naming where).
    pub fn load(dir: &Path, id: &str) -> Result<Self> {
        check_id(id)?;
        let path = journal_path(dir, id);
        let Some(bytes) = read_regular(&path)? else {
            return Err(Error::not_found(format!("No rollout {id}"))
                .with_hint("List the rollouts with `kastell rollout status`"));
        };
        let journal: Self = serde_json::from_slice(&bytes).map_err(|e| {
            Error::new(
                ErrorKind::ConfigInvalid,
                format!("{} does not parse: {e}", path.display()),
            )
            .with_hint("The journal was changed by hand; move it aside to forget the rollout")
        })?;
        if journal.version != VERSION || journal.id != id {
            return Err(Error::new(
                ErrorKind::ConfigInvalid,
                format!(
                    "{} is not a version {VERSION} journal of {id}",
                    path.display()
                ),
            )
            .with_hint("Move it aside to forget the rollout"));
        }
        Ok(journal)
    }

    /// Writes the journal atomically into `dir` (the old content or the
    /// new, never a mix), stamping `updated_at`.
    pub fn save(&mut self, dir: &Path) -> Result<()> {
        check_id(&self.id)?;
        rollouts_dir(dir)?;
        self.updated_at = now();
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::unexpected(format!("serialising rollout {}: {e}", self.id)))?;
        write_atomic(&journal_path(dir, &self.id), &bytes)
    }

    /// Every journal in `dir`, newest first. A journal that cannot be
    /// read is left out with a warning (one broken file does not hide the
    /// others).
    pub fn list(dir: &Path) -> Result<Vec<Self>> {
        let path = dir.join(ROLLOUTS_DIR);
        let entries = match std::fs::read_dir(&path) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(format!("listing {}", path.display()), e)),
        };
        let mut all = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_suffix(".json") else {
                continue;
            };
            if check_id(id).is_err() {
                continue;
            }
            match Self::load(dir, id) {
                Ok(journal) => all.push(journal),
                Err(e) => tracing::warn!("rollout {id} left out: {e}"),
            }
        }
        all.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(all)
    }

    /// How many servers are in `state`.
    pub fn count(&self, state: ServerState) -> usize {
        self.servers.iter().filter(|s| s.status == state).count()
    }

    /// The names of the servers in `state`.
    pub fn names(&self, state: ServerState) -> Vec<&str> {
        self.servers
            .iter()
            .filter(|s| s.status == state)
            .map(|s| s.name.as_str())
            .collect()
    }

    /// The entry of server `name`, to change it.
    pub fn entry_mut(&mut self, name: &str) -> Option<&mut ServerEntry> {
        self.servers.iter_mut().find(|s| s.name == name)
    }

    /// Ends the rollout in `state` for `reason`: every server not done,
    /// failed or skipped is marked untouched.
    pub fn close(&mut self, state: RolloutState, reason: Option<String>) {
        for server in &mut self.servers {
            if server.status.open() {
                server.status = ServerState::Untouched;
            }
        }
        self.state = state;
        self.stop_reason = reason;
    }
}

/// Asks the process driving rollout `id` to stop between servers (a file
/// it looks for); best effort, reported when it cannot be written.
pub(crate) fn request_abort(dir: &Path, id: &str) -> Result<()> {
    check_id(id)?;
    rollouts_dir(dir)?;
    write_atomic(&abort_path(dir, id), now().as_bytes())
}

/// Whether an abort of rollout `id` was asked for.
pub(crate) fn abort_requested(dir: &Path, id: &str) -> bool {
    abort_path(dir, id).exists()
}

/// Forgets an abort request once it was carried out.
pub(crate) fn clear_abort(dir: &Path, id: &str) {
    let _ = std::fs::remove_file(abort_path(dir, id));
}

/// The lock of the one process driving a rollout; released when dropped
/// (or when the process dies, as every `flock` is).
#[derive(Debug)]
pub struct RolloutLock {
    _file: File,
}

impl RolloutLock {
    /// Takes the lock of rollout `id` in `dir` for `activity` without
    /// waiting, writing who holds it. Refuses (`InvalidState`, naming the
    /// holder's process and since when) while another process, or this one,
    /// drives it; refuses a lock file that is not a regular file.
    pub fn try_acquire(dir: &Path, id: &str, activity: &str) -> Result<Self> {
        check_id(id)?;
        let path = rollouts_dir(dir)?.join(format!("{id}.lock"));
        match try_lock(&path, activity)? {
            Tried::Taken(file) => Ok(Self { _file: file }),
            Tried::Busy(holder) => {
                let holder = holder.unwrap_or_else(|| "another process".to_owned());
                Err(Error::invalid_state(format!(
                    "Rollout {id} is being driven by {holder}; two processes cannot drive one rollout"
                ))
                .never_applied()
                .with_hint(format!(
                    "Wait for it (kastell rollout status {id}), or stop it with `kastell rollout abort {id}`"
                )))
            }
        }
    }

    /// Who drives rollout `id` now, if a process does.
    pub fn holder(dir: &Path, id: &str) -> Option<String> {
        check_id(id).ok()?;
        let path = dir.join(ROLLOUTS_DIR).join(format!("{id}.lock"));
        match try_lock(&path, "rollout status") {
            Ok(Tried::Busy(holder)) => Some(holder.unwrap_or_else(|| "another process".to_owned())),
            Ok(Tried::Taken(_)) | Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal(id: &str) -> Journal {
        Journal {
            version: VERSION,
            id: id.to_owned(),
            operation: "maintain".into(),
            args: serde_json::json!({}),
            surface: "cli".into(),
            created_at: now(),
            updated_at: now(),
            state: RolloutState::Running,
            settings: Settings {
                canary: "1".into(),
                batch: "25%".into(),
                max_failures: "1".into(),
                pause_secs: 0,
                concurrency: 4,
            },
            budget: 1,
            stages: 2,
            servers: ["a", "b", "c"]
                .iter()
                .enumerate()
                .map(|(i, n)| ServerEntry {
                    name: (*n).to_owned(),
                    stage: usize::from(i > 0),
                    status: ServerState::Pending,
                    started_at: None,
                    finished_at: None,
                    boot_id_before: None,
                    detail: None,
                })
                .collect(),
            stop_reason: None,
        }
    }

    #[test]
    fn a_journal_round_trips_and_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let id = new_id();
        let mut j = journal(&id);
        j.entry_mut("b").unwrap().status = ServerState::InFlight;
        j.save(tmp.path()).unwrap();
        let back = Journal::load(tmp.path(), &id).unwrap();
        assert_eq!(back.servers, j.servers);
        assert_eq!(back.names(ServerState::InFlight), ["b"]);
        let mode = std::fs::metadata(journal_path(tmp.path(), &id))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(Journal::list(tmp.path()).unwrap().len(), 1);
    }

    #[test]
    fn closing_marks_open_servers_untouched_only() {
        let mut j = journal("r-1");
        j.servers[0].status = ServerState::Failed;
        j.servers[1].status = ServerState::InFlight;
        j.close(RolloutState::Aborted, Some("asked".into()));
        let states: Vec<_> = j.servers.iter().map(|s| s.status).collect();
        assert_eq!(
            states,
            [
                ServerState::Failed,
                ServerState::Untouched,
                ServerState::Untouched
            ]
        );
    }

    #[test]
    fn ids_that_could_leave_the_directory_are_refused() {
        for bad in ["", "../x", "a/b", "-rf", "r 1", &"x".repeat(65)] {
            assert_eq!(
                check_id(bad).unwrap_err().kind(),
                ErrorKind::InvalidInput,
                "{bad}"
            );
        }
        check_id(&new_id()).unwrap();
    }

    #[test]
    fn a_second_driver_is_refused_naming_the_first() {
        let tmp = tempfile::tempdir().unwrap();
        let first = RolloutLock::try_acquire(tmp.path(), "r-1", "maintain --all").unwrap();
        let err = RolloutLock::try_acquire(tmp.path(), "r-1", "rollout resume").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidState);
        let pid = std::process::id();
        assert!(
            err.message()
                .contains(&format!("maintain --all (pid {pid}) since")),
            "{err}"
        );
        assert_eq!(
            RolloutLock::holder(tmp.path(), "r-1")
                .as_deref()
                .map(|h| h.starts_with("maintain --all")),
            Some(true)
        );
        drop(first);
        assert_eq!(RolloutLock::holder(tmp.path(), "r-1"), None);
        RolloutLock::try_acquire(tmp.path(), "r-1", "rollout resume").unwrap();
    }

    #[test]
    fn a_fifo_in_place_of_a_journal_is_refused_without_blocking() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join(ROLLOUTS_DIR)).unwrap();
        let path = journal_path(tmp.path(), "r-1");
        let made = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(made.success());
        let err = Journal::load(tmp.path(), "r-1").unwrap_err();
        assert!(err.message().contains("FIFO"), "{err}");
    }
}
