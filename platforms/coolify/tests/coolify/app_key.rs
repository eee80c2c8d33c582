//! Coolify's platform secret, `APP_KEY` in `source/.env`, over a real sshd
//! and the Coolify shim: a restore writes the backup's `.env` before the
//! database starts, the backup's key winning and the server's former key
//! kept in `APP_PREVIOUS_KEYS`.

use std::os::unix::fs::PermissionsExt;

use kastell_core::memory::MemoryArtifacts;
use kastell_core::types::{StepReport, StepStatus};
use kastell_testkit::platform::{PaasHost, PaasRoundTrip, steps_json};
use kastell_testkit::shim::PaasFlavour;

const CASE: PaasRoundTrip = PaasRoundTrip {
    build: kastell_coolify::build,
    flavour: PaasFlavour::Coolify,
    database: "coolify",
    config_file: "data/coolify/source/.env",
};

const ENV: &str = "data/coolify/source/.env";
const BACKUP_KEY: &str = "base64:YmFja3VwLWtleS1iYWNrdXAta2V5LWJhY2t1cC0wMQ==";
const SERVER_KEY: &str = "base64:c2VydmVyLWtleS1zZXJ2ZXIta2V5LXNlcnZlci0wMg==";
const OLDER_KEY: &str = "base64:b2xkZXIta2V5LW9sZGVyLWtleS1vbGRlci1rZXktMDM=";

fn env_of(host: &PaasHost) -> String {
    std::fs::read_to_string(host.shim.root_path(ENV)).unwrap()
}

fn set_env(host: &PaasHost, text: &str) {
    std::fs::write(host.shim.root_path(ENV), text).unwrap();
}

/// The value of `key` in a dotenv text.
fn value(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(str::to_owned)
}

/// A host whose `.env` has `BACKUP_KEY`, backed up.
async fn backed_up() -> (PaasHost, MemoryArtifacts, String) {
    let host = PaasHost::start(&CASE);
    host.pg
        .execute(
            "coolify",
            "CREATE TABLE apps (id int); INSERT INTO apps VALUES (1);",
        )
        .unwrap();
    let text = format!(
        "# backup .env\nAPP_ID=backup\nAPP_KEY={BACKUP_KEY}\nDB_PASSWORD=backup-db-password\n"
    );
    set_env(&host, &text);
    let mut store = MemoryArtifacts::new();
    let report = host.platform.backup(&mut store).await.unwrap();
    assert!(report.warnings.is_empty(), "{report:?}");
    (host, store, text)
}

/// Stop, restore, start (the engine's order); the restore's steps and the
/// target's command log of the restore alone.
async fn restore_onto(
    target: &PaasHost,
    store: &MemoryArtifacts,
) -> (Vec<StepReport>, Vec<String>) {
    target.platform.stop().await.unwrap();
    target.shim.clear_commands().unwrap();
    let report = target.platform.restore(store).await;
    let log = target.shim.commands();
    target.platform.start().await.unwrap();
    (report.into_result().unwrap(), log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_key_is_in_place_before_the_database_starts() {
    let (_source, store, _) = backed_up().await;
    let target = PaasHost::start(&CASE);
    set_env(&target, &format!("APP_KEY={SERVER_KEY}\n"));
    target.platform.stop().await.unwrap();
    // The database never starts: what ran before it is all that ran.
    target
        .shim
        .fail_next("up -d postgres", 1, "postgres: simulated failure")
        .unwrap();
    let report = target.platform.restore(&store).await;
    target.platform.start().await.unwrap();
    let names: Vec<&str> = report.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["Restore platform secret", "Start database"]);
    assert!(report.error.is_some());
    let env = env_of(&target);
    assert_eq!(value(&env, "APP_KEY").as_deref(), Some(BACKUP_KEY), "{env}");
    assert_eq!(
        value(&env, "APP_PREVIOUS_KEYS").as_deref(),
        Some(SERVER_KEY),
        "{env}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_onto_another_app_key_keeps_it_in_app_previous_keys() {
    let (_source, store, backup_env) = backed_up().await;
    let target = PaasHost::start(&CASE);
    set_env(
        &target,
        &format!("APP_ID=target\nAPP_KEY=\"{SERVER_KEY}\"\nAPP_PREVIOUS_KEYS={OLDER_KEY}\n"),
    );
    let compose = target
        .shim
        .root_path("data/coolify/source/docker-compose.yml");
    std::fs::write(&compose, "overwritten\n").unwrap();

    let (steps, log) = restore_onto(&target, &store).await;
    assert_eq!(steps[0].name, "Restore platform secret");
    assert_eq!(steps[0].status, StepStatus::Success);
    let detail = steps[0].detail.as_deref().unwrap();
    assert!(
        detail.starts_with("platform secret restored: replaced a different one"),
        "{detail}"
    );
    assert!(detail.contains("kept in APP_PREVIOUS_KEYS"), "{detail}");

    let env = env_of(&target);
    assert_eq!(value(&env, "APP_KEY").as_deref(), Some(BACKUP_KEY), "{env}");
    assert_eq!(
        value(&env, "APP_PREVIOUS_KEYS"),
        Some(format!("{SERVER_KEY},{OLDER_KEY}")),
        "{env}"
    );
    assert_eq!(value(&env, "APP_ID").as_deref(), Some("backup"), "{env}");
    assert_eq!(
        value(&env, "DB_PASSWORD").as_deref(),
        Some("backup-db-password")
    );
    assert!(env.starts_with("# backup .env\n"), "{env}");
    // The archive's mode (the shim seeds 0666).
    let mode = std::fs::metadata(target.shim.root_path(ENV))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o666);

    // The configuration extraction left the .env alone and restored the
    // rest.
    let config = steps.iter().find(|s| s.name == "Restore config").unwrap();
    assert!(
        config
            .detail
            .as_deref()
            .unwrap()
            .contains("all but source/.env, written with the platform secret"),
        "{config:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&compose).unwrap(),
        "# kastell-shim coolify docker-compose.yml\nservices:\n  coolify:\n    image: ghcr.io/coollabsio/coolify\n  postgres:\n    image: postgres:15-alpine\n    container_name: coolify-db\n"
    );
    assert_eq!(
        target
            .pg
            .psql("coolify", "SELECT count(*) FROM apps")
            .unwrap(),
        "1"
    );

    // No key shows in the report or the command log.
    let shown = format!("{steps:?}\n{}\n{}", steps_json(&steps), log.join("\n"));
    for key in [BACKUP_KEY, SERVER_KEY, OLDER_KEY] {
        assert!(!shown.contains(key), "{key} shows: {shown}");
    }
    assert_ne!(env, backup_env);

    // Restored again onto itself: the backup's key is already there, and
    // the previous keys are kept.
    let (steps, _) = restore_onto(&target, &store).await;
    assert!(
        steps[0]
            .detail
            .as_deref()
            .unwrap()
            .starts_with("platform secret restored: unchanged"),
        "{steps:?}"
    );
    assert_eq!(env_of(&target), env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_onto_the_same_app_key_changes_nothing() {
    let (host, store, backup_env) = backed_up().await;
    let (steps, _) = restore_onto(&host, &store).await;
    assert!(
        steps[0]
            .detail
            .as_deref()
            .unwrap()
            .starts_with("platform secret restored: unchanged"),
        "{steps:?}"
    );
    assert_eq!(env_of(&host), backup_env, "no APP_PREVIOUS_KEYS added");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_onto_a_host_without_a_env_creates_it() {
    let (_source, store, backup_env) = backed_up().await;
    let target = PaasHost::start(&CASE);
    std::fs::remove_file(target.shim.root_path(ENV)).unwrap();
    let (steps, _) = restore_onto(&target, &store).await;
    assert!(
        steps[0]
            .detail
            .as_deref()
            .unwrap()
            .starts_with("platform secret restored: created"),
        "{steps:?}"
    );
    assert_eq!(env_of(&target), backup_env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_without_the_env_warns_and_its_restore_leaves_the_key() {
    let host = PaasHost::start(&CASE);
    std::fs::remove_file(host.shim.root_path(ENV)).unwrap();
    let mut store = MemoryArtifacts::new();
    let report = host.platform.backup(&mut store).await.unwrap();
    assert_eq!(report.warnings.len(), 1, "{report:?}");
    assert!(
        report.warnings[0].contains("holds no APP_KEY"),
        "{report:?}"
    );

    let target = PaasHost::start(&CASE);
    let before = env_of(&target);
    let (steps, log) = restore_onto(&target, &store).await;
    assert_eq!(steps[0].status, StepStatus::Skipped, "{steps:?}");
    assert_eq!(env_of(&target), before);
    let config = steps.iter().find(|s| s.name == "Restore config").unwrap();
    assert!(
        !config.detail.as_deref().unwrap().contains("all but"),
        "{config:?}"
    );
    assert!(log.iter().any(|c| c.contains("pg_restore")), "{log:#?}");
}
