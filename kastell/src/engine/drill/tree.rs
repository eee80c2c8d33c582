//! The unpacked tree of a configuration archive, as hostile input: paths
//! are resolved the way a validator inside the sandbox sees them (the
//! archive's `etc/nginx` mounted at `/etc/nginx`), component by component,
//! without ever following a symlink out of the tree; what tar left that
//! no configuration needs (device files, FIFOs, sockets, setuid bits) is
//! removed before anything reads it.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// How many symlinks one path may pass through (as the kernel allows).
const MAX_HOPS: usize = 40;

/// A directory of the tree as the sandbox shows it: `host` (inside the
/// unpacked tree) mounted at `mounted_at` (`/etc/nginx`).
#[derive(Debug, Clone)]
pub(super) struct View {
    /// Where the validator sees it.
    pub mounted_at: PathBuf,
    /// Where it is on this machine.
    pub host: PathBuf,
}

/// The real directory `relative` (`etc/nginx`) under `root`: `Ok(None)`
/// when the archive holds none, `Err(why)` when a component of it is a
/// symlink or not a directory (it would lead out of the tree).
pub(super) fn real_dir(root: &Path, relative: &str) -> Result<Option<PathBuf>, String> {
    let mut path = root.to_path_buf();
    for part in relative.split('/') {
        path.push(part);
        match std::fs::symlink_metadata(&path) {
            Err(_) => return Ok(None),
            Ok(m) if m.file_type().is_symlink() => {
                return Err(format!(
                    "the archive's {relative} passes through a symlink, which is not followed"
                ));
            }
            Ok(m) if !m.is_dir() => return Ok(None),
            Ok(_) => {}
        }
    }
    Ok(Some(path))
}

impl View {
    /// Resolves the absolute sandbox path `path` to the file on this
    /// machine: `Ok(None)` when it does not exist inside the view,
    /// `Err(why)` when it, or a symlink on the way, leads outside the view
    /// (an absolute path elsewhere, a `..` above it, a symlink out of it).
    pub(super) fn resolve(&self, path: &Path) -> Result<Option<PathBuf>, String> {
        let mount: Vec<OsString> = normal_parts(&self.mounted_at);
        let mut queue: VecDeque<Part> = parts(path);
        let mut stack: Vec<OsString> = Vec::new();
        let mut hops = 0;
        let outside = |what: String| {
            format!(
                "{what} is outside the archive's {} (it would name a file of this machine)",
                self.mounted_at.display()
            )
        };
        while let Some(part) = queue.pop_front() {
            let name = match part {
                Part::Parent => {
                    if stack.len() <= mount.len() {
                        return Err(outside(format!("{} (through ..)", path.display())));
                    }
                    stack.pop();
                    continue;
                }
                Part::Name(name) => name,
            };
            stack.push(name);
            let depth = stack.len();
            if depth <= mount.len() {
                if stack[depth - 1] != mount[depth - 1] {
                    return Err(outside(path.display().to_string()));
                }
                continue;
            }
            let host = self.host_path(&stack[mount.len()..]);
            let Ok(meta) = std::fs::symlink_metadata(&host) else {
                return Ok(None);
            };
            if !meta.file_type().is_symlink() {
                continue;
            }
            hops += 1;
            if hops > MAX_HOPS {
                return Err(format!("{} loops through symlinks", path.display()));
            }
            let target =
                std::fs::read_link(&host).map_err(|e| format!("{}: {e}", path.display()))?;
            let link = shown(&stack);
            stack.pop();
            let leaves = if target.is_absolute() {
                stack.clear();
                !target.starts_with(&self.mounted_at)
            } else {
                // Each `..` of a relative target climbs from the link's
                // directory; the view's root is as high as it may go.
                let ups = target
                    .components()
                    .take_while(|c| matches!(c, Component::ParentDir | Component::CurDir))
                    .filter(|c| matches!(c, Component::ParentDir))
                    .count();
                stack.len().saturating_sub(ups) < mount.len()
            };
            if leaves {
                return Err(format!(
                    "the symlink {link} points outside the archive ({}), which is not followed",
                    target.display()
                ));
            }
            for part in parts(&target).into_iter().rev() {
                queue.push_front(part);
            }
        }
        if stack.len() < mount.len() {
            return Err(outside(path.display().to_string()));
        }
        Ok(Some(self.host_path(&stack[mount.len()..])))
    }

    fn host_path(&self, parts: &[OsString]) -> PathBuf {
        let mut host = self.host.clone();
        host.extend(parts);
        host
    }

    /// The files an include pattern names, as `(sandbox path, file here)`:
    /// `pattern` relative to `base` (a sandbox directory) unless absolute;
    /// a wildcard (`*`, `?`, `[...]`) only in its last component. `Err(why)`
    /// when the pattern or a match leads outside the view.
    pub(super) fn expand(
        &self,
        base: &Path,
        pattern: &str,
    ) -> Result<Vec<(PathBuf, PathBuf)>, String> {
        let full = if pattern.starts_with('/') {
            PathBuf::from(pattern)
        } else {
            base.join(pattern)
        };
        let Some(last) = full.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            return Err(format!("{pattern} names no file"));
        };
        let parent = full.parent().unwrap_or(Path::new("/"));
        if has_wildcard(&parent.to_string_lossy()) {
            return Err(format!(
                "{pattern} has a wildcard in a directory name, which is not followed"
            ));
        }
        if !has_wildcard(&last) {
            return Ok(self
                .resolve(&full)?
                .filter(|host| host.is_file())
                .map(|host| vec![(full.clone(), host)])
                .unwrap_or_default());
        }
        let Some(dir) = self.resolve(parent)? else {
            return Ok(Vec::new());
        };
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .map_err(|e| format!("{}: {e}", parent.display()))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.') && glob_match(&last, n))
            .collect();
        names.sort();
        let mut found = Vec::new();
        for name in names {
            let path = parent.join(&name);
            if let Some(host) = self.resolve(&path)? {
                if host.is_file() {
                    found.push((path, host));
                }
            }
        }
        Ok(found)
    }
}

/// One step of a path: up, or into a name.
enum Part {
    Parent,
    Name(OsString),
}

/// The steps of `path` (the root and `.` are no steps).
fn parts(path: &Path) -> VecDeque<Part> {
    path.components()
        .filter_map(|c| match c {
            Component::ParentDir => Some(Part::Parent),
            Component::Normal(n) => Some(Part::Name(n.to_owned())),
            _ => None,
        })
        .collect()
}

/// A sandbox path from its names, for messages.
fn shown(stack: &[OsString]) -> String {
    let mut path = PathBuf::from("/");
    path.extend(stack);
    path.display().to_string()
}

fn normal_parts(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            _ => None,
        })
        .collect()
}

fn has_wildcard(text: &str) -> bool {
    text.contains(['*', '?', '['])
}

/// Whether `name` matches the shell pattern `pattern` (`*`, `?`, `[a-z]`,
/// `[!x]`), as glob(3) matches one path component.
pub(super) fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    matches_from(&p, &n)
}

fn matches_from(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => (0..=n.len()).any(|skip| matches_from(&p[1..], &n[skip..])),
        Some('?') => !n.is_empty() && matches_from(&p[1..], &n[1..]),
        Some('[') => {
            let Some(close) = p.iter().skip(2).position(|&c| c == ']').map(|i| i + 2) else {
                return n.first() == Some(&'[') && matches_from(&p[1..], &n[1..]);
            };
            let Some(&c) = n.first() else {
                return false;
            };
            let set = &p[1..close];
            let (negate, set) = match set.first() {
                Some('!') | Some('^') => (true, &set[1..]),
                _ => (false, set),
            };
            let mut hit = false;
            let mut i = 0;
            while i < set.len() {
                if i + 2 < set.len() && set[i + 1] == '-' {
                    hit |= set[i] <= c && c <= set[i + 2];
                    i += 3;
                } else {
                    hit |= set[i] == c;
                    i += 1;
                }
            }
            hit != negate && matches_from(&p[close + 1..], &n[1..])
        }
        Some(&c) => n.first() == Some(&c) && matches_from(&p[1..], &n[1..]),
    }
}

/// What [`tidy`] removed.
#[derive(Debug, Default)]
pub(super) struct Tidied {
    /// Device files, FIFOs and sockets removed (paths in the tree).
    pub removed: Vec<String>,
    /// Symlinks left in place, never followed (paths in the tree).
    pub symlinks: Vec<String>,
    /// Regular files and directories left.
    pub files: u64,
}

/// Walks the unpacked tree without following symlinks: removes device
/// files, FIFOs and sockets, clears setuid, setgid and sticky bits, and
/// makes every file readable and every directory searchable by its owner.
pub(super) fn tidy(root: &Path) -> std::io::Result<Tidied> {
    let mut tidied = Tidied::default();
    walk(root, &mut |path, meta| {
        let kind = meta.file_type();
        let shown = || {
            path.strip_prefix(root)
                .unwrap_or(path)
                .display()
                .to_string()
        };
        if kind.is_symlink() {
            tidied.symlinks.push(shown());
            return Ok(());
        }
        if !kind.is_file() && !kind.is_dir() {
            std::fs::remove_file(path)?;
            tidied.removed.push(
                path.strip_prefix(root)
                    .unwrap_or(path)
                    .display()
                    .to_string(),
            );
            return Ok(());
        }
        let mode = meta.permissions().mode() & 0o7777;
        let wanted = (mode & 0o777) | if kind.is_dir() { 0o700 } else { 0o600 };
        if wanted != mode {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(wanted))?;
        }
        if kind.is_file() {
            tidied.files += 1;
        }
        Ok(())
    })?;
    Ok(tidied)
}

/// Gives every entry of the tree (symlinks themselves, never their
/// targets) to `uid:gid`, so an unprivileged validator can read it.
pub(super) fn give_to(root: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(root, Some(uid), Some(gid))?;
    walk(root, &mut |path, _| {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))
    })
}

/// Calls `visit` on every entry under `dir` (not `dir` itself), children
/// before they are read as directories; never follows a symlink.
fn walk(
    dir: &Path,
    visit: &mut dyn FnMut(&Path, &std::fs::Metadata) -> std::io::Result<()>,
) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let meta = std::fs::symlink_metadata(&path)?;
        visit(&path, &meta)?;
        if meta.is_dir() {
            walk(&path, visit)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tidy_removes_fifos_and_setuid_bits_and_never_follows_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        let tool = root.join("etc/tool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o6755)).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(root.join("etc/fifo"))
            .status()
            .unwrap();
        assert!(made.success());
        let outside = tmp.path().join("outside");
        std::fs::write(&outside, "x").unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o4755)).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("etc/link")).unwrap();

        let tidied = tidy(&root).unwrap();
        assert_eq!(tidied.removed, ["etc/fifo"]);
        assert_eq!(tidied.symlinks, ["etc/link"]);
        assert_eq!(tidied.files, 1);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&tool), 0o755);
        assert_eq!(mode(&outside), 0o4755, "a symlink's target was changed");
    }

    #[test]
    fn patterns_match_like_glob() {
        assert!(glob_match("*.conf", "a.conf"));
        assert!(!glob_match("*.conf", "a.conf.bak"));
        assert!(glob_match("site-?", "site-1"));
        assert!(glob_match("[a-c]x", "bx"));
        assert!(!glob_match("[!a-c]x", "bx"));
        assert!(glob_match("*", "default"));
    }

    #[test]
    fn paths_resolve_inside_the_view_and_never_out_of_it() {
        let tmp = tempfile::tempdir().unwrap();
        let host = tmp.path().join("etc/nginx");
        std::fs::create_dir_all(host.join("sites-available")).unwrap();
        std::fs::create_dir_all(host.join("sites-enabled")).unwrap();
        std::fs::write(host.join("sites-available/default"), "server {}").unwrap();
        std::os::unix::fs::symlink(
            "/etc/nginx/sites-available/default",
            host.join("sites-enabled/default"),
        )
        .unwrap();
        std::os::unix::fs::symlink("../sites-available/default", host.join("sites-enabled/rel"))
            .unwrap();
        std::os::unix::fs::symlink("/etc/passwd", host.join("sites-enabled/out")).unwrap();
        std::os::unix::fs::symlink("../../../../..", host.join("up")).unwrap();
        let view = View {
            mounted_at: PathBuf::from("/etc/nginx"),
            host: host.clone(),
        };
        let target = host.join("sites-available/default");
        for inside in [
            "/etc/nginx/sites-enabled/default",
            "/etc/nginx/sites-enabled/rel",
        ] {
            assert_eq!(
                view.resolve(Path::new(inside)),
                Ok(Some(target.clone())),
                "{inside}"
            );
        }
        assert_eq!(view.resolve(Path::new("/etc/nginx/none")), Ok(None));
        for outside in [
            "/etc/passwd",
            "/etc/nginx/../passwd",
            "/etc/nginx/sites-enabled/out",
            "/etc/nginx/up/etc/passwd",
        ] {
            let why = view.resolve(Path::new(outside)).unwrap_err();
            assert!(why.contains("outside the archive"), "{outside}: {why}");
        }
        let found = view
            .expand(Path::new("/etc/nginx"), "sites-enabled/[dr]*")
            .unwrap();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            view.expand(Path::new("/etc/nginx"), "sites-enabled/*")
                .is_err()
        );
        assert!(view.expand(Path::new("/etc/nginx"), "*/default").is_err());
    }
}
