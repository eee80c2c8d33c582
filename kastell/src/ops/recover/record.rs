//! The new server's fleet record and the old one's mark: a recovered
//! server joins the fleet under a name of its own, and the record of the
//! server it replaces is kept, marked replaced (two fields the original
//! tool ignores and keeps, so `servers.json` stays compatible with it).

use std::path::PathBuf;

use kastell_core::types::{PlatformRoot, Privilege, Server};
use kastell_core::{Error, Result};

use crate::engine::recover::SANDBOX_ROOTS_VAR;
use crate::env::Env;
use crate::ops::{PLATFORM_OPTIONS_KEY, ROOT_OPTION, confine_platform, platform_options};
use crate::state::store::{FleetStore, ServerRecord, SshSettings};

/// The platform option the sandbox points a PaaS health check with, at
/// `<endpoint>/<address>` (a recovered sandbox server's names its own).
const SANDBOX_HEALTH_OPTION: &str = "health_url";

/// Sets the sandbox health option of `record` to `url`.
fn sandbox_health_url(record: &mut ServerRecord, url: &str) {
    if let Some(serde_json::Value::Object(options)) = record.extra.get_mut(PLATFORM_OPTIONS_KEY) {
        options.insert(SANDBOX_HEALTH_OPTION.to_owned(), url.into());
    }
}

/// The record field naming the server that replaced this one.
pub(crate) const REPLACED_BY: &str = "replacedBy";
/// The record field saying when (RFC 3339).
pub(crate) const REPLACED_AT: &str = "replacedAt";

/// The server that replaced `record`, when a recovery marked it.
pub(crate) fn replaced_by(record: &ServerRecord) -> Option<&str> {
    record.extra.get(REPLACED_BY).and_then(|v| v.as_str())
}

/// The name a server recovered from `old` gets: `wanted` when given, else
/// `<old>-recovered`, then `<old>-recovered-2`, ... (the first free one).
/// Refuses a `wanted` name already in the fleet.
pub(crate) fn new_name(store: &FleetStore, old: &str, wanted: Option<&str>) -> Result<String> {
    let taken = |name: &str| -> Result<bool> { Ok(store.find(name)?.is_some()) };
    if let Some(name) = wanted {
        if taken(name)? {
            return Err(Error::new(
                kastell_core::ErrorKind::AlreadyExists,
                format!("a server named {name:?} is already in the fleet"),
            )
            .with_hint("Choose another --name, or leave it out for <server>-recovered"));
        }
        return Ok(name.to_owned());
    }
    let base = format!("{old}-recovered");
    if !taken(&base)? {
        return Ok(base);
    }
    for n in 2..1000 {
        let name = format!("{base}-{n}");
        if !taken(&name)? {
            return Ok(name);
        }
    }
    Err(Error::invalid_state(format!("every name {base}-N is taken")).with_hint("Pass --name"))
}

/// Adds `new` to the fleet and marks `old` replaced by it, in that order
/// (a failure between the two leaves both records, the old one unmarked,
/// never the new server missing).
pub(crate) fn join_fleet(store: &FleetStore, old: &str, new: ServerRecord) -> Result<ServerRecord> {
    let name = new.name.clone();
    let stored = store.add(new)?;
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    store.update(old, |record| {
        record
            .extra
            .insert(REPLACED_BY.to_owned(), name.clone().into());
        record
            .extra
            .insert(REPLACED_AT.to_owned(), at.clone().into());
    })?;
    Ok(stored)
}

/// The fleet record of `server`, just created at `provider` as `name` to
/// replace `old`: its id, address, region and size; `old`'s platform,
/// domain, backup paths, tags and SSH login (user, port, key; the host key
/// is pinned when it is first seen); the account when the provider is the
/// same. In the sandbox ([`SANDBOX_ROOTS_VAR`]) its platform is confined
/// to its own fake root, and a health URL naming the old address names
/// the new one. Refuses a server without a public IPv4.
pub(crate) fn fresh_record(
    old: &ServerRecord,
    server: &Server,
    provider: &str,
    name: &str,
    env: &Env,
) -> Result<ServerRecord> {
    let ip = server.public_ipv4.ok_or_else(|| {
        Error::invalid_state(format!("new server {} has no public IPv4", server.id))
    })?;
    let mut record = ServerRecord::new(server.id.to_string(), name, ip.to_string());
    record.provider = Some(provider.to_owned());
    record.region = server.region.clone().unwrap_or_else(|| "unknown".into());
    record.size = server.plan.clone().unwrap_or_else(|| "unknown".into());
    record.created_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    record.mode = old.mode.clone();
    record.platform = old.platform.clone();
    record.domain = old.domain.clone();
    record.backup_paths = old.backup_paths.clone();
    record.tags = old.tags.clone();
    if old.provider_id() == Some(provider) {
        record.account = old.account.clone();
    }
    record.ssh = old
        .ssh
        .as_ref()
        .map(|ssh| SshSettings {
            host_key: None,
            ..ssh.clone()
        })
        .filter(|ssh| !ssh.is_empty());
    if let Some(options) = old.extra.get(PLATFORM_OPTIONS_KEY) {
        record
            .extra
            .insert(PLATFORM_OPTIONS_KEY.to_owned(), options.clone());
    }
    if let Some(roots) = env.get_nonempty(SANDBOX_ROOTS_VAR) {
        let options = platform_options(old)?;
        if options
            .get(ROOT_OPTION)
            .is_some_and(|root| root.starts_with(&roots))
        {
            let root = PathBuf::from(&roots).join(ip.to_string());
            let root = PlatformRoot::new(&root.display().to_string())?;
            confine_platform(&mut record, &root, Privilege::LoginUser);
            if let Some(url) = options.get(SANDBOX_HEALTH_OPTION) {
                if let Some(base) = url.strip_suffix(&format!("/{}", old.ip)) {
                    sandbox_health_url(&mut record, &format!("{base}/{ip}"));
                }
            }
        }
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kastell_core::types::{ServerId, ServerStatus};
    use std::net::Ipv4Addr;

    #[test]
    fn a_fresh_record_keeps_the_login_and_platform_but_not_the_host_key() {
        let mut old = ServerRecord::new("11", "web", "203.0.113.1");
        old.provider = Some("hetzner".into());
        old.account = Some("work".into());
        old.platform = Some("coolify".into());
        old.domain = Some("example.com".into());
        old.ssh = Some(SshSettings {
            user: Some("ops".into()),
            port: Some(2222),
            identity_file: Some("/k/id".into()),
            host_key: Some("SHA256:old".into()),
        });
        confine_platform(
            &mut old,
            &PlatformRoot::new("/tmp/hosts/roots/203.0.113.1").unwrap(),
            Privilege::LoginUser,
        );
        if let Some(serde_json::Value::Object(options)) = old.extra.get_mut(PLATFORM_OPTIONS_KEY) {
            options.insert(
                SANDBOX_HEALTH_OPTION.to_owned(),
                "http://127.0.0.1:4000/203.0.113.1".into(),
            );
        }
        let mut server = Server::new(
            ServerId::new("77").unwrap(),
            "web-recovered",
            ServerStatus::Running,
        );
        server.public_ipv4 = Some(Ipv4Addr::new(127, 0, 0, 40));
        server.plan = Some("s-2vcpu-4gb".into());
        let env = Env::from_pairs([(SANDBOX_ROOTS_VAR, "/tmp/hosts/roots")]);
        let new = fresh_record(&old, &server, "digitalocean", "web-recovered", &env).unwrap();
        assert_eq!((new.id.as_str(), new.ip.as_str()), ("77", "127.0.0.40"));
        assert_eq!(new.provider.as_deref(), Some("digitalocean"));
        assert_eq!(
            new.account, None,
            "another provider's account is not carried"
        );
        assert_eq!(new.platform.as_deref(), Some("coolify"));
        let ssh = new.ssh.clone().unwrap();
        assert_eq!((ssh.user.as_deref(), ssh.port), (Some("ops"), Some(2222)));
        assert_eq!(ssh.host_key, None);
        let options = platform_options(&new).unwrap();
        assert_eq!(
            options.get(ROOT_OPTION).map(String::as_str),
            Some("/tmp/hosts/roots/127.0.0.40")
        );
        assert_eq!(
            options.get(SANDBOX_HEALTH_OPTION).map(String::as_str),
            Some("http://127.0.0.1:4000/127.0.0.40"),
            "the sandbox's health check asks for the new host"
        );
        server.public_ipv4 = None;
        assert!(fresh_record(&old, &server, "digitalocean", "x", &env).is_err());
    }

    #[test]
    fn the_new_server_joins_and_the_old_one_is_kept_marked() {
        let dir = tempfile::tempdir().unwrap();
        let store = FleetStore::open(dir.path()).unwrap();
        store
            .add(ServerRecord::new("11", "web", "203.0.113.1"))
            .unwrap();
        assert_eq!(new_name(&store, "web", None).unwrap(), "web-recovered");
        let new = ServerRecord::new("77", "web-recovered", "203.0.113.2");
        join_fleet(&store, "web", new).unwrap();
        assert_eq!(new_name(&store, "web", None).unwrap(), "web-recovered-2");
        let err = new_name(&store, "web", Some("web-recovered")).unwrap_err();
        assert_eq!(err.kind(), kastell_core::ErrorKind::AlreadyExists);
        let old = store.find("web").unwrap().unwrap();
        assert_eq!(replaced_by(&old), Some("web-recovered"));
        let text = std::fs::read_to_string(store.path()).unwrap();
        assert!(text.contains("\"replacedBy\": \"web-recovered\""), "{text}");
        assert!(store.find("web-recovered").unwrap().is_some());
    }
}
