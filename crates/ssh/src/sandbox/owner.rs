//! Who owns a sandbox's temporary directory, and the sweep of those whose
//! owner is gone.
//!
//! A sandbox directory (`kastell-sshd-*`, `kastell-hosts-*`, a sandbox's
//! store) is removed when its value is dropped. A process killed with
//! `SIGKILL`, or one that aborts, drops nothing: [`tempdir`] therefore
//! writes an owner file, [`OWNER_FILE`], naming the process (its pid and
//! its start time, so a reused pid is not mistaken for the owner), and
//! [`sweep`] removes the directories whose owner no longer runs.
//!
//! A directory without an owner file was left by an older kastell, or is
//! being created this instant: it is swept only once it is older than
//! [`UNMARKED_AGE`].
//!
//! Sandbox directories go in the system temporary directory (`$TMPDIR`,
//! else `/tmp`), except as root when the sandbox's login user
//! ([`super::SANDBOX_USER`]) could not reach into it: a private `TMPDIR`
//! (mode 0700, as `pam_tmpdir`, systemd units and many shells set it)
//! would lock that user out of its `authorized_keys`, shims and fake
//! roots, and every SSH login would be refused. Then they go in `/tmp` ([`base_dir`]), and a start refuses,
//! saying why, when that cannot be reached either.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use kastell_core::{Error, Result};

use super::process;

/// The file naming a sandbox directory's owner: `<pid> <start time>`.
pub const OWNER_FILE: &str = ".kastell-owner";

/// How old a sandbox directory without an owner file must be before it
/// is swept (a live sandbox of an older kastell has none either).
pub const UNMARKED_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// Where sandbox directories go when the system temporary directory is
/// out of the login user's reach (see the module notes).
pub const REACHABLE_TMP: &str = "/tmp";

/// Creates a temporary directory named `<prefix><random>` in [`base_dir`],
/// mode 0700, owned by this process ([`OWNER_FILE`]); it is removed when
/// the value is dropped. Refuses as [`base_dir`] does, and when the
/// directory cannot be created.
pub fn tempdir(prefix: &str) -> Result<tempfile::TempDir> {
    let base = base_dir()?;
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .permissions(fs::Permissions::from_mode(0o700))
        .tempdir_in(&base)
        .map_err(|e| {
            Error::io(
                format!("creating a {prefix}* directory in {}", base.display()),
                e,
            )
        })?;
    mark(dir.path())?;
    Ok(dir)
}

/// The directory sandbox directories are made in: the system temporary
/// directory (`$TMPDIR`, else `/tmp`), unless this process runs as root
/// and other users cannot search every directory on the way to it (the
/// sandbox's login user is another user then); in that case
/// [`REACHABLE_TMP`]. Refuses (`ConfigInvalid`, with what to do) when
/// that cannot be searched by other users either.
pub fn base_dir() -> Result<PathBuf> {
    let tmp = std::env::temp_dir();
    if !rustix::process::geteuid().is_root() {
        return Ok(tmp);
    }
    let Some(blocked) = unsearchable_step(&tmp) else {
        return Ok(tmp);
    };
    let fallback = PathBuf::from(REACHABLE_TMP);
    if let Some(also) = unsearchable_step(&fallback) {
        return Err(Error::config_invalid(format!(
            "the sandbox runs as root and logs its hosts in as {user}, which cannot reach the \
             temporary directory {tmp} ({blocked} is not searchable by other users), nor {fallback} \
             ({also} is not either)",
            user = super::SANDBOX_USER,
            tmp = tmp.display(),
            blocked = blocked.display(),
            fallback = fallback.display(),
            also = also.display(),
        ))
        .with_hint(
            "Point TMPDIR at a directory every user can search (mode 0711 or wider on \
             each directory on the way, like /tmp), or run the sandbox as an ordinary user",
        ));
    }
    tracing::info!(
        tmp = %tmp.display(),
        blocked = %blocked.display(),
        used = %fallback.display(),
        "the sandbox login user cannot reach TMPDIR; sandbox directories go to {REACHABLE_TMP}"
    );
    Ok(fallback)
}

/// The first directory on the way to `dir` (from `/`, `dir` included,
/// links resolved) that other users cannot search (no `o+x`), or `None`
/// when they can search them all. A path that cannot be inspected is
/// taken as searchable: creating the directory in it will say what is
/// wrong.
fn unsearchable_step(dir: &Path) -> Option<PathBuf> {
    let resolved = fs::canonicalize(dir).ok()?;
    resolved
        .ancestors()
        .filter(|step| fs::metadata(step).is_ok_and(|meta| meta.permissions().mode() & 0o001 == 0))
        .last()
        .map(Path::to_path_buf)
}

/// The directories [`sweep`] looks in: the system temporary directory and,
/// when sandbox directories go elsewhere ([`base_dir`]), that one too.
fn sweep_roots() -> Vec<PathBuf> {
    let mut roots = vec![std::env::temp_dir()];
    if let Ok(base) = base_dir() {
        if !roots.contains(&base) {
            roots.push(base);
        }
    }
    roots
}

/// Records this process as the owner of `dir` (mode 0600, whatever the
/// umask).
pub fn mark(dir: &Path) -> Result<()> {
    let me = std::process::id();
    let started = process::start_time(me).map_or_else(String::new, |t| format!(" {t}"));
    // Only its owner may change it: another user naming a dead process
    // here would have the next start sweep a live sandbox.
    super::files::write(&dir.join(OWNER_FILE), &format!("{me}{started}\n"), 0o600)
}

/// Whether the process that owns `dir` is gone (see the module notes for
/// a directory without an owner file).
pub fn is_stale(dir: &Path) -> bool {
    match fs::read_to_string(dir.join(OWNER_FILE)) {
        Ok(text) => owner_is_gone(&text),
        Err(_) => fs::symlink_metadata(dir)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age > UNMARKED_AGE),
    }
}

/// Whether the owner named by an owner file's `text` no longer runs. A
/// file that cannot be parsed names nobody: its directory is stale.
fn owner_is_gone(text: &str) -> bool {
    let mut words = text.split_whitespace();
    let Some(pid) = words.next().and_then(|w| w.parse::<u32>().ok()) else {
        return true;
    };
    let recorded_start = words.next().and_then(|w| w.parse::<u64>().ok());
    if process::has_ended(pid) {
        return true;
    }
    // Alive, but is it the owner or a later process given the same pid?
    match (recorded_start, process::start_time(pid)) {
        (Some(recorded), Some(now)) => recorded != now,
        _ => false,
    }
}

/// Removes every directory of this user in the system temporary directory
/// (and in [`base_dir`], when that is another one) whose name starts with
/// one of `prefixes` and whose owner is gone,
/// calling `before_removing` on each first (to stop what still runs from
/// it). Returns the directories removed. Directories of other users,
/// symbolic links and files are left alone; a directory that cannot be
/// removed is skipped with a warning.
pub fn sweep(prefixes: &[&str], mut before_removing: impl FnMut(&Path)) -> Vec<PathBuf> {
    let me = rustix::process::geteuid().as_raw();
    let mut removed = Vec::new();
    let entries = sweep_roots()
        .into_iter()
        .filter_map(|root| fs::read_dir(root).ok())
        .flatten();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !prefixes.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let path = entry.path();
        let ours = fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir() && m.uid() == me);
        if !ours || !is_stale(&path) {
            continue;
        }
        before_removing(&path);
        match fs::remove_dir_all(&path) {
            Ok(()) => removed.push(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(dir = %path.display(), error = %e, "stale sandbox directory not removed");
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_directory_of_this_process_is_not_stale() {
        let dir = tempdir("kastell-owner-test-").unwrap();
        assert!(!is_stale(dir.path()));
    }

    #[test]
    fn a_directory_whose_owner_exited_or_was_replaced_is_stale() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(owner_is_gone(&format!("{pid} 12345\n")));
        assert!(owner_is_gone("not a pid\n"));
        // This process's pid with another start time: a reused pid.
        let me = std::process::id();
        let started = process::start_time(me).unwrap();
        assert!(owner_is_gone(&format!("{me} {}\n", started + 1)));
        assert!(!owner_is_gone(&format!("{me} {started}\n")));
        assert!(!owner_is_gone(&format!("{me}\n")));
    }

    #[test]
    fn a_private_directory_on_the_way_is_the_step_others_cannot_search() {
        let outer = tempfile::tempdir().unwrap();
        fs::set_permissions(outer.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let private = outer.path().join("private");
        let inner = private.join("inner");
        fs::create_dir_all(&inner).unwrap();
        fs::set_permissions(&inner, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(&private, fs::Permissions::from_mode(0o700)).unwrap();
        let private = fs::canonicalize(&private).unwrap();
        assert_eq!(unsearchable_step(&inner), Some(private.clone()));
        assert_eq!(unsearchable_step(&private), Some(private.clone()));
        // Searchable (0711 is enough: the login user need not list it).
        fs::set_permissions(&private, fs::Permissions::from_mode(0o711)).unwrap();
        assert_eq!(unsearchable_step(&inner), None);
    }

    #[test]
    fn a_young_directory_without_owner_file_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_stale(dir.path()));
    }
}
