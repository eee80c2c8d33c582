//! Append-only repository logins: the server-side lines that make one, and
//! the canary test that proves a credential is one.
//!
//! The protection is the storage server's, never kastell's (an agent with
//! a shell can read kastell's files and run its own client):
//! - **SFTP** (OpenSSH): the agent's key gets a forced `sftp-server` that
//!   answers only the requests [`SFTP_ALLOWED_REQUESTS`] lists (no
//!   `remove`, `rmdir`, `mkdir`, `setstat`, `fsetstat`, `lsetstat`,
//!   `symlink`, `hardlink`, `posix-rename`, `copy-data`), with umask
//!   `0222` so every file it creates is read-only and cannot be opened
//!   for writing again. Plain SFTP `rename` is `link()` then `unlink()` in
//!   OpenSSH's server and never replaces an existing name.
//! - **A server backing itself up over SSH** (restic's `rclone:` backend,
//!   whose files stock restic writes with `fsetstat`, which the login above
//!   must refuse): the server's key gets a forced `rclone serve restic
//!   --stdio --append-only DIR` ([`rclone_authorized_keys_line`]), which
//!   refuses deletes (except of locks) and overwrites and serves only DIR.
//! - **S3**: the bucket's policy (a key that may `PutObject` but not
//!   `DeleteObject`) plus versioning or Object Lock, so an overwrite keeps
//!   the old version (the canary reads that from the version id the
//!   overwrite is answered with: [`Attempt::Kept`]).
//!
//! [`probe`] writes one small object outside restic's directories
//! ([`CANARY_NAME`] at the repository's root) once and reuses it, then
//! tries to overwrite and to delete it, and reports what the server did.

use kastell_core::{Error, ErrorKind, Result};
use serde::Serialize;

use crate::RepoLocation;
use crate::backend::{BackendCredentials, S3Backend, SftpBackend};

/// The canary object's name, at the repository's root (the SFTP
/// directory or the S3 prefix), outside restic's directories.
pub const CANARY_NAME: &str = "kastell-canary";

/// What the canary holds.
pub const CANARY_CONTENT: &[u8] =
    b"kastell doctor's append-only canary: it tries to delete and overwrite this object\n";

/// Where OpenSSH's SFTP server is on Debian and Ubuntu (package
/// `openssh-sftp-server`).
pub const SFTP_SERVER_PATH: &str = "/usr/lib/openssh/sftp-server";

/// The SFTP requests an append-only login answers (`sftp-server -p`):
/// reading, listing, creating new files, writing the files it opened,
/// syncing them and renaming a new file into a free name. Every other
/// request, including any a later OpenSSH adds, is refused with
/// "permission denied".
pub const SFTP_ALLOWED_REQUESTS: &str = "open,close,read,write,lstat,fstat,stat,opendir,readdir,\
realpath,readlink,rename,fsync,statvfs,fstatvfs,limits,expand-path,home-directory";

/// The umask of an append-only login: the files it creates are read-only.
pub const SFTP_UMASK: &str = "0222";

/// What the server did with one attempt on the canary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Attempt {
    /// The server refused it (permission denied).
    Refused,
    /// The server did it.
    Allowed,
    /// The server took the overwrite but kept the earlier version (S3
    /// bucket versioning answered with a version id): nothing was lost.
    Kept,
}

/// What [`probe`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryReport {
    /// The repository's location.
    pub location: String,
    /// The canary's path (SFTP) or key (S3).
    pub canary: String,
    /// Whether the server let the credential overwrite the canary.
    pub overwrite: Attempt,
    /// Whether the server let the credential delete the canary.
    pub delete: Attempt,
}

impl CanaryReport {
    /// Whether the server refused the delete and either refused the
    /// overwrite or kept what it replaced.
    pub fn is_append_only(&self) -> bool {
        self.overwrite != Attempt::Allowed && self.delete == Attempt::Refused
    }
}

/// Writes the canary at `location` with `credentials` unless it is there,
/// then tries to overwrite it and to delete it, and says what the server
/// did. At most one canary is left behind (none when the delete went
/// through; the next probe writes it again). Blocking; an S3 location
/// needs a tokio runtime, as its backend does. Fails (and proves nothing)
/// when the server cannot be reached or logged in to, when the credential
/// cannot even write the canary, or for a local directory, which has no
/// server to refuse anything (`Unsupported`).
pub fn probe(location: &RepoLocation, credentials: &BackendCredentials) -> Result<CanaryReport> {
    match location {
        RepoLocation::Local(path) => Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "{} is a local directory: no server stands between an agent and its files",
                path.display()
            ),
        )
        .with_hint("Use an SFTP or S3 repository with an append-only credential")),
        RepoLocation::S3 {
            endpoint,
            bucket,
            prefix,
        } => S3Backend::new(endpoint, bucket, prefix, credentials.s3.as_ref())?.probe_canary(),
        RepoLocation::Sftp {
            user,
            host,
            port,
            path,
        } => SftpBackend::new(user, host, *port, path, credentials.sftp.as_ref())?.probe_canary(),
    }
}

/// The `authorized_keys` line that makes `public_key` (the text of an
/// OpenSSH `.pub` file: type, base64 key, optional comment) an
/// append-only SFTP login. Refuses text that is not one public key line.
pub fn authorized_keys_line(public_key: &str) -> Result<String> {
    let (kind, key) = public_key_fields(public_key)?;
    Ok(format!(
        "restrict,command=\"{}\" {kind} {key} kastell-append-only",
        sftp_server_command(SFTP_SERVER_PATH)
    ))
}

/// The `authorized_keys` line that lets `public_key` (one OpenSSH public
/// key line) do nothing but append to the restic repository in `dir`:
/// `restrict` (no shell, forwarding or terminal) and the forced command
/// `rclone serve restic --stdio --append-only DIR`, which serves that one
/// directory over the login's standard input and output (restic's
/// `rclone:` backend) and answers a delete (except of a lock) or an
/// overwrite with 403. Whatever command the client asks for is ignored.
/// `comment` ends the line. Refuses text that is not one public key, a
/// directory that is not absolute or holds anything but letters, digits
/// and `/._-+,@` (it is read by the login's shell), or a `..` component,
/// and a comment with anything but those characters.
pub fn rclone_authorized_keys_line(public_key: &str, dir: &str, comment: &str) -> Result<String> {
    let (kind, key) = public_key_fields(public_key)?;
    let plain = |text: &str| {
        !text.is_empty()
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/._-+,@".contains(&b))
    };
    if !dir.starts_with('/') || !plain(dir) || dir.split('/').any(|part| part == "..") {
        return Err(Error::invalid_input(format!(
            "the repository directory {dir:?} cannot be put in a forced command: it must be \
             absolute, without `..`, and hold only letters, digits and /._-+,@"
        ))
        .with_hint("Give the repository a plain absolute directory, such as /srv/kastell/fleet"));
    }
    if !plain(comment) {
        return Err(Error::invalid_input(format!(
            "the key comment {comment:?} holds characters an authorized_keys line cannot carry"
        )));
    }
    Ok(format!(
        "restrict,command=\"{RCLONE_SERVE_COMMAND} {dir}\" {kind} {key} {comment}"
    ))
}

/// The forced command of an append-only restic login served by rclone,
/// before its directory.
pub const RCLONE_SERVE_COMMAND: &str = "rclone serve restic --stdio --append-only";

/// The type and base64 key of `public_key`, the text of an OpenSSH `.pub`
/// file. Refuses text that is not one public key line.
fn public_key_fields(public_key: &str) -> Result<(&str, &str)> {
    let mut lines = public_key.lines().map(str::trim).filter(|l| !l.is_empty());
    let (Some(line), None) = (lines.next(), lines.next()) else {
        return Err(not_a_public_key("expected exactly one line"));
    };
    let mut fields = line.split_ascii_whitespace();
    let (Some(kind), Some(key)) = (fields.next(), fields.next()) else {
        return Err(not_a_public_key("expected a key type and the key"));
    };
    let known = kind.starts_with("ssh-")
        || kind.starts_with("ecdsa-sha2-")
        || kind.starts_with("sk-ssh-")
        || kind.starts_with("sk-ecdsa-");
    let base64 = key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
    if !known || !base64 || key.len() < 32 {
        return Err(not_a_public_key(
            "the first word is not a key type or the second not a base64 key",
        ));
    }
    Ok((kind, key))
}

/// The `sftp-server` command line of an append-only login, with the
/// server binary `server` (or `internal-sftp`).
pub fn sftp_server_command(server: &str) -> String {
    format!("{server} -u {SFTP_UMASK} -p {SFTP_ALLOWED_REQUESTS}")
}

/// The `sshd_config` block that makes every login of the system user
/// `user` append-only (for a dedicated user; `Match` cannot tell one key
/// of a user from another).
pub fn sshd_config_block(user: &str) -> String {
    format!(
        "Match User {user}\n    ForceCommand {}\n    AllowTcpForwarding no\n    X11Forwarding no\n    PermitTTY no\n",
        sftp_server_command("internal-sftp")
    )
}

fn not_a_public_key(why: &str) -> Error {
    Error::invalid_input(format!("not an OpenSSH public key: {why}"))
        .with_hint("Give the agent key's .pub file (ssh-keygen -t ed25519 writes one)")
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ0vq2J7rX0m2oQY2b4o1b1Yb3i9mCkz0O3G8xqf5Y8E me@laptop\n";

    #[test]
    fn the_authorized_keys_line_forces_a_restricted_sftp_server() {
        let line = authorized_keys_line(KEY).unwrap();
        assert!(
            line.starts_with("restrict,command=\"/usr/lib/openssh/sftp-server -u 0222 -p open,")
        );
        assert!(line.ends_with("\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ0vq2J7rX0m2oQY2b4o1b1Yb3i9mCkz0O3G8xqf5Y8E kastell-append-only"));
        for refused in [
            "remove",
            "rmdir",
            "mkdir",
            "setstat",
            "symlink",
            "hardlink",
            "posix-rename",
            "copy-data",
        ] {
            assert!(
                !SFTP_ALLOWED_REQUESTS.split(',').any(|r| r == refused),
                "{refused} is allowed"
            );
        }
    }

    #[test]
    fn the_rclone_line_forces_an_append_only_server_on_one_directory() {
        let line = rclone_authorized_keys_line(
            KEY,
            "/srv/kastell/fleet/servers/web-1",
            "kastell-onserver-web-1",
        )
        .unwrap();
        assert_eq!(
            line,
            "restrict,command=\"rclone serve restic --stdio --append-only /srv/kastell/fleet/servers/web-1\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ0vq2J7rX0m2oQY2b4o1b1Yb3i9mCkz0O3G8xqf5Y8E kastell-onserver-web-1"
        );
        for dir in [
            "srv/x",
            "/srv/../etc",
            "/srv/a b",
            "/srv/a\";sh",
            "/srv/$(x)",
            "/srv/x\ny",
            "",
        ] {
            assert!(
                rclone_authorized_keys_line(KEY, dir, "c").is_err(),
                "{dir:?}"
            );
        }
        assert!(rclone_authorized_keys_line(KEY, "/srv/x", "a b").is_err());
        assert!(rclone_authorized_keys_line("ssh-ed25519 AAAA", "/srv/x", "c").is_err());
    }

    #[test]
    fn text_that_is_not_one_public_key_is_refused() {
        for bad in [
            "",
            "hello",
            "ssh-ed25519",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n",
            "ssh-ed25519 AAAA\" command=\"sh",
            &format!("{KEY}{KEY}"),
        ] {
            let error = authorized_keys_line(bad).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidInput, "{bad:?}");
        }
    }
}
