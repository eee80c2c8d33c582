//! The platform secret over a scripted transport: the exact commands, the
//! specs refused, errors and hints, and that no value reaches a log line
//! (every `tracing` event recorded), a report or a `Debug` output.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::{COMPOSE, DUMP, SWARM, TAR, context};
use kastell_core::memory::{MemoryArtifacts, MemoryTransport, Reply};
use kastell_core::types::StepStatus;
use kastell_core::{ErrorKind, Platform};
use kastell_paas::{PaasPlatform, PaasSpec, SecretSpec, commands};

const SECRET: &str = "hunter2-swarm-secret-value";
const OTHER: &str = "another-servers-secret";
const APP: &str = "a11ce0000000000000000000000000000000000000000000000000000000beef";

const SECRETIVE: PaasSpec = PaasSpec {
    secret: SecretSpec::SwarmSecret {
        service: "swarm",
        name: "swarm-auth",
        override_var: Some("ENCRYPTION_KEY"),
    },
    ..SWARM
};

fn spec_json(env: &[&str], mounted: bool) -> String {
    let env: Vec<String> = env.iter().map(|e| format!("\"{e}\"")).collect();
    let secrets = if mounted {
        r#","Secrets":[{"File":{"Name":"swarm-auth"},"SecretID":"id1","SecretName":"swarm-auth"}]"#
    } else {
        ""
    };
    format!(r#"{{"Image":"x","Env":[{}]{secrets}}}"#, env.join(","))
}

/// A healthy host of [`SECRETIVE`] whose task holds `secret`.
fn host(secret: &'static str) -> Arc<MemoryTransport> {
    let t = common::healthy_host(&SECRETIVE);
    t.on("docker service inspect", Reply::ok(spec_json(&[], true)));
    t.on(
        "docker ps -q --no-trunc --filter 'label=",
        Reply::ok(format!("{APP}\n")),
    );
    t.on(&format!("docker exec '{APP}' cat"), Reply::ok(secret));
    t.on("docker secret ls", Reply::ok("id1 swarm-auth\nid9 other\n"));
    t.on("docker secret create", Reply::ok("id2\n"));
    t.on("docker secret rm", Reply::ok("swarm-auth\n"));
    t.on("docker service update", Reply::ok("swarm\n"));
    t.on("n='ENCRYPTION_KEY'", Reply::ok("swarm\n"));
    t
}

#[test]
fn the_new_commands_quote_every_value() {
    assert_eq!(
        commands::find_service_task("dokploy").unwrap().as_str(),
        "docker ps -q --no-trunc --filter 'label=com.docker.swarm.service.name=dokploy' | head -1"
    );
    assert_eq!(
        commands::container_cat("abc", "/run/secrets/dokploy-auth-secret")
            .unwrap()
            .as_str(),
        "docker exec 'abc' cat '/run/secrets/dokploy-auth-secret'"
    );
    assert_eq!(
        commands::secret_create("dokploy-auth-secret")
            .unwrap()
            .as_str(),
        "docker secret create 'dokploy-auth-secret' -"
    );
    assert_eq!(
        commands::service_secret_rm("dokploy", "dokploy-auth-secret")
            .unwrap()
            .as_str(),
        "docker service update --secret-rm 'dokploy-auth-secret' 'dokploy'"
    );
    assert_eq!(
        commands::service_secret_add("dokploy", "dokploy-auth-secret")
            .unwrap()
            .as_str(),
        "docker service update --secret-add 'dokploy-auth-secret' 'dokploy'"
    );
    let set = commands::service_env_set_from_stdin("dokploy", "ENCRYPTION_KEY", None).unwrap();
    assert!(
        set.as_str()
            .ends_with("docker service update --env-add \"$n\" 'dokploy'"),
        "{}",
        set.as_str()
    );
    assert_eq!(
        commands::service_env_rm("dokploy", &["A", "A_FILE"])
            .unwrap()
            .as_str(),
        "docker service update --env-rm 'A' --env-rm 'A_FILE' 'dokploy'"
    );
    assert!(commands::service_env_rm("dokploy", &[]).is_err());
    let p = PaasPlatform::new(&COMPOSE, context(common::healthy_host(&COMPOSE), &[])).unwrap();
    assert_eq!(
        commands::untar_config_except(&COMPOSE, p.settings(), "source/.env")
            .unwrap()
            .as_str(),
        "tar -C '/data/app' --exclude='source/.env' -xf -"
    );
}

#[test]
fn specs_whose_secret_cannot_be_kept_are_refused() {
    const OUTSIDE: PaasSpec = PaasSpec {
        secret: SecretSpec::EnvKey {
            file: "elsewhere/.env",
            key: "APP_KEY",
            previous: "APP_PREVIOUS_KEYS",
        },
        ..COMPOSE
    };
    const BAD_VAR: PaasSpec = PaasSpec {
        secret: SecretSpec::SwarmSecret {
            service: "swarm",
            name: "swarm-auth",
            override_var: Some("NOT A NAME"),
        },
        ..SWARM
    };
    for spec in [&OUTSIDE, &BAD_VAR] {
        let err = PaasPlatform::new(spec, context(common::healthy_host(spec), &[])).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConfigInvalid, "{err}");
        assert_eq!(err.operation(), Some("build"));
    }
}

#[tokio::test]
async fn the_backup_reads_the_secret_before_the_dump_and_writes_it_last() {
    let t = host(SECRET);
    let p = common::platform(&SECRETIVE, t.clone());
    let mut store = MemoryArtifacts::new();
    let report = p.backup(&mut store).await.unwrap();
    let names: Vec<&str> = report.artifacts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        ["swarm-db.dump", "swarm-config.tar", "swarm-platform-secret"]
    );
    assert_eq!(store.bytes("swarm-db.dump").unwrap(), DUMP);
    assert_eq!(store.bytes("swarm-config.tar").unwrap(), TAR);
    assert_eq!(
        store.bytes("swarm-platform-secret").unwrap(),
        SECRET.as_bytes()
    );
    let cmds = t.commands();
    let read = cmds
        .iter()
        .position(|c| c.contains(" cat '/run/secrets/swarm-auth'"));
    let dump = cmds.iter().position(|c| c.contains("pg_dump"));
    assert!(read.unwrap() < dump.unwrap(), "{cmds:#?}");
}

#[tokio::test]
async fn an_unreadable_secret_fails_with_stderr_only() {
    let t = host(SECRET);
    t.on(
        &format!("docker exec '{APP}' cat"),
        Reply {
            status: 126,
            stdout: SECRET.as_bytes().to_vec(),
            stderr: b"OCI runtime exec failed: permission denied".to_vec(),
            ..Reply::default()
        },
    );
    let p = common::platform(&SECRETIVE, t.clone());
    let err = p.backup(&mut MemoryArtifacts::new()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CommandFailed, "{err}");
    assert!(err.message().contains("permission denied"), "{err}");
    assert!(err.hint().is_some());
    assert!(!format!("{err:?}").contains(SECRET));

    // Mounted, but the file is not there: not a pre-secret Dokploy.
    t.on(
        &format!("docker exec '{APP}' cat"),
        Reply::exit(1, "cat: /run/secrets/swarm-auth: No such file or directory"),
    );
    let err = p.backup(&mut MemoryArtifacts::new()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

    // Neither mounted nor there, no ENCRYPTION_KEY: a warning.
    t.on(
        "docker service inspect",
        Reply::ok(spec_json(&["A=1"], false)),
    );
    let report = p.backup(&mut MemoryArtifacts::new()).await.unwrap();
    assert_eq!(report.artifacts.len(), 2);
    assert!(
        report.warnings[0].contains("no platform secret"),
        "{report:?}"
    );

    // The service cannot be inspected: an error naming it, with a hint.
    t.on(
        "docker service inspect",
        Reply::exit(1, "Error: no such service: swarm"),
    );
    let err = p.backup(&mut MemoryArtifacts::new()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CommandFailed, "{err}");
    assert!(err.hint().unwrap().contains("docker service ls"), "{err:?}");
}

#[tokio::test]
async fn a_failed_database_restore_after_a_new_secret_says_so() {
    let mut store = MemoryArtifacts::new();
    common::platform(&SECRETIVE, host(SECRET))
        .backup(&mut store)
        .await
        .unwrap();
    let t = host(OTHER);
    t.on("docker exec -i", Reply::exit(1, "pg_restore: error: boom"));
    let p = common::platform(&SECRETIVE, t.clone());
    p.backup(&mut MemoryArtifacts::new()).await.unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    t.on_fn("docker secret create", move |_, stdin| {
        s.lock().unwrap().push(stdin.to_vec());
        Reply::ok("id2\n")
    });
    let report = p.restore(&store).await;
    assert_eq!(report.steps[0].status, StepStatus::Success);
    assert_eq!(
        report.steps[0].detail.as_deref(),
        Some("platform secret restored: replaced a different one")
    );
    assert_eq!(*seen.lock().unwrap(), [SECRET.as_bytes().to_vec()]);
    let err = report.error.unwrap();
    assert!(
        err.message().starts_with("Restore database failed"),
        "{err}"
    );
    assert!(
        err.hint()
            .unwrap()
            .contains("The platform secret was already replaced by the backup's"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_key_with_a_nul_byte_is_refused_before_any_change() {
    let mut store = MemoryArtifacts::new();
    let t = host(SECRET);
    t.on(
        "docker service inspect",
        Reply::ok(spec_json(&["ENCRYPTION_KEY_FILE=/k"], true)),
    );
    t.on(
        &format!("docker exec '{APP}' cat '/k'"),
        Reply::ok(&b"k\0y"[..]),
    );
    common::platform(&SECRETIVE, t)
        .backup(&mut store)
        .await
        .unwrap();
    assert_eq!(store.bytes("swarm-platform-key").unwrap(), b"k\0y");
    let t = host(SECRET);
    let p = common::platform(&SECRETIVE, t.clone());
    let report = p.restore(&store).await;
    assert_eq!(report.error.unwrap().kind(), ErrorKind::InvalidInput);
    assert!(t.commands().is_empty(), "{:?}", t.commands());
}

/// Records every `tracing` event and span field, as text.
struct Recorder {
    text: Arc<Mutex<String>>,
    ids: AtomicU64,
}

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
}

impl tracing::Subscriber for Recorder {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut text = self.text.lock().unwrap();
        span.record(&mut Fields(&mut text));
        tracing::span::Id::from_u64(self.ids.fetch_add(1, Ordering::Relaxed) + 1)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        values.record(&mut Fields(&mut self.text.lock().unwrap()));
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut text = self.text.lock().unwrap();
        text.push('\n');
        event.record(&mut Fields(&mut text));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test]
async fn no_secret_reaches_a_log_a_report_or_a_debug_output() {
    let text = Arc::new(Mutex::new(String::new()));
    let _guard = tracing::subscriber::set_default(Recorder {
        text: text.clone(),
        ids: AtomicU64::new(0),
    });
    tracing::debug!(probe = "recorder works", "probe");

    let t = host(SECRET);
    t.on(
        "docker service inspect",
        Reply::ok(spec_json(&["ENCRYPTION_KEY=hunter2-env-key"], true)),
    );
    // An option it does not use: a debug event of the crate's own.
    let p = PaasPlatform::new(&SECRETIVE, context(t.clone(), &[("unused_option", "x")])).unwrap();
    let mut store = MemoryArtifacts::new();
    let backup = p.backup(&mut store).await.unwrap();
    assert_eq!(
        store.bytes("swarm-platform-key").unwrap(),
        b"hunter2-env-key"
    );

    let target = host(OTHER);
    let q = common::platform(&SECRETIVE, target.clone());
    q.backup(&mut MemoryArtifacts::new()).await.unwrap();
    let restore = q.restore(&store).await;
    assert!(restore.error.is_none(), "{restore:?}");
    let detail = restore.steps[0].detail.clone().unwrap();
    assert_eq!(
        detail,
        "platform secret restored: replaced a different one; ENCRYPTION_KEY: created"
    );

    let log = text.lock().unwrap().clone();
    assert!(log.contains("recorder works"), "{log}");
    assert!(
        log.contains("unused_option"),
        "the crate's own events: {log}"
    );
    let shown = format!(
        "{log}\n{backup:?}\n{}\n{restore:?}\n{}\n{p:?}\n{q:?}\n{:?}\n{:?}",
        serde_json::to_string(&backup).unwrap(),
        serde_json::to_string(&restore.steps).unwrap(),
        t.commands(),
        target.commands(),
    );
    for value in ["hunter2", OTHER] {
        assert!(!shown.contains(value), "{value} shows in: {shown}");
    }
}
