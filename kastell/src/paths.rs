//! Where kastell keeps its local state.
//!
//! `KASTELL_DIR` when set (and not empty), else `~/.kastell`. The directory
//! is created with mode 0700, and tightened to 0700 if it exists with group
//! or other permissions.

use std::fs::DirBuilder;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use kastell_core::{Error, ErrorKind, Result};

use crate::env::Env;

/// The environment variable that overrides the state directory.
pub const KASTELL_DIR_VAR: &str = "KASTELL_DIR";

/// The state directory from the process environment, created (0700) if
/// missing. Refuses when neither `KASTELL_DIR` nor `HOME` is set, or when the
/// directory cannot be created.
pub fn kastell_dir() -> Result<PathBuf> {
    kastell_dir_in(&Env::process())
}

/// The state directory according to `env`, created (0700) if missing.
/// Refuses as [`kastell_dir`] does.
pub fn kastell_dir_in(env: &Env) -> Result<PathBuf> {
    let dir = locate(env)?;
    ensure_private_dir(&dir)?;
    Ok(dir)
}

/// The state directory according to `env`, without creating it. Refuses
/// when neither `KASTELL_DIR` nor `HOME` is set.
pub fn locate(env: &Env) -> Result<PathBuf> {
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
/// `dir` exists but is not a directory.
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let meta = std::fs::metadata(dir)
        .map_err(|e| Error::io(format!("inspecting {}", dir.display()), e))?;
    if !meta.is_dir() {
        return Err(Error::new(
            ErrorKind::ConfigInvalid,
            format!("{} exists but is not a directory", dir.display()),
        )
        .with_hint("Point KASTELL_DIR at a directory"));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
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
}
