//! Why an SFTP request failed, told apart: the server's answer (a missing
//! file, a full disk, a refusal) from a session that died, and each turned
//! into a kastell error with its kind, retryability and hint.

use std::path::Path;

use kastell_core::{Error, ErrorKind};
use ssh2::{ErrorCode, Sftp};

/// libssh2's timeout (`LIBSSH2_ERROR_TIMEOUT`).
const SESSION_TIMEOUT: i32 = -9;

/// SFTP status codes (`SSH_FX_*`).
pub(super) const FX_NO_SUCH_FILE: i32 = 2;
pub(super) const FX_PERMISSION_DENIED: i32 = 3;
pub(super) const FX_NO_CONNECTION: i32 = 6;
pub(super) const FX_CONNECTION_LOST: i32 = 7;
pub(super) const FX_OP_UNSUPPORTED: i32 = 8;
pub(super) const FX_NO_SUCH_PATH: i32 = 10;
pub(super) const FX_FILE_ALREADY_EXISTS: i32 = 11;
pub(super) const FX_WRITE_PROTECT: i32 = 12;
pub(super) const FX_NO_SPACE_ON_FILESYSTEM: i32 = 14;
pub(super) const FX_QUOTA_EXCEEDED: i32 = 15;

/// What made an SFTP request fail.
pub(super) enum Failure {
    Ssh(ssh2::Error),
    Io(std::io::Error),
}

impl From<ssh2::Error> for Failure {
    fn from(error: ssh2::Error) -> Self {
        Self::Ssh(error)
    }
}

impl From<std::io::Error> for Failure {
    fn from(error: std::io::Error) -> Self {
        Self::Io(error)
    }
}

impl Failure {
    /// Whether the server answered no (the file is missing, say), as
    /// opposed to not answering.
    pub(super) fn is_answer(&self) -> bool {
        match self {
            Self::Ssh(e) => matches!(e.code(), ErrorCode::SFTP(code)
                if code != FX_NO_CONNECTION && code != FX_CONNECTION_LOST),
            Self::Io(e) => matches!(
                e.kind(),
                std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::AlreadyExists
                    | std::io::ErrorKind::UnexpectedEof
            ),
        }
    }

    /// Whether the session is dead: the failure was not the server's
    /// answer, and (for file reads and writes, whose errors do not say)
    /// the session no longer answers a request.
    pub(super) fn session_lost(&self, sftp: &Sftp) -> bool {
        if self.is_answer() {
            return false;
        }
        match self {
            Self::Io(e) if e.kind() == std::io::ErrorKind::Other => {
                sftp.realpath(Path::new(".")).is_err()
            }
            _ => true,
        }
    }

    pub(super) fn is_not_found(&self) -> bool {
        match self {
            Self::Ssh(e) => matches!(e.code(), ErrorCode::SFTP(FX_NO_SUCH_FILE | FX_NO_SUCH_PATH)),
            Self::Io(e) => e.kind() == std::io::ErrorKind::NotFound,
        }
    }

    /// Whether the server refused the request (SFTP's permission denied).
    pub(super) fn is_permission_denied(&self) -> bool {
        match self {
            Self::Ssh(e) => matches!(e.code(), ErrorCode::SFTP(FX_PERMISSION_DENIED)),
            Self::Io(e) => e.kind() == std::io::ErrorKind::PermissionDenied,
        }
    }

    pub(super) fn detail(&self) -> String {
        match self {
            Self::Ssh(e) => e.message().to_owned(),
            Self::Io(e) => e.to_string(),
        }
    }

    /// The kastell error for this failure while `doing` `path` in
    /// `location`; `lost` when the session died.
    pub(super) fn into_error(self, doing: &str, path: &Path, location: &str, lost: bool) -> Error {
        let message = format!("{doing} {} in {location}", path.display());
        let unreachable = "Check that the SSH server is reachable, then try again";
        let (kind, retryable, hint) = match &self {
            _ if lost => (ErrorKind::Unavailable, true, Some(unreachable)),
            Self::Ssh(e) => match e.code() {
                ErrorCode::SFTP(FX_NO_SUCH_FILE | FX_NO_SUCH_PATH) => {
                    (ErrorKind::NotFound, false, None)
                }
                ErrorCode::SFTP(FX_PERMISSION_DENIED | FX_WRITE_PROTECT) => (
                    ErrorKind::PermissionDenied,
                    false,
                    Some(
                        "The SSH user may not read or write there: check the owner and mode of \
                         the repository directory on the server",
                    ),
                ),
                ErrorCode::SFTP(FX_NO_SPACE_ON_FILESYSTEM | FX_QUOTA_EXCEEDED) => (
                    ErrorKind::Unexpected,
                    false,
                    Some(
                        "The server's disk is full or the user's quota is reached: free space there",
                    ),
                ),
                ErrorCode::SFTP(FX_FILE_ALREADY_EXISTS) => (ErrorKind::AlreadyExists, false, None),
                ErrorCode::SFTP(FX_OP_UNSUPPORTED) => (ErrorKind::Unsupported, false, None),
                ErrorCode::SFTP(FX_NO_CONNECTION | FX_CONNECTION_LOST) => {
                    (ErrorKind::Unavailable, true, Some(unreachable))
                }
                ErrorCode::SFTP(_) => (
                    ErrorKind::Unexpected,
                    false,
                    Some(
                        "The server refused without saying why: its disk may be full, or a \
                         file may stand where the repository needs a directory",
                    ),
                ),
                ErrorCode::Session(SESSION_TIMEOUT) => {
                    (ErrorKind::Timeout, true, Some(unreachable))
                }
                ErrorCode::Session(_) => (ErrorKind::Unavailable, true, Some(unreachable)),
            },
            Self::Io(e) => match e.kind() {
                std::io::ErrorKind::NotFound => (ErrorKind::NotFound, false, None),
                std::io::ErrorKind::UnexpectedEof => (
                    ErrorKind::Corrupt,
                    false,
                    Some("The file is shorter than the repository's index says: run a check"),
                ),
                std::io::ErrorKind::TimedOut => (ErrorKind::Timeout, true, Some(unreachable)),
                _ => (ErrorKind::Unexpected, false, None),
            },
        };
        let error = Error::new(kind, format!("{message}: {}", self.detail()))
            .set_retryable(retryable)
            .with_provider("sftp");
        match hint {
            Some(hint) => error.with_hint(hint),
            None => error,
        }
    }
}
