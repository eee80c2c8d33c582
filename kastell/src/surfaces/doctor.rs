//! `kastell doctor`: what this build contains, whether the fleet store is
//! healthy, and whether a named server is reachable over SSH.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use kastell_core::wire::{CompressMode, WireCodec};
use kastell_core::{
    CloudCapability, ErrorReport, HostKeyInfo, PlatformCapability, Registry, RemoteCommand, Result,
    Transport, TransportExt,
};
use serde::Serialize;

use crate::engine::backup::wire::{
    HostTools, LinkSample, choose, local_cores, measure_link, probe_tools_measured,
};
use crate::engine::remote::transport_for;
use crate::env::Env;
use crate::state::store::{FleetStore, ServerRecord};

/// Time allowed for each SSH probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

/// Everything `kastell doctor` found.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DoctorReport {
    /// kastell's version.
    pub version: &'static str,
    /// First-party features compiled in.
    pub features: Vec<&'static str>,
    /// Cloud providers this build knows, sorted by id.
    pub providers: Vec<ProviderStatus>,
    /// Platforms this build knows, sorted by id.
    pub platforms: Vec<PlatformStatus>,
    /// The fleet store's health.
    pub store: StoreHealth,
    /// The named server's SSH check, when a server was named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerCheck>,
}

impl DoctorReport {
    /// Whether nothing needs attention.
    pub(crate) fn healthy(&self) -> bool {
        self.store.problems.is_empty() && self.server.as_ref().is_none_or(|s| s.reachable)
    }
}

/// One registered provider.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProviderStatus {
    /// Registry id.
    pub id: &'static str,
    /// Human name.
    pub display_name: &'static str,
    /// The environment variable holding its token.
    pub token_env: &'static str,
    /// Whether its default account's token is there: that variable set,
    /// or one stored with `kastell auth set` (never shown).
    pub token_set: bool,
    /// What it supports.
    pub capability: CloudCapability,
}

/// One registered platform.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PlatformStatus {
    /// Registry id.
    pub id: &'static str,
    /// Human name.
    pub display_name: &'static str,
    /// What it supports.
    pub capability: PlatformCapability,
}

/// The fleet store's health.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoreHealth {
    /// Path of `servers.json`.
    pub path: String,
    /// Whether the file exists (a missing file is an empty fleet).
    pub exists: bool,
    /// Servers in the file.
    pub servers: usize,
    /// Things that need fixing.
    pub problems: Vec<String>,
    /// Things worth knowing.
    pub notes: Vec<String>,
}

/// The result of probing one server over SSH.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ServerCheck {
    /// Server name.
    pub name: String,
    /// Address used.
    pub ip: String,
    /// SSH user.
    pub user: String,
    /// SSH port.
    pub port: u16,
    /// Whether a command ran.
    pub reachable: bool,
    /// Connect, authenticate and run a first command, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_ms: Option<u64>,
    /// Round trip of one command on an open session, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// The host key and how it was trusted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_key: Option<HostKeyInfo>,
    /// The kernel boot id (changes on every boot).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// The compressors the host runs (zstd, pigz, gzip) and its cores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compressors: Option<HostTools>,
    /// The link's steady rate, from a sample of random bytes from the host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<LinkSample>,
    /// The link sample in MB/s (10^6 bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_mb_per_sec: Option<f64>,
    /// What `backup create --compress auto` would do on this link, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression_plan: Option<String>,
    /// Why it was not reachable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReport>,
}

/// Collects the report. Store problems are reported, not returned as
/// errors; only naming a server that cannot be resolved fails.
pub(crate) async fn diagnose(
    store: &FleetStore,
    env: &Env,
    server: Option<&str>,
) -> Result<DoctorReport> {
    let registry = Registry::global();
    let providers = registry
        .providers()
        .map(|entry| ProviderStatus {
            id: entry.id,
            display_name: entry.display_name,
            token_env: entry.token_env,
            token_set: crate::policy::find_token(env, Some(store.dir()), entry.id, None).is_some(),
            capability: entry.capability,
        })
        .collect();
    let platforms = registry
        .platforms()
        .map(|entry| PlatformStatus {
            id: entry.id,
            display_name: entry.display_name,
            capability: entry.capability,
        })
        .collect();
    let check = match server.filter(|s| !s.trim().is_empty()) {
        Some(query) => {
            let record = store.resolve(Some(query))?;
            Some(probe(store, &record, env).await)
        }
        None => None,
    };
    Ok(DoctorReport {
        version: env!("CARGO_PKG_VERSION"),
        features: crate::build::enabled_features(),
        providers,
        platforms,
        store: store_health(store, env),
        server: check,
    })
}

fn mode_of(path: &Path) -> Option<u32> {
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o777)
}

fn store_health(store: &FleetStore, env: &Env) -> StoreHealth {
    let path = store.path();
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    if let Some(mode) = mode_of(store.dir()) {
        if mode & 0o077 != 0 {
            problems.push(format!(
                "{} is accessible to other users (mode {mode:o}); run: chmod 700 {}",
                store.dir().display(),
                store.dir().display()
            ));
        }
    }
    let exists = path.exists();
    if let Some(mode) = mode_of(path) {
        if mode & 0o077 != 0 {
            problems.push(format!(
                "{} is readable by other users (mode {mode:o}); run: chmod 600 {}",
                path.display(),
                path.display()
            ));
        }
    }
    let servers = match store.servers() {
        Ok(servers) => {
            check_records(&servers, &mut problems, &mut notes);
            let allow_private = crate::state::store::allow_private_ips(env);
            for record in &servers {
                if let Err(e) = crate::state::store::validate_record(record, allow_private) {
                    problems.push(format!("{e}; operations on it are refused"));
                }
            }
            servers.len()
        }
        Err(e) => {
            problems.push(match e.hint() {
                Some(hint) => format!("{e} ({hint})"),
                None => e.to_string(),
            });
            0
        }
    };
    check_safety_and_audit(store.dir(), env, &mut problems, &mut notes);
    if store.dir().join(crate::state::store::LOCK_DIR).exists() {
        notes.push("servers.json is locked by a running kastell (or a stale lock that the next write will clear)".to_owned());
    }
    StoreHealth {
        path: path.display().to_string(),
        exists,
        servers,
        problems,
        notes,
    }
}

/// The safety levels in force (a broken `safety.json` is a problem: it
/// refuses everything but reads) and the audit log's chain (a broken one
/// is a problem, an intact one a note with its length).
fn check_safety_and_audit(
    dir: &Path,
    env: &Env,
    problems: &mut Vec<String>,
    notes: &mut Vec<String>,
) {
    match crate::policy::SafetyConfig::load(env, Some(dir)) {
        Ok(config) if config.configured() => notes.push(format!(
            "safety levels are configured ({}{}); operations above a server's level are refused",
            if config.file.is_some() {
                crate::policy::SAFETY_FILE
            } else {
                ""
            },
            match config.ceiling {
                Some(level) if config.file.is_some() => {
                    format!(", capped at {level} by {}", crate::policy::SAFETY_LEVEL_VAR)
                }
                Some(level) => format!("{}={level}", crate::policy::SAFETY_LEVEL_VAR),
                None => String::new(),
            }
        )),
        Ok(_) => {}
        Err(e) => problems.push(format!(
            "{e}{}; everything but reads is refused until it is fixed",
            e.hint().map(|h| format!(" ({h})")).unwrap_or_default()
        )),
    }
    let audit = crate::state::audit::AuditLog::for_env(dir, env).and_then(|log| log.verify());
    match audit {
        Ok(report) if report.ok && report.entries_checked > 0 => {
            notes.push(format!("audit log intact: {}", report.summary()))
        }
        Ok(report) if report.ok => {}
        Ok(report) => problems.push(format!(
            "the audit log is not intact: {}; run kastell audit verify",
            report
                .problem
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_else(|| report.summary())
        )),
        Err(e) => problems.push(format!("the audit log cannot be read: {e}")),
    }
}

fn check_records(servers: &[ServerRecord], problems: &mut Vec<String>, notes: &mut Vec<String>) {
    let mut names = BTreeSet::new();
    for record in servers {
        if !names.insert(record.name.as_str()) {
            problems.push(format!(
                "server name {:?} appears more than once",
                record.name
            ));
        }
        if let Some(provider) = record.unknown_provider() {
            notes.push(format!(
                "server {:?} has provider {provider:?}, which this build does not know; it is kept but not managed",
                record.name
            ));
        }
        if record.host_key().is_none() {
            notes.push(format!(
                "server {:?} has no pinned host key yet; the first connection will pin it",
                record.name
            ));
        }
    }
}

async fn probe(store: &FleetStore, record: &ServerRecord, env: &Env) -> ServerCheck {
    let transport = transport_for(store, record, env);
    let target = transport.target().clone();
    let mut check = ServerCheck {
        name: record.name.clone(),
        ip: record.ip.clone(),
        user: target.user,
        port: target.port,
        reachable: false,
        connect_ms: None,
        latency_ms: None,
        host_key: None,
        boot_id: None,
        compressors: None,
        link: None,
        link_mb_per_sec: None,
        compression_plan: None,
        error: None,
    };
    let probe = RemoteCommand::fixed("true");
    let started = Instant::now();
    if let Err(e) = transport.exec_checked(&probe, PROBE_TIMEOUT).await {
        check.error = Some(e.report());
        return check;
    }
    check.connect_ms = Some(started.elapsed().as_millis() as u64);
    check.reachable = true;
    let started = Instant::now();
    if transport.exec_checked(&probe, PROBE_TIMEOUT).await.is_ok() {
        check.latency_ms = Some(started.elapsed().as_millis() as u64);
    }
    check.host_key = transport.host_key().await.ok();
    check.boot_id = transport.boot_id().await.ok();
    if let Ok(tools) = probe_tools_measured(&transport).await {
        let round_trip = Duration::from_micros(tools.round_trip_micros);
        check.link = measure_link(&transport, round_trip).await.ok();
        check.link_mb_per_sec = check.link.map(|l| (l.bytes_per_sec() / 1e5).round() / 10.0);
        let plan = choose(CompressMode::Auto, &tools, check.link, local_cores());
        check.compression_plan = Some(match plan.codec {
            WireCodec::Raw => format!("raw over SSH, zstd locally: {}", plan.reason),
            codec => format!("{codec} on the server: {}", plan.reason),
        });
        check.compressors = Some(tools);
    }
    check
}
