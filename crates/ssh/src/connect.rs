//! Opening one authenticated SSH session.

use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;

use kastell_core::{Error, ErrorKind, HostKeyInfo, Result};
use ssh2::{HashType, HostKeyType, Session};

use crate::config::SshConfig;
use crate::hostkey::{decide, fingerprint_sha256};

/// An authenticated session and a handle on its socket for readiness polls.
pub(crate) struct Connection {
    pub(crate) session: Session,
    pub(crate) socket: TcpStream,
}

fn ssh_error(kind: ErrorKind, what: &str, cfg: &SshConfig, err: &ssh2::Error) -> Error {
    Error::new(
        kind,
        format!(
            "{what} {}@{}:{}: {}",
            cfg.user,
            cfg.host,
            cfg.port,
            err.message()
        ),
    )
    .with_provider("ssh")
    .with_operation("connect")
}

/// The OpenSSH name of a host key type (`ssh-ed25519`, `ssh-rsa`,
/// `ecdsa-sha2-nistp256`, ...), as known_hosts files and
/// [`HostKeyInfo::key_type`] spell it; `unknown` for a type libssh2 does
/// not name.
pub fn key_type_name(kind: HostKeyType) -> &'static str {
    match kind {
        HostKeyType::Rsa => "ssh-rsa",
        HostKeyType::Dss => "ssh-dss",
        HostKeyType::Ecdsa256 => "ecdsa-sha2-nistp256",
        HostKeyType::Ecdsa384 => "ecdsa-sha2-nistp384",
        HostKeyType::Ecdsa521 => "ecdsa-sha2-nistp521",
        HostKeyType::Ed25519 => "ssh-ed25519",
        HostKeyType::Unknown => "unknown",
    }
}

/// Connects, checks the host key against `pinned` and authenticates.
///
/// Nothing is sent to the server's shell here, so every failure is marked as
/// never applied.
pub(crate) fn connect(cfg: &SshConfig, pinned: Option<&str>) -> Result<(Connection, HostKeyInfo)> {
    let target = format!("{}:{}", cfg.host, cfg.port);
    let addr = (cfg.host.as_str(), cfg.port)
        .to_socket_addrs()
        .map_err(|e| {
            Error::unavailable(format!("cannot resolve {target}: {e}"))
                .with_provider("ssh")
                .with_operation("connect")
                .never_applied()
        })?
        .next()
        .ok_or_else(|| {
            Error::unavailable(format!("{target} resolved to no address")).never_applied()
        })?;

    let stream = TcpStream::connect_timeout(&addr, cfg.connect_timeout).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused",
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => "connection timed out",
            _ => "cannot connect",
        };
        Error::unavailable(format!("{why}: {target}"))
            .with_source(e)
            .with_provider("ssh")
            .with_operation("connect")
            .with_hint("Check that the server is running, its IP and SSH port, and any firewall")
            .never_applied()
    })?;
    // Best effort: Nagle only adds latency to small request/response exchanges.
    let _ = stream.set_nodelay(true);
    let socket = stream
        .try_clone()
        .map_err(|e| Error::io("cloning the SSH socket", e))?;

    let mut session = Session::new().map_err(|e| {
        Error::unexpected(format!("cannot create an SSH session: {}", e.message())).never_applied()
    })?;
    session.set_tcp_stream(stream);
    session.set_timeout(u32::try_from(cfg.connect_timeout.as_millis()).unwrap_or(u32::MAX));
    session.handshake().map_err(|e| {
        ssh_error(ErrorKind::Unavailable, "SSH handshake failed with", cfg, &e)
            .with_hint("Is an SSH server listening on that port?")
            .never_applied()
    })?;

    let (key_type, fingerprint) = {
        let key_type = session
            .host_key()
            .map(|(_, kind)| key_type_name(kind))
            .unwrap_or("unknown");
        let digest = session.host_key_hash(HashType::Sha256).ok_or_else(|| {
            Error::new(
                ErrorKind::HostKeyMismatch,
                format!("{target} presented no host key"),
            )
            .with_provider("ssh")
        })?;
        (key_type, fingerprint_sha256(digest))
    };
    let info = decide(&target, &fingerprint, key_type, pinned, cfg.strict_host_key)?;

    authenticate(&session, cfg)?;
    Ok((Connection { session, socket }, info))
}

fn authenticate(session: &Session, cfg: &SshConfig) -> Result<()> {
    let existing: Vec<&Path> = cfg
        .identity_files
        .iter()
        .map(|p| p.as_path())
        .filter(|p| p.is_file())
        .collect();
    if existing.is_empty() {
        let tried: Vec<String> = cfg
            .identity_files
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        return Err(Error::config_invalid(format!(
            "no SSH identity file found (tried: {})",
            if tried.is_empty() {
                "none configured".to_owned()
            } else {
                tried.join(", ")
            }
        ))
        .with_provider("ssh")
        .with_hint(
            "Set the server's identity file (ssh.identityFile) or create ~/.ssh/id_ed25519",
        ));
    }
    let mut last: Option<ssh2::Error> = None;
    for key in &existing {
        match session.userauth_pubkey_file(&cfg.user, None, key, None) {
            Ok(()) if session.authenticated() => return Ok(()),
            Ok(()) => {}
            Err(e) => last = Some(e),
        }
    }
    let detail = last.map(|e| e.message().to_owned()).unwrap_or_default();
    Err(Error::new(
        ErrorKind::Unauthenticated,
        format!(
            "{}@{}:{} refused the SSH key(s) {}: {detail}",
            cfg.user,
            cfg.host,
            cfg.port,
            existing
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
    .with_provider("ssh")
    .with_operation("connect")
    .with_hint(
        "Check the user name and that the key's public half is in the server's authorized_keys",
    ))
}
