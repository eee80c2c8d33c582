//! Helpers for running the platform's remote commands.

use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};

use kastell_core::{Error, ErrorKind, RemoteCommand, Result};

use kastell_core::types::Privilege;

/// How the platform reaches privileges on the server.
#[derive(Debug, Clone)]
pub(crate) struct Elevation {
    sudo: bool,
    user: String,
}

impl Elevation {
    pub(crate) fn new(privilege: Privilege, user: &str) -> Self {
        Self {
            sudo: privilege.uses_sudo(user),
            user: user.to_owned(),
        }
    }

    /// `script` as is, or wrapped in `sudo -n sh -c '<script>'`.
    pub(crate) fn wrap(&self, script: RemoteCommand) -> Result<RemoteCommand> {
        if self.sudo {
            RemoteCommand::template("sudo -n sh -c {}", &[script.as_str()])
        } else {
            Ok(script)
        }
    }

    /// Turns sudo's refusals into [`ErrorKind::PermissionDenied`] with a
    /// hint; other errors get `fallback_hint` unless they carry one.
    pub(crate) fn explain(&self, err: Error, stderr: &str, fallback_hint: &str) -> Error {
        let refused = stderr.contains("sudo:")
            && (stderr.contains("password is required")
                || stderr.contains("terminal is required")
                || stderr.contains("not in the sudoers")
                || stderr.contains("not allowed to execute")
                || stderr.contains("command not found"));
        if self.sudo && refused {
            return Error::new(ErrorKind::PermissionDenied, err.message().to_owned())
                .with_provider(crate::ID)
                .with_hint(format!(
                    "{} logs in as {:?}, which needs passwordless sudo for this: connect as root, \
                     grant it `NOPASSWD` sudo, or set the platform option sudo=never when it \
                     already has the rights it needs",
                    crate::ID,
                    self.user
                ));
        }
        err.with_provider(crate::ID)
            .or_hint(fallback_hint.to_owned())
    }
}

/// A writer that collects what a streamed command prints, keeping at most
/// `limit` bytes (the first ones).
#[derive(Debug, Clone)]
pub(crate) struct Capture {
    buffer: Arc<Mutex<Vec<u8>>>,
    limit: usize,
}

impl Capture {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            buffer: Arc::new(Mutex::new(Vec::new())),
            limit,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        self.buffer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Everything captured, as text (lossy).
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.lock()).into_owned()
    }
}

impl Write for Capture {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let limit = self.limit;
        let mut buffer = self.lock();
        let room = limit.saturating_sub(buffer.len());
        buffer.extend_from_slice(&data[..data.len().min(room)]);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_quotes_the_whole_script() {
        let script = RemoteCommand::template("printf '%s' {}", &["/it's $(x)"]).unwrap();
        let plain = Elevation::new(Privilege::Auto, "root")
            .wrap(script.clone())
            .unwrap();
        assert_eq!(plain, script);
        let sudo = Elevation::new(Privilege::Auto, "deploy")
            .wrap(script)
            .unwrap();
        let inner = sudo.as_str().strip_prefix("sudo -n ").unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(inner)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), "/it's $(x)");
    }

    #[test]
    fn sudo_refusals_become_permission_denied() {
        let p = Elevation::new(Privilege::Sudo, "deploy");
        let err = p.explain(
            Error::new(ErrorKind::CommandFailed, "exit 1"),
            "sudo: a password is required",
            "other",
        );
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
        assert!(err.hint().unwrap().contains("sudo=never"));
        let err = p.explain(Error::new(ErrorKind::CommandFailed, "x"), "boom", "other");
        assert_eq!(err.kind(), ErrorKind::CommandFailed);
        assert_eq!(err.hint(), Some("other"));
    }

    #[test]
    fn capture_is_bounded() {
        let mut c = Capture::new(4);
        c.write_all(b"abcdef").unwrap();
        assert_eq!(c.text(), "abcd");
    }
}
