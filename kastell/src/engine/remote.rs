//! Reaching a server from its fleet record: the SSH transport built from the
//! record's settings, pinning a first-use host key back into the store.

use std::path::PathBuf;
use std::sync::Arc;

use kastell_core::HostKeyInfo;
use kastell_ssh::{HostKeyPinner, SshConfig, SshTransport};

use crate::env::Env;
use crate::state::store::{FleetStore, ServerRecord};

/// The SSH user when the record names none (the original tool's only user).
pub(crate) const DEFAULT_USER: &str = "root";
/// The SSH port when the record names none.
pub(crate) const DEFAULT_PORT: u16 = 22;

/// Whether `KASTELL_STRICT_HOST_KEY` asks to refuse unpinned hosts: `true`,
/// `1`, `yes` or `on`, case-insensitive ([`Env::is_on`]).
pub(crate) fn strict_host_key(env: &Env) -> bool {
    env.is_on("KASTELL_STRICT_HOST_KEY")
}

/// SSH settings for `record`: its user, port, identity file and pinned host
/// key, with kastell's defaults (`root`, 22, `~/.ssh/id_ed25519` then
/// `~/.ssh/id_rsa`). A host key trusted on first use is pinned into `store`
/// under the record's name; if that write fails the key is not trusted.
pub(crate) fn ssh_config(store: &FleetStore, record: &ServerRecord, env: &Env) -> SshConfig {
    let store = store.clone();
    let name = record.name.clone();
    ssh_config_pinning(
        record,
        env,
        Arc::new(move |info: &HostKeyInfo| {
            store.pin_host_key(&name, &info.fingerprint).map(|_| ())
        }),
    )
}

/// SSH settings for `record` as [`ssh_config`] makes them, a host key
/// trusted on first use handed to `pin` instead of the store (for a server
/// not in the store yet: `server add` keeps the key its detection saw).
pub(crate) fn ssh_config_pinning(
    record: &ServerRecord,
    env: &Env,
    pin: HostKeyPinner,
) -> SshConfig {
    let ssh = record.ssh.clone().unwrap_or_default();
    let mut config = SshConfig::new(
        record.ip.clone(),
        ssh.port.unwrap_or(DEFAULT_PORT),
        ssh.user.unwrap_or_else(|| DEFAULT_USER.to_owned()),
    );
    if let Some(identity) = ssh.identity_file {
        config.identity_files = vec![PathBuf::from(identity)];
    }
    config.pinned_host_key = ssh.host_key;
    config.strict_host_key = strict_host_key(env);
    config.pin_host_key = Some(pin);
    config
}

/// An SSH transport to `record`, see [`ssh_config`].
pub(crate) fn transport_for(store: &FleetStore, record: &ServerRecord, env: &Env) -> SshTransport {
    SshTransport::new(ssh_config(store, record, env))
}
