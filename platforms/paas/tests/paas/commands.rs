//! Exact remote commands, version parsing and updates over a scripted
//! transport.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::{COMPOSE, SWARM, context, healthy_host, platform};
use kastell_core::memory::{MemoryTransport, Reply};
use kastell_core::types::{PlatformRoot, UpdateOptions};
use kastell_core::{ErrorKind, Platform, PlatformCapability, PlatformContext};
use kastell_paas::{PaasPlatform, commands};

#[tokio::test]
async fn commands_quote_every_value() {
    let p = PaasPlatform::new(
        &COMPOSE,
        PlatformContext {
            root: PlatformRoot::new("/srv/fake root/").unwrap(),
            ..context(healthy_host(&COMPOSE), &[])
        },
    )
    .unwrap();
    let s = p.settings();
    assert_eq!(
        commands::version(&COMPOSE).unwrap().as_str(),
        "docker inspect 'compose-app' --format '{{.Config.Image}}'"
    );
    assert_eq!(
        commands::pg_dump(&COMPOSE, "compose-db").unwrap().as_str(),
        "docker exec 'compose-db' pg_dump -Fc -Z0 -U 'appuser' -d 'appdb'"
    );
    assert_eq!(
        commands::pg_restore(&COMPOSE, "compose-db")
            .unwrap()
            .as_str(),
        "docker exec -i 'compose-db' pg_restore --clean --if-exists --single-transaction \
         --exit-on-error --no-owner -U 'appuser' -d 'appdb'"
    );
    assert_eq!(
        commands::psql_restore(&COMPOSE, "compose-db")
            .unwrap()
            .as_str(),
        "docker exec -i 'compose-db' psql -v ON_ERROR_STOP=1 --single-transaction -U 'appuser' -d 'appdb'"
    );
    assert_eq!(
        commands::find_container("swarm-postgres").unwrap().as_str(),
        "docker ps -qf 'name=swarm-postgres' --no-trunc | head -1"
    );
    assert_eq!(
        commands::untar_config(&COMPOSE, s).unwrap().as_str(),
        "tar -C '/srv/fake root/data/app' -xf -"
    );
    assert_eq!(
        commands::service(&COMPOSE, s, COMPOSE.services.stop)
            .unwrap()
            .as_str(),
        "cd '/srv/fake root/data/app/source' && docker compose stop"
    );
    assert_eq!(
        commands::service(&SWARM, s, SWARM.services.start_db)
            .unwrap()
            .as_str(),
        "docker service scale swarm-postgres=1"
    );
    let update = commands::update(&SWARM).unwrap();
    assert!(update.as_str().starts_with(
        "set -eu; d=$(mktemp -d); trap 'rm -rf \"$d\"' EXIT; curl -fsSL 'https://example.invalid/swarm.sh' -o \"$d/install.sh\";"
    ));
    assert!(update.as_str().ends_with("sh \"$d/install.sh\" 'update'"));
    assert!(
        commands::update(&COMPOSE)
            .unwrap()
            .as_str()
            .ends_with("bash \"$d/install.sh\"")
    );
}

#[tokio::test]
async fn stop_and_start_run_the_spec_commands_and_check_them() {
    let t = healthy_host(&COMPOSE);
    let p = platform(&COMPOSE, t.clone());
    assert_eq!(p.capability(), PlatformCapability::all());
    p.stop().await.unwrap();
    p.start().await.unwrap();
    assert_eq!(
        t.commands(),
        vec![
            "cd '/data/app/source' && docker compose stop",
            "cd '/data/app/source' && docker compose up -d",
        ]
    );
    t.on("cd ", Reply::exit(1, "no configuration file provided"));
    let err = p.start().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CommandFailed);
    assert!(err.message().contains("no configuration file provided"));
    assert_eq!(err.provider(), Some("compose"));
    assert!(err.hint().is_some());
}

#[tokio::test]
async fn version_is_the_image_tag_or_unknown() {
    let t = healthy_host(&COMPOSE);
    let p = platform(&COMPOSE, t.clone());
    assert_eq!(p.version().await.unwrap(), "4.0.1");
    t.on("docker inspect", Reply::ok(""));
    assert_eq!(p.version().await.unwrap(), "unknown");
    t.on(
        "docker inspect",
        Reply::exit(1, "Error: No such object: compose-app"),
    );
    assert_eq!(p.version().await.unwrap(), "unknown");
    t.set_reachable(false);
    assert_eq!(
        p.version().await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );
}

#[tokio::test]
async fn dry_run_update_changes_nothing() {
    let t = healthy_host(&SWARM);
    let p = platform(&SWARM, t.clone());
    let report = p
        .update(&UpdateOptions {
            dry_run: true,
            ..UpdateOptions::default()
        })
        .await
        .unwrap();
    assert_eq!(report.version_before.as_deref(), Some("4.0.1"));
    assert_eq!(report.version_after, None);
    assert_eq!(
        report.commands,
        vec![commands::update(&SWARM).unwrap().to_string()]
    );
    assert_eq!(
        t.commands(),
        vec!["docker inspect 'swarm' --format '{{.Config.Image}}'"]
    );
}

#[tokio::test]
async fn update_reports_versions_and_output() {
    let t = healthy_host(&COMPOSE);
    let p = platform(&COMPOSE, t.clone());
    let versions = Arc::new(std::sync::Mutex::new(vec!["4.0.2", "4.0.1"]));
    let v = versions.clone();
    t.on_fn("docker inspect", move |_, _| {
        let next = v.lock().unwrap().pop().unwrap_or("4.0.2");
        Reply::ok(format!("ghcr.io/x/compose:{next}\n"))
    });
    let report = p.update(&UpdateOptions::default()).await.unwrap();
    assert_eq!(report.version_before.as_deref(), Some("4.0.1"));
    assert_eq!(report.version_after.as_deref(), Some("4.0.2"));
    assert_eq!(report.output_tail, "installed");
    assert_eq!(report.hint, None);
    let cmds = t.commands();
    assert_eq!(cmds.len(), 3);
    assert!(cmds[1].starts_with("set -eu; d=$(mktemp -d)"));
}

#[tokio::test]
async fn failed_update_keeps_the_output_and_a_hint() {
    let t = healthy_host(&COMPOSE);
    let p = platform(&COMPOSE, t.clone());
    t.on("set -eu", Reply::exit(1, "E: disk full"));
    let err = p.update(&UpdateOptions::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CommandFailed);
    assert!(err.message().contains("exit code 1"));
    assert!(err.message().contains("E: disk full"));
    assert!(err.hint().is_some());
    assert_eq!(err.operation(), Some("update"));

    // Only stdout: it is what the error carries.
    t.on(
        "set -eu",
        Reply {
            status: 2,
            stdout: b"installer says no".to_vec(),
            ..Reply::default()
        },
    );
    let err = p.update(&UpdateOptions::default()).await.unwrap_err();
    assert!(err.message().contains("installer says no"));
}

#[tokio::test]
async fn install_runs_the_installer_and_says_what_it_installed() {
    let t = healthy_host(&COMPOSE);
    let p = platform(&COMPOSE, t.clone());
    let detail = p.install(Duration::from_secs(60)).await.unwrap();
    assert!(detail.contains("installed"), "{detail}");
    assert!(
        t.commands()
            .iter()
            .any(|c| c.starts_with("set -eu; d=$(mktemp -d)"))
    );
    t.on("set -eu", Reply::exit(1, "E: no space left"));
    let err = p.install(Duration::from_secs(60)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CommandFailed);
    assert!(err.message().contains("install failed"), "{err}");
    assert!(err.message().contains("E: no space left"), "{err}");
    assert_eq!(err.operation(), Some("install"));
}

#[tokio::test]
async fn update_timeout_comes_from_the_option() {
    let t = healthy_host(&COMPOSE);
    t.on("set -eu", Reply::ok("").after(Duration::from_secs(120)));
    let p = PaasPlatform::new(
        &COMPOSE,
        context(t.clone(), &[("update_timeout_secs", "1")]),
    )
    .unwrap();
    let err = p.update(&UpdateOptions::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(err.hint().unwrap().contains("update_timeout_secs"));
}

#[test]
fn bad_options_are_refused_at_build() {
    let t = Arc::new(MemoryTransport::new());
    let err = PaasPlatform::new(&COMPOSE, context(t, &[("health_url", "ftp://x")])).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConfigInvalid);
}
