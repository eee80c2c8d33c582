// Shared by several test binaries; each uses part of it.
#![allow(dead_code, unused_imports)]

//! A fake Coolify or Dokploy host for engine tests: the testkit's
//! `PaasHost` (a private PostgreSQL cluster behind the `docker` shim, over
//! a sandbox sshd, with a local health endpoint).

use kastell::ServerRecord;
use kastell::engine::backup::BackupEngine;
use kastell_testkit::platform::{PaasHost, PaasRoundTrip};
use kastell_testkit::shim::PaasFlavour;

pub(crate) use kastell_testkit::platform::PaasHost as Host;

/// Which platform the host runs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Coolify,
    Dokploy,
}

impl Kind {
    pub(crate) fn database(self) -> &'static str {
        match self {
            Kind::Coolify => "coolify",
            Kind::Dokploy => "dokploy",
        }
    }

    /// What the shim logs when the platform's application is stopped.
    pub(crate) fn stop_marker(self) -> &'static str {
        match self {
            Kind::Coolify => "compose",
            Kind::Dokploy => "service scale",
        }
    }
}

pub(crate) fn start(kind: Kind) -> PaasHost {
    start_with(kind, &[])
}

/// [`start`], with `extra` platform options.
pub(crate) fn start_with(kind: Kind, extra: &[(&str, &str)]) -> PaasHost {
    PaasHost::start_with_options(&case(kind), extra)
}

/// The testkit's description of the platform `kind`.
pub(crate) fn case(kind: Kind) -> PaasRoundTrip {
    match kind {
        Kind::Coolify => PaasRoundTrip {
            build: kastell_coolify::build,
            flavour: PaasFlavour::Coolify,
            database: "coolify",
            config_file: "data/coolify/source/.env",
        },
        Kind::Dokploy => PaasRoundTrip {
            build: kastell_dokploy::build,
            flavour: PaasFlavour::Dokploy,
            database: "dokploy",
            config_file: "etc/dokploy/dokploy.yml",
        },
    }
}

pub(crate) fn record(kind: Kind) -> ServerRecord {
    let mut record = ServerRecord::new("manual-1", "paas-1", "127.0.0.1");
    record.platform = Some(kind.database().to_owned());
    record
}

pub(crate) fn engine(dir: &std::path::Path) -> BackupEngine {
    BackupEngine::new(dir)
}

/// A restore of backup `id` onto `host`'s platform as `record(kind)`, with
/// or without a safety backup first, healthy within 10 s.
pub(crate) fn restore_request(
    host: &PaasHost,
    kind: Kind,
    id: &kastell_core::types::BackupId,
    safety_backup: bool,
) -> kastell::engine::backup::RestoreRequest {
    kastell::engine::backup::RestoreRequest {
        server: record(kind),
        platform: host.platform.clone(),
        transport: host.transport.clone(),
        backup_id: id.clone(),
        safety_backup,
        host_key: None,
        transfer: kastell::engine::backup::TransferProgress::none(),
        health_deadline: std::time::Duration::from_secs(10),
    }
}
