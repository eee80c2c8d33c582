//! Shared helpers: two specs shaped like the real platforms (a fixed
//! container with a compose directory, and a looked-up container with
//! Swarm commands) and a scripted memory transport.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::sync::Arc;

use kastell_core::memory::{MemoryTransport, Reply};
use kastell_core::{PlatformContext, PlatformTarget};
use kastell_paas::{
    AppsSpec, ConfigSpec, DbContainer, Interpreter, LogSpec, PaasPlatform, PaasSpec, SecretSpec,
    ServiceSpec, UpdateSpec,
};

pub const COMPOSE: PaasSpec = PaasSpec {
    id: "compose",
    display_name: "Compose",
    health_port: 8000,
    version_container: "compose-app",
    db_container: DbContainer::Fixed("compose-db"),
    db_user: "appuser",
    db_name: "appdb",
    config: ConfigSpec {
        base: "/data/app",
        entries: &["source/.env", "source/docker-compose.yml", "ssh/keys"],
    },
    services: ServiceSpec {
        dir: Some("/data/app/source"),
        stop: "cd {} && docker compose stop",
        start: "cd {} && docker compose up -d",
        start_db: "cd {} && docker compose up -d postgres",
    },
    update: UpdateSpec {
        url: "https://example.invalid/install.sh",
        interpreter: Interpreter::Bash,
        argument: None,
    },
    log: LogSpec::Container("compose-app"),
    secret: SecretSpec::None,
    apps: AppsSpec::NONE,
};

pub const SWARM: PaasSpec = PaasSpec {
    id: "swarm",
    display_name: "Swarm",
    health_port: 3000,
    version_container: "swarm",
    db_container: DbContainer::NameFilter("swarm-postgres"),
    db_user: "swarm",
    db_name: "swarm",
    config: ConfigSpec {
        base: "/etc/swarm",
        entries: &["."],
    },
    services: ServiceSpec {
        dir: None,
        stop: "docker service scale swarm=0",
        start: "docker service scale swarm=1",
        start_db: "docker service scale swarm-postgres=1",
    },
    update: UpdateSpec {
        url: "https://example.invalid/swarm.sh",
        interpreter: Interpreter::Sh,
        argument: Some("update"),
    },
    log: LogSpec::SwarmService("swarm-app"),
    secret: SecretSpec::None,
    apps: AppsSpec::NONE,
};

pub const DUMP: &[u8] = b"PGDMP fake custom dump";
pub const TAR: &[u8] = b"fake tar bytes";
pub const SWARM_ID: &str = "0123456789abcdef0123456789abcdef";

/// A transport answering what a healthy host of `spec` would.
pub fn healthy_host(spec: &PaasSpec) -> Arc<MemoryTransport> {
    let t = MemoryTransport::new();
    t.on(
        "docker inspect",
        Reply::ok(format!("ghcr.io/x/{}:4.0.1\n", spec.id)),
    );
    t.on("docker ps -qf", Reply::ok(format!("{SWARM_ID}\n")));
    t.on("docker exec", Reply::ok(DUMP.to_vec()));
    t.on("d=", Reply::ok(spec.config.entries.join("\n")));
    t.on("printf", Reply::ok(TAR.to_vec()));
    t.on("tar -C", Reply::ok(""));
    t.on("cd ", Reply::ok(""));
    t.on("docker service", Reply::ok(""));
    t.on("set -eu", Reply::ok("installed\n"));
    Arc::new(t)
}

pub fn context(transport: Arc<MemoryTransport>, options: &[(&str, &str)]) -> PlatformContext {
    PlatformContext {
        transport,
        target: PlatformTarget {
            name: "web-1".into(),
            ip: "127.0.0.1".into(),
            domain: None,
            backup_paths: Vec::new(),
        },
        root: Default::default(),
        privilege: Default::default(),
        options: options
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
    }
}

pub fn platform(spec: &'static PaasSpec, transport: Arc<MemoryTransport>) -> PaasPlatform {
    PaasPlatform::new(spec, context(transport, &[])).unwrap()
}
