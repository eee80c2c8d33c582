//! Everything an operation needs: the environment, the fleet store, the
//! policy, the surface, the backup engine, timings, and the factories that
//! reach a server's provider, transport and platform (overridable, so tests
//! inject in-memory doubles and simulators).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kastell_core::types::{PlatformRoot, Privilege, ServerId};
use kastell_core::{
    CloudProvider, Error, Platform, PlatformContext, PlatformTarget, PollSchedule, ProviderConfig,
    Registry, Result, Secret, Transport,
};

use super::progress::{self, Progress};
use super::result::{OpError, OpResult};
use super::suggest::{Candidate, Suggestion, refusal_candidates, suggest, unresolved_candidates};
use crate::engine::backup::BackupEngine;
use crate::env::Env;
use crate::policy::{Decision, OpId, Policy, Surface, TokenEnv};
use crate::state::store::{FleetStore, ServerRecord};

/// Builds the cloud provider for a server record.
pub type ProviderFactory =
    Arc<dyn Fn(&ServerRecord) -> Result<Arc<dyn CloudProvider>> + Send + Sync>;
/// Builds the transport (SSH) to a server record.
pub type TransportFactory = Arc<dyn Fn(&ServerRecord) -> Arc<dyn Transport> + Send + Sync>;
/// Builds the platform of a server record over a transport.
pub type PlatformFactory =
    Arc<dyn Fn(&ServerRecord, Arc<dyn Transport>) -> Result<Arc<dyn Platform>> + Send + Sync>;

/// The record field (kept in `extra`) holding platform options, as a JSON
/// object of strings.
pub const PLATFORM_OPTIONS_KEY: &str = "platformOptions";

/// How long operations wait, and how often they poll.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// Provider reboot: action finished and server `running` again.
    pub reboot: Duration,
    /// SSH back after a reboot, with a new boot id.
    pub ssh_back: Duration,
    /// Platform healthy (after an update, a reboot or a restore).
    pub health: Duration,
    /// A snapshot taken and available.
    pub snapshot: Duration,
    /// A snapshot restored and the server running.
    pub snapshot_restore: Duration,
    /// The platform update command.
    pub update: Duration,
    /// Polling SSH and health.
    pub poll: PollSchedule,
    /// Poll schedule handed to providers (`None`: each provider's own).
    pub provider_poll: Option<PollSchedule>,
}

impl Default for Timing {
    /// Production timings: 10 min for reboots, 5 min for SSH to come back,
    /// 2 min for health (the original polled 12 × 5 s = 1 min), 30 min for
    /// snapshots and restores, 30 min for updates; polls from 2 s to 10 s.
    fn default() -> Self {
        Self {
            reboot: Duration::from_secs(600),
            ssh_back: Duration::from_secs(300),
            health: Duration::from_secs(120),
            snapshot: Duration::from_secs(1800),
            snapshot_restore: Duration::from_secs(1800),
            update: Duration::from_secs(1800),
            poll: PollSchedule::new(Duration::from_secs(2), Duration::from_secs(10)),
            provider_poll: None,
        }
    }
}

impl Timing {
    /// Timings for tests and simulators: a few seconds everywhere, polls of
    /// a few milliseconds.
    pub fn fast() -> Self {
        let short = Duration::from_secs(5);
        Self {
            reboot: short,
            ssh_back: Duration::from_secs(2),
            health: Duration::from_secs(1),
            snapshot: Duration::from_secs(20),
            snapshot_restore: Duration::from_secs(20),
            update: short,
            poll: PollSchedule::new(Duration::from_millis(5), Duration::from_millis(50)),
            provider_poll: Some(PollSchedule::new(
                Duration::from_millis(20),
                Duration::from_millis(200),
            )),
        }
    }

    /// Timings for the sandbox: simulators at 200× finish a reboot in well
    /// under a second, so polls are short; deadlines stay generous for
    /// slow machines.
    pub fn sandbox() -> Self {
        Self {
            reboot: Duration::from_secs(60),
            ssh_back: Duration::from_secs(20),
            health: Duration::from_secs(20),
            snapshot: Duration::from_secs(60),
            snapshot_restore: Duration::from_secs(60),
            update: Duration::from_secs(60),
            poll: PollSchedule::new(Duration::from_millis(20), Duration::from_millis(200)),
            provider_poll: Some(PollSchedule::new(
                Duration::from_millis(20),
                Duration::from_millis(250),
            )),
        }
    }
}

/// The operations' environment. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    /// Environment (SAFE_MODE, tokens, endpoint overrides).
    pub env: Env,
    /// The fleet store.
    pub store: FleetStore,
    /// The policy table applied before every operation.
    pub policy: Policy,
    /// Where requests come from.
    pub surface: Surface,
    /// The backup engine.
    pub engine: BackupEngine,
    /// Timings.
    pub timing: Timing,
    /// Provider endpoint overrides by provider id (simulators, proxies);
    /// `KASTELL_<ID>_ENDPOINT` is read when a provider has none here.
    pub endpoints: BTreeMap<String, String>,
    provider: Option<ProviderFactory>,
    transport: Option<TransportFactory>,
    platform: Option<PlatformFactory>,
    progress: Arc<dyn Progress>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("store", &self.store.dir())
            .field("surface", &self.surface)
            .field("timing", &self.timing)
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// A context over `store` for `surface`: the policy logs refusals to
    /// `security.log` in the store's directory, backups live there too,
    /// and the default factories are used.
    pub fn new(env: Env, store: FleetStore, surface: Surface) -> Self {
        let policy = Policy::for_dir(env.clone(), store.dir());
        let engine = BackupEngine::new(store.dir());
        Self {
            env,
            store,
            policy,
            surface,
            engine,
            timing: Timing::default(),
            endpoints: BTreeMap::new(),
            provider: None,
            transport: None,
            platform: None,
            progress: progress::none(),
        }
    }

    /// Reports steps to `progress` (the default ignores them).
    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = progress;
        self
    }

    /// Where operations report their steps.
    pub fn progress(&self) -> &dyn Progress {
        self.progress.as_ref()
    }

    /// The progress hook, shared, for work that outlives a borrow of the
    /// context (a transfer reported from the engine's streams).
    pub(super) fn progress_shared(&self) -> Arc<dyn Progress> {
        self.progress.clone()
    }

    /// Uses `timing` instead of the defaults.
    pub fn with_timing(mut self, timing: Timing) -> Self {
        self.timing = timing;
        self
    }

    /// Sends API calls for provider `id` to `url` (a simulator).
    pub fn with_endpoint(mut self, id: impl Into<String>, url: impl Into<String>) -> Self {
        self.endpoints.insert(id.into(), url.into());
        self
    }

    /// Builds providers with `factory` instead of the registry.
    pub fn with_provider_factory(mut self, factory: ProviderFactory) -> Self {
        self.provider = Some(factory);
        self
    }

    /// Builds transports with `factory` instead of SSH.
    pub fn with_transport_factory(mut self, factory: TransportFactory) -> Self {
        self.transport = Some(factory);
        self
    }

    /// Builds platforms with `factory` instead of the registry.
    pub fn with_platform_factory(mut self, factory: PlatformFactory) -> Self {
        self.platform = Some(factory);
        self
    }

    /// The API token of `provider`'s default account: the variable its
    /// registry entry names (`<PROVIDER>_TOKEN` when not compiled in),
    /// else the one `kastell auth set` stored; `None` when there is
    /// neither. Never logged.
    pub fn token(&self, provider: &str) -> Option<Secret> {
        self.token_for(provider, None)
    }

    /// The API token of `provider`'s `account` (the default one when
    /// `None`), found as [`crate::policy::find_token`] says: environment
    /// first, then stored.
    pub fn token_for(&self, provider: &str, account: Option<&str>) -> Option<Secret> {
        crate::policy::find_token(&self.env, Some(self.store.dir()), provider, account)
    }

    /// The endpoint override for `provider`: [`Context::endpoints`], else
    /// `KASTELL_<ID>_ENDPOINT`.
    pub fn endpoint(&self, provider: &str) -> Option<String> {
        self.endpoints.get(provider).cloned().or_else(|| {
            self.env.get_nonempty(&format!(
                "KASTELL_{}_ENDPOINT",
                provider.to_ascii_uppercase()
            ))
        })
    }

    /// The cloud provider of `record`. Refuses a manual server or one
    /// without a provider (`InvalidState`), a provider not compiled in
    /// (`Unsupported`) and a missing token (`Unauthenticated`).
    pub fn provider_for(&self, record: &ServerRecord) -> Result<Arc<dyn CloudProvider>> {
        if let Some(factory) = &self.provider {
            return factory(record);
        }
        self.provider_by_id(cloud_provider_id(record)?, record.account.as_deref())
    }

    /// The cloud provider `id` with `account`'s token (the default
    /// account's when `None`) and the endpoint override, for no server in
    /// particular (`server add` looking a server up by its IP). Refuses a
    /// provider not compiled in (`Unsupported`) and a missing token
    /// (`Unauthenticated`).
    pub fn provider_by_id(
        &self,
        id: &str,
        account: Option<&str>,
    ) -> Result<Arc<dyn CloudProvider>> {
        let entry = Registry::global().provider(id)?;
        let token =
            self.token_for(id, account).ok_or_else(|| {
                let var = TokenEnv::for_account(id, account).var;
                let named = account
                    .map(|a| format!(" (account {a})"))
                    .unwrap_or_default();
                Error::new(
                kastell_core::ErrorKind::Unauthenticated,
                format!("No API token found for {id}{named}"),
            )
            .with_hint(format!(
                "Set the {var} environment variable, or store it with `kastell auth set {id}{}`",
                account.map(|a| format!(" --account {a}")).unwrap_or_default()
            ))
            })?;
        (entry.build)(ProviderConfig {
            token,
            endpoint: self.endpoint(id),
            poll: self.timing.provider_poll,
            ..ProviderConfig::default()
        })
    }

    /// The cloud provider `id` for a server that is not in the fleet yet
    /// (the one a recovery creates there), with `account`'s token: built by
    /// the injected provider factory when there is one (asked with a
    /// placeholder record naming `id`), else as [`Context::provider_by_id`]
    /// builds it (refusing a provider not compiled in or without a token).
    pub fn provider_named(
        &self,
        id: &str,
        account: Option<&str>,
    ) -> Result<Arc<dyn CloudProvider>> {
        if let Some(factory) = &self.provider {
            let mut placeholder = ServerRecord::new("pending", format!("{id}-new"), "pending");
            placeholder.provider = Some(id.to_owned());
            placeholder.account = account.map(str::to_owned);
            return factory(&placeholder);
        }
        self.provider_by_id(id, account)
    }

    /// The transport to `record`, a server not in the store yet: its pinned
    /// host key is checked as always, and when it has none the key seen
    /// first is accepted without being written anywhere (the caller pins it
    /// in the record it stores). `KASTELL_STRICT_HOST_KEY` still refuses an
    /// unpinned host.
    pub(crate) fn transport_unstored(&self, record: &ServerRecord) -> Arc<dyn Transport> {
        match &self.transport {
            Some(factory) => factory(record),
            None => Arc::new(kastell_ssh::SshTransport::new(
                crate::engine::remote::ssh_config_pinning(record, &self.env, Arc::new(|_| Ok(()))),
            )),
        }
    }

    /// The transport to `record`: SSH with the record's settings, pinning a
    /// first-use host key (see [`crate::engine::remote::transport_for`]).
    pub fn transport_for(&self, record: &ServerRecord) -> Arc<dyn Transport> {
        match &self.transport {
            Some(factory) => factory(record),
            None => Arc::new(crate::engine::remote::transport_for(
                &self.store,
                record,
                &self.env,
            )),
        }
    }

    /// The platform of `record` over `transport`: the registry entry for
    /// its resolved platform (`bare` when it runs none), with its domain,
    /// backup paths and `platformOptions`. Refuses a platform not compiled
    /// in and options that are not an object of strings.
    pub fn platform_for(
        &self,
        record: &ServerRecord,
        transport: Arc<dyn Transport>,
    ) -> Result<Arc<dyn Platform>> {
        if let Some(factory) = &self.platform {
            return factory(record, transport);
        }
        let id = record.platform_id();
        let entry = Registry::global().platform(id)?;
        let mut options = platform_options(record)?;
        crate::state::platform_health::add_health_url(self.store.dir(), record, &mut options);
        let (root, privilege) = take_place(record, &mut options)?;
        (entry.build)(PlatformContext {
            transport,
            target: PlatformTarget {
                name: record.name.clone(),
                ip: record.ip.clone(),
                domain: record.domain.clone(),
                backup_paths: record.backup_paths.clone(),
            },
            root,
            privilege,
            options,
        })
    }

    /// Whether `provider`'s token is there (for [`Policy::check`]).
    pub fn token_present(&self, provider: &str) -> bool {
        self.token(provider).is_some()
    }

    /// Whether the token of `server`'s account at `provider` is there.
    pub fn token_present_for(&self, server: &ServerRecord, provider: &str) -> bool {
        self.token_for(provider, server.account.as_deref())
            .is_some()
    }

    /// Applies the policy and resolves the server, in the same order on
    /// both surfaces: SAFE_MODE first (before even looking the server up),
    /// then the server (`query` by IP, then name; `None` auto-selects the
    /// only server), whose record must pass `server add`'s rules
    /// ([`validate_record`](crate::state::store::validate_record): a hand-edited
    /// `servers.json` cannot aim kastell at a host name or a private
    /// address), then the safety level and the server rules (manual, token,
    /// platform). A refusal is logged to `security.log` once.
    pub fn admit(&self, op: OpId, query: Option<&str>) -> OpResult<Admitted> {
        // SAFE_MODE is decided before the server matters: the server is
        // looked up only to name it in the log and the refusal and to
        // address the suggestions (an unknown one keeps the refusal).
        let named = self.store.resolve(query).ok();
        if let Err(e) = self
            .policy
            .check_safe_mode(op, self.surface, named.as_ref())
        {
            return Err(self.refused(op, e, named.as_ref()));
        }
        let server = self.store.resolve(query).map_err(|e| self.unresolved(e))?;
        crate::state::store::validate_record(
            &server,
            crate::state::store::allow_private_ips(&self.env),
        )
        .map_err(|e| OpError::from(e).on(&server))?;
        let token = |p: &str| self.token_present_for(&server, p);
        let decision = self
            .policy
            .check(op, self.surface, Some(&server), token)
            .map_err(|e| self.refused(op, e, Some(&server)))?;
        Ok(Admitted { server, decision })
    }

    /// The store's refusal `err` to pick a server (`Server not found`,
    /// `Multiple servers found`), suggesting the fleet list when the policy
    /// allows it and there is a fleet to list.
    fn unresolved(&self, err: Error) -> OpError {
        let has_servers = self.store.servers().is_ok_and(|s| !s.is_empty());
        let candidates = unresolved_candidates(err.kind(), has_servers);
        OpError::from(err).with_suggestions(suggest(
            &self.policy,
            self.surface,
            None,
            |p| self.token_present(p),
            candidates,
        ))
    }

    /// The policy's refusal `err` of `op`, with the server when known and
    /// the allowed alternatives the original offered (see
    /// [`refusal_candidates`](super::suggest::refusal_candidates)), filtered through the policy.
    fn refused(&self, op: OpId, err: Error, server: Option<&ServerRecord>) -> OpError {
        let candidates = refusal_candidates(op, err.kind(), server);
        let mut refused = OpError::from(err);
        if let Some(server) = server {
            refused = refused.on(server);
        }
        refused.with_suggestions(suggest(
            &self.policy,
            self.surface,
            server,
            |p| server.map_or_else(|| self.token_present(p), |s| self.token_present_for(s, p)),
            candidates,
        ))
    }

    /// `candidates` that the policy allows on `server` now.
    pub fn suggest(&self, server: &ServerRecord, candidates: Vec<Candidate>) -> Vec<Suggestion> {
        suggest(
            &self.policy,
            self.surface,
            Some(server),
            |p| self.token_present_for(server, p),
            candidates,
        )
    }
}

/// A server the policy allowed an operation on.
#[derive(Debug, Clone)]
pub struct Admitted {
    /// The resolved server.
    pub server: ServerRecord,
    /// The policy's decision (token situation, notes).
    pub decision: Decision,
}

/// The provider id of a cloud server. Refuses manual servers and records
/// without a provider.
pub fn cloud_provider_id(record: &ServerRecord) -> Result<&str> {
    if record.is_manual() {
        return Err(Error::invalid_state(format!(
            "Server {} was added manually and has no provider id",
            record.name
        ))
        .with_hint("Provider operations need a cloud server; use SSH-based operations instead"));
    }
    record.provider_id().ok_or_else(|| {
        Error::invalid_state(format!("Server {} has no provider", record.name))
            .with_hint("Set its provider in servers.json, or re-add it with --provider")
    })
}

/// The provider's id of `record` as a validated [`ServerId`].
pub fn server_id(record: &ServerRecord) -> Result<ServerId> {
    ServerId::new(record.id.clone())
}

/// The `platformOptions` key of the directory a platform treats as the
/// server's `/` ([`PlatformContext::root`]).
pub const ROOT_OPTION: &str = "root";

/// The `platformOptions` key of how privileged commands get their rights
/// ([`PlatformContext::privilege`]): `auto`, `always` or `never`.
pub const SUDO_OPTION: &str = "sudo";

/// Confines the platform of `record` to `root` with `privilege`, as its
/// `platformOptions` say it (what the sandbox does for its fake hosts);
/// [`Context::platform_for`] reads them back into the typed
/// [`PlatformContext`] fields. Other platform options are kept.
pub fn confine_platform(record: &mut ServerRecord, root: &PlatformRoot, privilege: Privilege) {
    let mut options = match record.extra.remove(PLATFORM_OPTIONS_KEY) {
        Some(serde_json::Value::Object(options)) => options,
        _ => serde_json::Map::new(),
    };
    options.insert(ROOT_OPTION.to_owned(), root.as_str().into());
    options.insert(SUDO_OPTION.to_owned(), privilege.word().into());
    record
        .extra
        .insert(PLATFORM_OPTIONS_KEY.to_owned(), options.into());
}

/// Takes the root and sudo words out of `options` (the `platformOptions`
/// of `record`) as the typed root and privilege: the server's own `/` and
/// [`Privilege::Auto`] when absent. Refuses a root that is not an
/// absolute path free of `..` and an unknown sudo word, naming the server.
/// Where `record`'s platform lives on its server and how its commands
/// reach root (its `root` and `sudo` platform options). Refuses options
/// that are not valid.
pub(crate) fn place_of(record: &ServerRecord) -> Result<(PlatformRoot, Privilege)> {
    let mut options = platform_options(record)?;
    take_place(record, &mut options)
}

fn take_place(
    record: &ServerRecord,
    options: &mut BTreeMap<String, String>,
) -> Result<(PlatformRoot, Privilege)> {
    let in_record = |e: Error| {
        let message = format!(
            "{PLATFORM_OPTIONS_KEY} of server {}: {}",
            record.name,
            e.message()
        );
        e.with_message(message)
    };
    let root = match options.remove(ROOT_OPTION) {
        Some(root) => PlatformRoot::new(&root).map_err(in_record)?,
        None => PlatformRoot::default(),
    };
    let privilege = match options.remove(SUDO_OPTION) {
        Some(word) => Privilege::from_word(&word).map_err(in_record)?,
        None => Privilege::default(),
    };
    Ok((root, privilege))
}

/// The `platformOptions` object of `record`, as strings. Numbers and
/// booleans are accepted and turned into text; anything else is refused.
pub fn platform_options(record: &ServerRecord) -> Result<BTreeMap<String, String>> {
    let Some(value) = record.extra.get(PLATFORM_OPTIONS_KEY) else {
        return Ok(BTreeMap::new());
    };
    let invalid = || {
        Error::config_invalid(format!(
            "{PLATFORM_OPTIONS_KEY} of server {} must be an object of strings",
            record.name
        ))
        .with_hint("Fix it in servers.json, e.g. {\"sudo\": \"never\"}")
    };
    let object = value.as_object().ok_or_else(invalid)?;
    object
        .iter()
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Bool(_) | serde_json::Value::Number(_) => v.to_string(),
                _ => return Err(invalid()),
            };
            Ok((k.clone(), text))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_confined_record_reads_back_as_the_typed_root_and_privilege() {
        let mut record = ServerRecord::new("manual-1", "web-1", "203.0.113.10");
        record.extra.insert(
            PLATFORM_OPTIONS_KEY.to_owned(),
            serde_json::json!({"update_timeout_secs": "60"}),
        );
        let root = PlatformRoot::new("/srv/fake/").unwrap();
        confine_platform(&mut record, &root, Privilege::LoginUser);
        let mut options = platform_options(&record).unwrap();
        let (read_root, privilege) = take_place(&record, &mut options).unwrap();
        assert_eq!(read_root, root);
        assert_eq!(privilege, Privilege::LoginUser);
        let rest: Vec<&str> = options.keys().map(String::as_str).collect();
        assert_eq!(rest, ["update_timeout_secs"]);

        let mut plain = ServerRecord::new("manual-2", "web-2", "203.0.113.11");
        let mut none = platform_options(&plain).unwrap();
        let (root, privilege) = take_place(&plain, &mut none).unwrap();
        assert!(root.is_server_root());
        assert_eq!(privilege, Privilege::Auto);

        for bad in [
            serde_json::json!({"root": "relative"}),
            serde_json::json!({"sudo": "true"}),
        ] {
            plain.extra.insert(PLATFORM_OPTIONS_KEY.to_owned(), bad);
            let mut options = platform_options(&plain).unwrap();
            let err = take_place(&plain, &mut options).unwrap_err();
            assert_eq!(err.kind(), kastell_core::ErrorKind::ConfigInvalid);
            assert!(err.message().contains("server web-2"), "{err}");
        }
    }
}
