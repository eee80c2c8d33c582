//! Where kastell keeps its local state.
//!
//! `KASTELL_DIR` when set (and not empty), else `~/.kastell`. The directory
//! is created with mode 0700, and tightened to 0700 if it exists with group
//! or other permissions. It holds secrets (tokens in the environment only,
//! but pinned keys, backups, the MCP token), so a directory another user
//! owns, or a shared one (world-writable or sticky, like `/tmp`), is
//! refused, and permissions are never changed through a symbolic link.

use std::fs::DirBuilder;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use kastell_core::{Error, ErrorKind, Result};

use crate::env::Env;

/// The environment variable that overrides the state directory.
pub(crate) const KASTELL_DIR_VAR: &str = "KASTELL_DIR";

/// The state directory from the process environment, created (0700) if
/// missing. Refuses when neither `KASTELL_DIR` nor `HOME` is set, or when the
/// directory cannot be created.
pub(crate) fn kastell_dir() -> Result<PathBuf> {
    kastell_dir_in(&Env::process())
}

/// The state directory according to `env`, created (0700) if missing.
/// Refuses as [`kastell_dir`] does.
pub(crate) fn kastell_dir_in(env: &Env) -> Result<PathBuf> {
    let dir = locate(env)?;
    ensure_private_dir(&dir)?;
    Ok(dir)
}

/// The state directory according to `env`, without creating it. Refuses
/// when neither `KASTELL_DIR` nor `HOME` is set.
pub(crate) fn locate(env: &Env) -> Result<PathBuf> {
    let raw = match env.get_nonempty(KASTELL_DIR_VAR) {
        Some(dir) => PathBuf::from(dir),
        None => match env.get_nonempty("HOME") {
            Some(home) => Path::new(&home).join(".kastell"),
            None => {
                return Err(Error::config_invalid(
                    "Cannot locate the kastell directory: neither KASTELL_DIR nor HOME is set",
                )
                .with_hint("Set KASTELL_DIR to the directory kastell should keep its state in"));
            }
        },
    };
    std::path::absolute(&raw).map_err(|e| Error::io(format!("resolving {}", raw.display()), e))
}

/// Creates `dir` (and its parents) with mode 0700 if it is missing, and
/// removes group/other permissions if it exists with them. Refuses when
/// `dir` exists but is not a directory, belongs to another user, is shared
/// (world-writable or sticky: `KASTELL_DIR=/tmp` would otherwise be locked
/// to everyone else), or is a symbolic link to a directory whose
/// permissions would need changing (kastell never changes them through a
/// link).
pub(crate) fn ensure_private_dir(dir: &Path) -> Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let link = std::fs::symlink_metadata(dir)
        .map_err(|e| Error::io(format!("inspecting {}", dir.display()), e))?
        .file_type()
        .is_symlink();
    let meta = std::fs::metadata(dir)
        .map_err(|e| Error::io(format!("inspecting {}", dir.display()), e))?;
    let refuse = |why: String, hint: &str| {
        Err(Error::new(
            ErrorKind::ConfigInvalid,
            format!("{}: {why}", dir.display()),
        )
        .with_hint(hint.to_owned()))
    };
    if !meta.is_dir() {
        return refuse(
            "exists but is not a directory".into(),
            "Point KASTELL_DIR at a directory",
        );
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return refuse(
            format!(
                "belongs to user {} (kastell runs as {me}); it keeps keys and backups there",
                meta.uid()
            ),
            "Point KASTELL_DIR at a directory of your own (the default is ~/.kastell)",
        );
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o1002 != 0 {
        return refuse(
            format!("is a shared directory (mode {mode:o}); kastell will not take it over"),
            "Point KASTELL_DIR at a directory of its own, e.g. ~/.kastell",
        );
    }
    if mode & 0o077 != 0 {
        if link {
            return refuse(
                format!("is a symbolic link to a directory others can read (mode {mode:o})"),
                "Run `chmod 700` on the link's target yourself, or point KASTELL_DIR at the target",
            );
        }
        tracing::warn!(
            "tightening permissions of {} from {:o} to 700",
            dir.display(),
            mode
        );
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io(format!("setting permissions of {}", dir.display()), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kastell_dir_prefers_the_variable_and_creates_0700() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("state/nested");
        let env = Env::from_pairs([
            ("KASTELL_DIR", target.to_str().unwrap()),
            ("HOME", "/nonexistent"),
        ]);
        let dir = kastell_dir_in(&env).unwrap();
        assert_eq!(dir, target);
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn falls_back_to_home_and_ignores_empty_variable() {
        let env = Env::from_pairs([("KASTELL_DIR", "  "), ("HOME", "/home/op")]);
        assert_eq!(locate(&env).unwrap(), PathBuf::from("/home/op/.kastell"));
    }

    #[test]
    fn refuses_without_home_or_variable() {
        let err = locate(&Env::from_pairs::<&str, &str>([])).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConfigInvalid);
        assert!(err.hint().unwrap().contains("KASTELL_DIR"));
    }

    #[test]
    fn tightens_loose_permissions_and_refuses_files() {
        let tmp = tempfile::tempdir().unwrap();
        let loose = tmp.path().join("loose");
        std::fs::create_dir(&loose).unwrap();
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&loose).unwrap();
        let mode = std::fs::metadata(&loose).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);

        let file = tmp.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(ensure_private_dir(&file).is_err());
    }

    #[test]
    fn shared_foreign_and_linked_loose_directories_are_refused_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;

        // Like /tmp: world-writable and sticky.
        let shared = tmp.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let err = ensure_private_dir(&shared).unwrap_err();
        assert!(err.message().contains("shared directory"), "{err}");
        assert_eq!(mode(&shared), 0o1777, "left as it was");

        // A link to a readable directory: refused, the target untouched; a
        // link to a private one is fine.
        let target = tmp.path().join("target");
        std::fs::create_dir(&target).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = ensure_private_dir(&link).unwrap_err();
        assert!(err.message().contains("symbolic link"), "{err}");
        assert!(err.hint().unwrap().contains("chmod 700"));
        assert_eq!(mode(&target), 0o755);
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o700)).unwrap();
        ensure_private_dir(&link).unwrap();

        // Another user's directory (only root can make one here).
        if rustix::process::geteuid().is_root() {
            let foreign = tmp.path().join("foreign");
            std::fs::create_dir(&foreign).unwrap();
            std::fs::set_permissions(&foreign, std::fs::Permissions::from_mode(0o755)).unwrap();
            rustix::fs::chown(&foreign, Some(rustix::process::Uid::from_raw(65534)), None).unwrap();
            let err = ensure_private_dir(&foreign).unwrap_err();
            assert!(err.message().contains("belongs to user 65534"), "{err}");
            assert_eq!(mode(&foreign), 0o755);
        }
    }
}
