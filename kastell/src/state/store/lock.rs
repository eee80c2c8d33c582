//! The `servers.json.lock/` directory lock, compatible with the original.
//!
//! Taking the lock is `mkdir`; inside, `owner.pid` holds
//! `pid@hostname@epochms`. A lock is stale when its owner is on this host
//! and no longer running, when its age exceeds [`LockOptions::stale_after`]
//! and its owner's liveness cannot be checked (another host, unreadable
//! owner file), or when it exceeds [`LockOptions::hard_ceiling`] even with
//! a live owner. Stale locks are broken by renaming them aside, so two
//! processes breaking the same stale lock cannot both win.

use std::fs::{DirBuilder, OpenOptions};
use std::io::{ErrorKind as IoKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kastell_core::{Error, Result};
use rustix::io::Errno;
use rustix::process::{Pid, test_kill_process};

/// The file inside the lock directory that names the owner.
pub const OWNER_FILE: &str = "owner.pid";

/// How long to wait for a lock and when to consider one stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockOptions {
    /// Give up after waiting this long (default 10 s).
    pub wait: Duration,
    /// A lock whose owner's liveness is unknown is stale after this
    /// (default 30 s).
    pub stale_after: Duration,
    /// A lock is stale after this even when its owner is alive (default
    /// 60 s): no store operation legitimately takes that long.
    pub hard_ceiling: Duration,
}

impl Default for LockOptions {
    fn default() -> Self {
        Self {
            wait: Duration::from_secs(10),
            stale_after: Duration::from_secs(30),
            hard_ceiling: Duration::from_secs(60),
        }
    }
}

/// Who holds a lock, as written in `owner.pid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockOwner {
    /// Process id.
    pub pid: i32,
    /// Host name (`uname -n`).
    pub host: String,
    /// When the lock was taken, in milliseconds since the Unix epoch.
    pub since_ms: u64,
}

impl LockOwner {
    /// This process, now.
    pub fn current() -> Self {
        Self {
            pid: i32::try_from(std::process::id()).unwrap_or(i32::MAX),
            host: hostname(),
            since_ms: now_ms(),
        }
    }

    /// Parses `pid@hostname@epochms`; `None` when malformed.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let (pid, rest) = text.split_once('@')?;
        let (host, since) = rest.rsplit_once('@')?;
        Some(Self {
            pid: pid.parse().ok()?,
            host: host.to_owned(),
            since_ms: since.parse().ok()?,
        })
    }

    /// The `owner.pid` content.
    pub fn render(&self) -> String {
        format!("{}@{}@{}", self.pid, self.host, self.since_ms)
    }
}

/// A held lock; released on [`StoreLock::release`] or when dropped.
#[derive(Debug)]
pub struct StoreLock {
    dir: PathBuf,
    owner: String,
    released: bool,
}

impl StoreLock {
    /// Takes the lock directory `dir`, breaking it if stale and otherwise
    /// waiting with backoff for up to `opts.wait`. Refuses with a retryable
    /// `InvalidState` error naming the holder (and how to clear a stale
    /// lock) when the wait runs out, and with an I/O error when the lock
    /// cannot be created at all (for example a read-only directory).
    pub fn acquire(dir: &Path, opts: &LockOptions) -> Result<Self> {
        let start = Instant::now();
        let mut delay = Duration::from_millis(10);
        loop {
            if let Some(lock) = Self::try_claim(dir)? {
                return Ok(lock);
            }
            let seen = read_owner_text(dir);
            let holder = match assess(dir, seen.as_deref(), opts) {
                Assessment::Gone => "an owner that just released it".to_owned(),
                Assessment::Stale(reason) => {
                    tracing::warn!("breaking stale lock {}: {reason}", dir.display());
                    break_lock(dir, seen.as_deref());
                    reason
                }
                Assessment::Held(holder) => {
                    let waited = start.elapsed();
                    if waited < opts.wait {
                        std::thread::sleep(jitter(delay).min(opts.wait - waited));
                        delay = (delay * 2).min(Duration::from_millis(200));
                    }
                    holder
                }
            };
            // Every path is bounded by the deadline, even one that keeps
            // finding a lock it cannot break.
            let waited = start.elapsed();
            if waited >= opts.wait {
                return Err(busy(dir, &holder, waited));
            }
        }
    }

    /// Takes `dir` if nobody holds it (`None` when someone does). The lock
    /// never appears without its owner file: the owner is written into a
    /// private `<dir>.claim-<pid>-<nanos>` directory first, which is then
    /// renamed to `dir` without replacing anything (`RENAME_NOREPLACE`).
    /// A process killed between a bare `mkdir` and writing its owner used
    /// to leave an ownerless lock that blocked every writer until it was
    /// 30 s old. On a filesystem without `RENAME_NOREPLACE` it falls back
    /// to `mkdir` and writing the owner, as the original tool does. Claim
    /// directories of processes that died half-way are removed.
    fn try_claim(dir: &Path) -> Result<Option<Self>> {
        sweep_abandoned_claims(dir);
        let staged = claim_path(dir);
        DirBuilder::new()
            .mode(0o700)
            .create(&staged)
            .map_err(|e| Error::io(format!("creating lock {}", dir.display()), e))?;
        let owner = LockOwner::current().render();
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(staged.join(OWNER_FILE))
            .and_then(|mut f| f.write_all(owner.as_bytes()));
        if let Err(e) = written {
            let _ = std::fs::remove_dir_all(&staged);
            return Err(Error::io(
                format!("writing {}/{OWNER_FILE}", staged.display()),
                e,
            ));
        }
        let cwd = rustix::fs::CWD;
        let renamed =
            rustix::fs::renameat_with(cwd, &staged, cwd, dir, rustix::fs::RenameFlags::NOREPLACE);
        match renamed {
            Ok(()) => Ok(Some(Self {
                dir: dir.to_owned(),
                owner,
                released: false,
            })),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&staged);
                match e {
                    Errno::EXIST | Errno::NOTEMPTY => Ok(None),
                    Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP => {
                        match DirBuilder::new().mode(0o700).create(dir) {
                            Ok(()) => Self::claim(dir).map(Some),
                            Err(e) if e.kind() == IoKind::AlreadyExists => Ok(None),
                            Err(e) => Err(Error::io(format!("creating lock {}", dir.display()), e)),
                        }
                    }
                    e => Err(Error::io(
                        format!("creating lock {}", dir.display()),
                        std::io::Error::from(e),
                    )),
                }
            }
        }
    }

    /// Writes the owner into the freshly made lock directory `dir` (the
    /// `mkdir` fallback of [`StoreLock::try_claim`]).
    fn claim(dir: &Path) -> Result<Self> {
        let owner = LockOwner::current().render();
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dir.join(OWNER_FILE))
            .and_then(|mut f| f.write_all(owner.as_bytes()));
        if let Err(e) = written {
            let _ = std::fs::remove_dir_all(dir);
            return Err(Error::io(
                format!("writing {}/{OWNER_FILE}", dir.display()),
                e,
            ));
        }
        Ok(Self {
            dir: dir.to_owned(),
            owner,
            released: false,
        })
    }

    /// Releases the lock. If another process has taken it over (because
    /// this one held it past the hard ceiling), leaves it alone and says
    /// so. Refuses only on an I/O failure while removing it.
    pub fn release(mut self) -> Result<()> {
        self.released = true;
        release_dir(&self.dir, &self.owner)
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        if !self.released {
            if let Err(e) = release_dir(&self.dir, &self.owner) {
                tracing::warn!("could not release {}: {e}", self.dir.display());
            }
        }
    }
}

/// Removes the lock `dir` if `owner` still holds it. The lock goes in one
/// step, renamed aside to a claim name before it is deleted: removing its
/// owner file and then the directory left, when the process was killed
/// between the two, an ownerless lock that blocked every writer until it
/// was 30 s old. A renamed-aside lock a killed process leaves is swept
/// like an abandoned claim.
fn release_dir(dir: &Path, owner: &str) -> Result<()> {
    match read_owner_text(dir) {
        Some(text) if text.trim() == owner => {
            let aside = claim_path(dir);
            std::fs::rename(dir, &aside)
                .and_then(|()| std::fs::remove_dir_all(&aside))
                .map_err(|e| Error::io(format!("removing lock {}", dir.display()), e))
        }
        _ => {
            tracing::warn!(
                "lock {} was taken over by another process; leaving it",
                dir.display()
            );
            Ok(())
        }
    }
}

enum Assessment {
    /// The lock vanished between mkdir and inspection: try again at once.
    Gone,
    Stale(String),
    Held(String),
}

/// Breaks the lock directory `dir` when it is stale (its owner on this
/// host is gone, or it is older than `opts` allows), as the next writer
/// would (`kastell doctor --fix`). Returns why it was stale when it is
/// gone now; `None` when there is no lock, it is held, or it could not be
/// removed.
pub fn clear_stale(dir: &Path, opts: &LockOptions) -> Option<String> {
    if !dir.is_dir() {
        return None;
    }
    let seen = read_owner_text(dir);
    match assess(dir, seen.as_deref(), opts) {
        Assessment::Stale(reason) => {
            break_lock(dir, seen.as_deref());
            (!dir.exists()).then_some(reason)
        }
        Assessment::Gone | Assessment::Held(_) => None,
    }
}

fn assess(dir: &Path, owner_text: Option<&str>, opts: &LockOptions) -> Assessment {
    let now = now_ms();
    let owner = owner_text.and_then(LockOwner::parse);
    let since = match &owner {
        Some(o) => o.since_ms,
        None => match dir_mtime_ms(dir) {
            Some(ms) => ms,
            None => return Assessment::Gone,
        },
    };
    let age = Duration::from_millis(now.saturating_sub(since));
    let describe = |owner: &Option<LockOwner>| match owner {
        Some(o) => format!(
            "pid {} on host {}, held for {}s",
            o.pid,
            o.host,
            age.as_secs()
        ),
        None => format!("unknown owner, held for {}s", age.as_secs()),
    };
    if age > opts.hard_ceiling {
        return Assessment::Stale(format!(
            "older than the {}s ceiling ({})",
            opts.hard_ceiling.as_secs(),
            describe(&owner)
        ));
    }
    let liveness = match &owner {
        Some(o) if o.host == hostname() => pid_alive(o.pid),
        _ => None,
    };
    match liveness {
        Some(false) => Assessment::Stale(format!("owner is not running ({})", describe(&owner))),
        Some(true) => Assessment::Held(describe(&owner)),
        None if age > opts.stale_after => Assessment::Stale(format!(
            "older than {}s and owner liveness unknown ({})",
            opts.stale_after.as_secs(),
            describe(&owner)
        )),
        None => Assessment::Held(describe(&owner)),
    }
}

/// Moves a stale lock aside and deletes it. If the directory moved turns
/// out to belong to a newer owner than the one judged stale (a race with
/// another breaker), it is put back.
fn break_lock(dir: &Path, judged: Option<&str>) {
    let aside = PathBuf::from(format!(
        "{}.stale-{}-{}",
        dir.display(),
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    ));
    if std::fs::rename(dir, &aside).is_err() {
        // Someone else broke or released it first.
        return;
    }
    if read_owner_text(&aside).as_deref() != judged {
        if std::fs::rename(&aside, dir).is_err() {
            tracing::warn!(
                "a lock taken while breaking a stale one could not be restored: {}",
                aside.display()
            );
        }
        return;
    }
    if let Err(e) = std::fs::remove_dir_all(&aside) {
        tracing::warn!("could not remove stale lock {}: {e}", aside.display());
    }
}

fn busy(dir: &Path, holder: &str, waited: Duration) -> Error {
    Error::invalid_state(format!(
        "servers.json is locked by another kastell process ({holder}); gave up after {:.1}s",
        waited.as_secs_f64()
    ))
    .set_retryable(true)
    .with_hint(format!(
        "Wait for the other kastell command to finish and retry. If no kastell process is running, the lock is stale: remove it with `rm -r '{}'`",
        dir.display()
    ))
}

/// Where [`StoreLock::try_claim`] prepares the lock `dir` of this process.
fn claim_path(dir: &Path) -> PathBuf {
    PathBuf::from(format!(
        "{}.claim-{}-{}",
        dir.display(),
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    ))
}

/// Removes the claim directories next to `dir` whose process is no longer
/// running (killed between preparing its claim and renaming it).
fn sweep_abandoned_claims(dir: &Path) {
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return;
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let prefix = format!("{}.claim-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = file_name.strip_prefix(&prefix) else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<i32>().ok());
        if pid.and_then(pid_alive) == Some(false) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn read_owner_text(dir: &Path) -> Option<String> {
    let bytes = super::read_regular(&dir.join(OWNER_FILE)).ok()??;
    String::from_utf8(bytes).ok()
}

fn dir_mtime_ms(dir: &Path) -> Option<u64> {
    let modified = std::fs::metadata(dir).ok()?.modified().ok()?;
    let ms = modified.duration_since(UNIX_EPOCH).ok()?.as_millis();
    u64::try_from(ms).ok()
}

/// Whether `pid` is running: `Some(true)` when it is (or exists but is not
/// ours to signal), `Some(false)` when no such process exists, `None` when
/// that cannot be told.
fn pid_alive(pid: i32) -> Option<bool> {
    let pid = Pid::from_raw(pid)?;
    match test_kill_process(pid) {
        Ok(()) => Some(true),
        Err(Errno::PERM) => Some(true),
        Err(Errno::SRCH) => Some(false),
        Err(_) => None,
    }
}

/// This host's name, as the original records it.
pub fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

fn jitter(delay: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let spread = u32::try_from(delay.as_millis() / 2 + 1).unwrap_or(1);
    delay + Duration::from_millis(u64::from(nanos % spread))
}

#[cfg(test)]
#[path = "lock_tests.rs"]
mod tests;
