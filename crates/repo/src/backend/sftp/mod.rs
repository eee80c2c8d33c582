//! A repository in a directory on an SSH server, over SFTP (libssh2,
//! through `ssh2`), laid out as restic lays it out, so `restic -r
//! sftp:user@host:/path` reads it too.
//!
//! - **Host key**: the server's key must be pinned in a known_hosts file
//!   (OpenSSH's format, hashed names too). An unknown host is refused, a
//!   changed or `@revoked` key always is; nothing is trusted on first use.
//!   The known_hosts name is `host` on port 22 and `[host]:port` on any
//!   other, as `ssh` and `ssh-keyscan` write them. Only the key types
//!   pinned for the host are offered in the handshake, so a server with
//!   several keys presents one that can be checked.
//! - **Login**: a private key file without a passphrase.
//! - **One session**, behind a mutex (libssh2 serialises a session's
//!   requests anyway). A call that finds the session dead connects again,
//!   checking the host key again, and runs once more; it fails after that.
//! - **Whole files or none**: a file is written under a temporary name in
//!   its directory (created exclusively), synced (`fsync@openssh.com`
//!   where the server has it) and renamed. OpenSSH's server, speaking
//!   SFTP version 3, refuses to rename over an existing file; repository
//!   files are named by their content's hash, so one that exists already
//!   holds the same bytes and is kept. Only `config`, written at `init`,
//!   is replaced (removed, then renamed) when it exists.

use std::fmt;
use std::io::{Read, Seek, SeekFrom};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use kastell_core::{Error, ErrorKind, Result};
use kastell_ssh::{fingerprint_sha256, key_type_name};
use rustic_core::{BytesList, FileType, Id, ReadBackend, RusticResult, WriteBackend};
use ssh2::{CheckResult, ErrorCode, HashType, MethodType, Session, Sftp};

use super::{DIRECTORIES, object_path};
use crate::RepoLocation;
use crate::error::to_rustic;
use crate::location::DEFAULT_SFTP_PORT;

mod canary;
mod failure;
mod files;
mod known_hosts;

use failure::Failure;
use files::{make_dir, make_dirs, write_whole};

use known_hosts::{LoadedPins, Pins, host_key_file_type, host_key_methods, keyscan_command};

/// How kastell logs in to an SFTP repository. Neither path is a secret;
/// the key file's content never leaves libssh2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftpCredentials {
    /// The private key file (OpenSSH or PEM format, ed25519, ECDSA or RSA,
    /// without a passphrase) whose public half is in the server's
    /// `authorized_keys` for the login user.
    pub identity_file: PathBuf,
    /// The known_hosts file (OpenSSH's format) that must pin the server's
    /// host key.
    pub known_hosts: PathBuf,
}

/// Time allowed for the TCP connection, the handshake and the login.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Time one SFTP request may wait for the server before it fails.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// libssh2's error codes this backend tells apart (`LIBSSH2_ERROR_*`).
const SESSION_KEY_EXCHANGE_FAILURE: i32 = -5;
const SESSION_FILE: i32 = -16;
const SESSION_AUTHENTICATION_FAILED: i32 = -18;
const SESSION_PUBLICKEY_UNVERIFIED: i32 = -19;

/// The files of a repository in a directory on an SSH server, over one
/// SFTP session. Its `Debug` shows the location only.
pub struct SftpBackend {
    user: String,
    host: String,
    port: u16,
    root: PathBuf,
    location: String,
    credentials: SftpCredentials,
    connection: Mutex<Option<Connection>>,
}

impl fmt::Debug for SftpBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SftpBackend")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// An authenticated session with its SFTP channel, and a handle on its
/// socket to cut it without waiting on a dead server.
struct Connection {
    sftp: Sftp,
    session: Session,
    socket: TcpStream,
}

impl Connection {
    /// Drops the session without waiting on the server: libssh2 would
    /// wait up to the request timeout to close a channel nobody answers.
    fn discard(self) {
        self.session.set_blocking(false);
        let _ = self.socket.shutdown(Shutdown::Both);
    }
}

impl SftpBackend {
    /// A backend for the directory `root` on `host:port`, logged in as
    /// `user` with `credentials`. Connects at once: refuses without
    /// credentials, a relative `root`, a missing key or known_hosts file,
    /// an unreachable server, a host key that known_hosts does not pin
    /// (unknown, changed or revoked), a refused key and a server without
    /// SFTP.
    pub fn new(
        user: &str,
        host: &str,
        port: u16,
        root: &Path,
        credentials: Option<&SftpCredentials>,
    ) -> Result<Self> {
        let credentials = credentials.ok_or_else(|| {
            Error::new(
                ErrorKind::Unauthenticated,
                "No SSH key and known_hosts file for the SFTP repository",
            )
            .with_hint(
                "Give the private key file to log in with and the known_hosts file that pins \
                 the server's host key",
            )
        })?;
        if !root.is_absolute() {
            return Err(Error::invalid_input(format!(
                "SFTP repository directory '{}' is not an absolute path",
                root.display()
            ))
            .with_hint("Give the full path on the server, starting with /"));
        }
        let location = RepoLocation::Sftp {
            user: user.to_owned(),
            host: host.to_owned(),
            port,
            path: root.to_path_buf(),
        }
        .to_string();
        let backend = Self {
            user: user.to_owned(),
            host: host.to_owned(),
            port,
            root: root.to_path_buf(),
            location,
            credentials: credentials.clone(),
            connection: Mutex::new(None),
        };
        let connection = backend.connect()?;
        *backend.lock() = Some(connection);
        Ok(backend)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Connection>> {
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn path(&self, tpe: FileType, id: &Id) -> PathBuf {
        self.root.join(object_path(tpe, id))
    }

    /// `host:port` as errors show it.
    fn target(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The name known_hosts files give this server.
    fn known_hosts_name(&self) -> String {
        if self.port == DEFAULT_SFTP_PORT {
            self.host.clone()
        } else {
            format!("[{}]:{}", self.host, self.port)
        }
    }

    /// An error while connecting: nothing was written, so it never took
    /// effect.
    fn connect_error(&self, kind: ErrorKind, message: String) -> Error {
        Error::new(kind, message)
            .with_provider("sftp")
            .with_operation("connect")
            .never_applied()
    }

    /// Connects, checks the host key against known_hosts, logs in and
    /// opens the SFTP channel.
    fn connect(&self) -> Result<Connection> {
        let known_hosts = &self.credentials.known_hosts;
        let pins = Pins::read(known_hosts, &keyscan_command(&self.host, self.port))?;
        let identity = &self.credentials.identity_file;
        if let Err(e) = std::fs::metadata(identity) {
            return Err(Error::new(
                ErrorKind::ConfigInvalid,
                format!("cannot read the SSH key file {}: {e}", identity.display()),
            )
            .with_source(e)
            .with_provider("sftp")
            .with_hint("Give the private key file to log in to the SFTP server with"));
        }
        let target = self.target();
        let address = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| {
                self.connect_error(
                    ErrorKind::Unavailable,
                    format!("cannot resolve {target}: {e}"),
                )
            })?
            .next()
            .ok_or_else(|| {
                self.connect_error(
                    ErrorKind::Unavailable,
                    format!("{target} resolved to no address"),
                )
            })?;
        let stream = TcpStream::connect_timeout(&address, CONNECT_TIMEOUT).map_err(|e| {
            self.connect_error(
                ErrorKind::Unavailable,
                format!("cannot connect to {target}: {e}"),
            )
            .with_hint(
                "Check that the SSH server is running, its address and port, and any firewall",
            )
        })?;
        let _ = stream.set_nodelay(true);
        let socket = stream
            .try_clone()
            .map_err(|e| Error::io("cloning the SSH socket", e))?;
        let mut session = Session::new().map_err(|e| {
            Error::unexpected(format!("cannot create an SSH session: {}", e.message()))
        })?;
        session.set_tcp_stream(stream);
        session.set_timeout(millis(CONNECT_TIMEOUT));

        let name = self.known_hosts_name();
        let known = pins.load(&session, &name)?;
        let offered = known.pinned_types(&name);
        // Best effort: a libssh2 without one of these types refuses the
        // list, and the server's key is then checked all the same.
        let restricted = !offered.is_empty()
            && session
                .method_pref(MethodType::HostKey, &host_key_methods(&offered))
                .is_ok();
        session.handshake().map_err(|e| {
            // Asked only for the pinned types, a server without a key of
            // any of them ends the key exchange.
            if restricted && e.code() == ErrorCode::Session(SESSION_KEY_EXCHANGE_FAILURE) {
                return self
                    .connect_error(
                        ErrorKind::PermissionDenied,
                        format!(
                            "{target} has no host key of the types {} pins for {name} ({}): {}",
                            known_hosts.display(),
                            offered.join(", "),
                            e.message()
                        ),
                    )
                    .set_retryable(false)
                    .with_hint(format!(
                        "If the server's keys were replaced, verify its fingerprint on its \
                         console, then pin its current key: {} >> {}",
                        keyscan_command(&self.host, self.port),
                        known_hosts.display()
                    ));
            }
            self.connect_error(
                ErrorKind::Unavailable,
                format!("SSH handshake with {target} failed: {}", e.message()),
            )
            .with_hint("Is an SSH server listening on that port?")
        })?;
        self.check_host_key(&session, &known, &name, &offered)?;
        self.log_in(&session)?;
        session.set_timeout(millis(REQUEST_TIMEOUT));
        let sftp = session.sftp().map_err(|e| {
            self.connect_error(
                ErrorKind::Unavailable,
                format!("{target} offers no SFTP: {}", e.message()),
            )
            .set_retryable(false)
            .with_hint("Enable SFTP on the server (a `Subsystem sftp` line in sshd_config)")
        })?;
        tracing::debug!(
            "connected to {} over SFTP (host key pinned in {})",
            self.location,
            known_hosts.display()
        );
        Ok(Connection {
            sftp,
            session,
            socket,
        })
    }

    /// Refuses the server unless its key is pinned for `name` in known_hosts
    /// and not revoked.
    fn check_host_key(
        &self,
        session: &Session,
        known: &LoadedPins,
        name: &str,
        pinned_types: &[String],
    ) -> Result<()> {
        let file = self.credentials.known_hosts.display();
        let target = self.target();
        let (key, kind) = session.host_key().ok_or_else(|| {
            self.connect_error(
                ErrorKind::HostKeyMismatch,
                format!("{target} presented no host key"),
            )
        })?;
        let key_type = key_type_name(kind);
        let fingerprint = session
            .host_key_hash(HashType::Sha256)
            .map(fingerprint_sha256)
            .unwrap_or_else(|| "an unknown fingerprint".to_owned());
        if matches!(known.revoked.check(name, key), CheckResult::Match) {
            return Err(self
                .connect_error(
                    ErrorKind::HostKeyMismatch,
                    format!(
                        "{target} presented the host key {fingerprint} ({key_type}), which {file} marks @revoked"
                    ),
                )
                .with_hint("Never trust a revoked key; ask the server's administrator for its current one"));
        }
        let result = known
            .by_type
            .iter()
            .find(|(pinned, _)| pinned == key_type)
            .map_or(CheckResult::NotFound, |(_, hosts)| hosts.check(name, key));
        match result {
            CheckResult::Match => Ok(()),
            CheckResult::Mismatch => Err(self
                .connect_error(
                    ErrorKind::HostKeyMismatch,
                    format!(
                        "host key of {target} changed: {file} pins another {key_type} key for {name}, \
                         the server presented {fingerprint}"
                    ),
                )
                .with_hint(format!(
                    "This can mean someone is intercepting the connection. If the server was \
                     rebuilt, verify the new fingerprint on its console (ssh-keygen -lf \
                     /etc/ssh/ssh_host_{}_key.pub), then replace its entry: ssh-keygen -R '{name}' \
                     -f {file}, and pin the new key",
                    host_key_file_type(key_type)
                ))),
            CheckResult::NotFound => {
                let pinned = if pinned_types.is_empty() {
                    String::new()
                } else {
                    format!(" (it pins only {} keys for it)", pinned_types.join(", "))
                };
                Err(self
                    .connect_error(
                        ErrorKind::PermissionDenied,
                        format!(
                            "{target} is not a known host: {file} does not pin its {key_type} key {fingerprint}{pinned}"
                        ),
                    )
                    .with_hint(format!(
                        "Check the fingerprint on the server's console (ssh-keygen -lf \
                         /etc/ssh/ssh_host_{}_key.pub), then pin it: {} >> {file}",
                        host_key_file_type(key_type),
                        keyscan_command(&self.host, self.port),
                    )))
            }
            CheckResult::Failure => Err(self.connect_error(
                ErrorKind::Unexpected,
                format!("cannot check the host key of {target} against {file}"),
            )),
        }
    }

    fn log_in(&self, session: &Session) -> Result<()> {
        let identity = &self.credentials.identity_file;
        let login = format!("{}@{}", self.user, self.target());
        let refused = |detail: &str| {
            self.connect_error(
                ErrorKind::Unauthenticated,
                format!(
                    "{login} refused the SSH key {}: {detail}",
                    identity.display()
                ),
            )
            .with_hint(format!(
                "Check the user name, and that the key's public half ({}.pub) is in the \
                 server's ~/.ssh/authorized_keys of {}",
                identity.display(),
                self.user
            ))
        };
        match session.userauth_pubkey_file(&self.user, None, identity, None) {
            Ok(()) if session.authenticated() => Ok(()),
            Ok(()) => Err(refused("the server asks for more than a key")),
            Err(e) => match e.code() {
                ErrorCode::Session(
                    SESSION_AUTHENTICATION_FAILED | SESSION_PUBLICKEY_UNVERIFIED,
                ) => Err(refused(e.message())),
                ErrorCode::Session(SESSION_FILE) => Err(self
                    .connect_error(
                        ErrorKind::ConfigInvalid,
                        format!(
                            "cannot use {} as an SSH key: {}",
                            identity.display(),
                            e.message()
                        ),
                    )
                    .with_hint(
                        "Give a private key file (OpenSSH or PEM format) without a passphrase",
                    )),
                _ => Err(self
                    .connect_error(
                        ErrorKind::Unavailable,
                        format!("logging in to {login} failed: {}", e.message()),
                    )
                    .with_hint("Check that the SSH server is reachable, then try again")),
            },
        }
    }

    /// Runs `op` on the session, connecting first when there is none. When
    /// the session turns out dead, connects again and runs `op` once more.
    fn with_sftp<T>(
        &self,
        doing: &str,
        path: &Path,
        mut op: impl FnMut(&Sftp, bool) -> std::result::Result<T, Failure>,
    ) -> RusticResult<T> {
        let mut guard = self.lock();
        let mut retried = false;
        loop {
            let connection = match guard.take() {
                Some(connection) => connection,
                None => self.connect().map_err(|e| {
                    to_rustic(e.with_context("doing", format!("{doing} {}", path.display())))
                })?,
            };
            let outcome = op(&connection.sftp, retried);
            let lost = match &outcome {
                Ok(_) => false,
                Err(failure) => failure.session_lost(&connection.sftp),
            };
            if lost {
                connection.discard();
            } else {
                *guard = Some(connection);
            }
            match outcome {
                Ok(value) => return Ok(value),
                Err(failure) if lost && !retried => {
                    tracing::warn!(
                        "the SFTP session to {} ended ({}); connecting again",
                        self.location,
                        failure.detail()
                    );
                    retried = true;
                }
                Err(failure) => {
                    return Err(to_rustic(failure.into_error(
                        doing,
                        self.relative(path),
                        &self.location,
                        lost,
                    )));
                }
            }
        }
    }

    /// `path` relative to the repository's root, for messages.
    fn relative<'a>(&self, path: &'a Path) -> &'a Path {
        path.strip_prefix(&self.root).unwrap_or(path)
    }
}

fn millis(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis()).unwrap_or(u32::MAX)
}

impl ReadBackend for SftpBackend {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn list_with_size(&self, tpe: FileType) -> RusticResult<Vec<(Id, u32)>> {
        if tpe == FileType::Config {
            let path = self.root.join("config");
            return self.with_sftp("reading", &path, |sftp, _| match sftp.stat(&path) {
                Ok(stat) => Ok(vec![(Id::default(), size_u32(stat.size.unwrap_or(0)))]),
                Err(e) => {
                    let failure = Failure::from(e);
                    if failure.is_not_found() {
                        Ok(Vec::new())
                    } else {
                        Err(failure)
                    }
                }
            });
        }
        let top = self.root.join(tpe.dirname());
        self.with_sftp("listing", &top, |sftp, _| {
            let mut found = Vec::new();
            let mut pending = vec![top.clone()];
            while let Some(dir) = pending.pop() {
                let entries = match sftp.readdir(&dir) {
                    Ok(entries) => entries,
                    Err(e) => {
                        let failure = Failure::from(e);
                        if failure.is_not_found() {
                            continue;
                        }
                        return Err(failure);
                    }
                };
                for (path, stat) in entries {
                    if stat.is_dir() {
                        pending.push(path);
                    } else if let Some(id) = path
                        .file_name()
                        .and_then(|name| name.to_str())
                        .and_then(|name| name.parse::<Id>().ok())
                    {
                        found.push((id, size_u32(stat.size.unwrap_or(0))));
                    }
                }
            }
            Ok(found)
        })
    }

    fn read_full(&self, tpe: FileType, id: &Id) -> RusticResult<Bytes> {
        let path = self.path(tpe, id);
        self.with_sftp("reading", &path, |sftp, _| {
            let mut file = sftp.open(&path)?;
            let mut data = Vec::new();
            file.read_to_end(&mut data)?;
            Ok(Bytes::from(data))
        })
    }

    fn read_partial(
        &self,
        tpe: FileType,
        id: &Id,
        _cacheable: bool,
        offset: u32,
        length: u32,
    ) -> RusticResult<Bytes> {
        let path = self.path(tpe, id);
        self.with_sftp("reading", &path, |sftp, _| {
            let mut file = sftp.open(&path)?;
            file.seek(SeekFrom::Start(offset.into()))?;
            let mut data = vec![0; length as usize];
            file.read_exact(&mut data)?;
            Ok(Bytes::from(data))
        })
    }

    fn warmup_path(&self, tpe: FileType, id: &Id) -> String {
        self.path(tpe, id).display().to_string()
    }
}

impl WriteBackend for SftpBackend {
    fn create(&self) -> RusticResult<()> {
        self.with_sftp("creating", &self.root, |sftp, _| {
            make_dirs(sftp, &self.root)?;
            for dir in DIRECTORIES {
                make_dir(sftp, &self.root.join(dir))?;
            }
            let data = self.root.join("data");
            make_dir(sftp, &data)?;
            for byte in 0..=255u8 {
                make_dir(sftp, &data.join(format!("{byte:02x}")))?;
            }
            Ok(())
        })
    }

    fn write_bytes(
        &self,
        tpe: FileType,
        id: &Id,
        _cacheable: bool,
        content: BytesList,
    ) -> RusticResult<()> {
        let path = self.path(tpe, id);
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        let hex = id.to_hex();
        self.with_sftp("writing", &path, |sftp, _| {
            write_whole(
                sftp,
                &dir,
                &path,
                hex.as_str(),
                tpe == FileType::Config,
                &content,
            )
        })
    }

    fn remove(&self, tpe: FileType, id: &Id, _cacheable: bool) -> RusticResult<()> {
        let path = self.path(tpe, id);
        self.with_sftp("removing", &path, |sftp, retried| {
            match sftp.unlink(&path).map_err(Failure::from) {
                // The attempt whose answer the dead session lost removed it.
                Err(failure) if retried && failure.is_not_found() => Ok(()),
                removed => removed,
            }
        })
    }
}

/// A file size as the backend trait wants it (restic's files stay far
/// below 4 GiB; a bigger one is reported as the maximum and fails to read).
fn size_u32(len: u64) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}
