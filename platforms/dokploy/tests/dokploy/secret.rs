//! Dokploy's platform secret over a real sshd and the Dokploy shim: the
//! backup carries `dokploy-auth-secret` (and `ENCRYPTION_KEY`) byte for
//! byte, a restore puts it back before the database, and the value never
//! shows in a report, an error or a command line.

use kastell_core::ErrorKind;
use kastell_core::memory::MemoryArtifacts;
use kastell_core::types::{ArtifactSource, BackupReport, StepReport, StepStatus};
use kastell_testkit::platform::{PaasHost, PaasRoundTrip, backup_json, steps_json};
use kastell_testkit::shim::{DOKPLOY_SECRET, PaasFlavour, ShimState};

const CASE: PaasRoundTrip = PaasRoundTrip {
    build: kastell_dokploy::build,
    flavour: PaasFlavour::Dokploy,
    database: "dokploy",
    config_file: "etc/dokploy/dokploy.yml",
};

const SECRET_ARTIFACT: &str = "dokploy-platform-secret";
const KEY_ARTIFACT: &str = "dokploy-platform-key";
const ROWS: &str = "SELECT string_agg(id || ':' || name, ',' ORDER BY id) FROM apps";

fn start() -> PaasHost {
    let host = PaasHost::start(&CASE);
    host.pg
        .execute(
            "dokploy",
            "CREATE TABLE apps (id int PRIMARY KEY, name text); \
             INSERT INTO apps VALUES (1, 'one'), (2, 'two');",
        )
        .unwrap();
    host
}

fn secret_of(host: &PaasHost) -> Vec<u8> {
    host.shim.swarm_secret(DOKPLOY_SECRET).unwrap()
}

async fn backup(host: &PaasHost) -> (MemoryArtifacts, BackupReport) {
    let mut store = MemoryArtifacts::new();
    let report = host.platform.backup(&mut store).await.unwrap();
    (store, report)
}

/// What the engine does: a safety backup of the target (when `safety`),
/// stop, restore, start. Returns the restore's steps and the target's
/// command log of the restore alone.
async fn restore_onto(
    target: &PaasHost,
    store: &MemoryArtifacts,
    safety: bool,
) -> (Vec<StepReport>, Vec<String>) {
    if safety {
        backup(target).await;
    }
    target.platform.stop().await.unwrap();
    target.shim.clear_commands().unwrap();
    let report = target.platform.restore(store).await;
    let log = target.shim.commands();
    target.platform.start().await.unwrap();
    let steps = report.into_result().unwrap();
    (steps, log)
}

fn position(log: &[String], needle: &str) -> usize {
    log.iter()
        .position(|c| c.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} never ran: {log:#?}"))
}

/// Nothing a user or a log sees holds `secret`.
fn assert_hidden(secret: &[u8], what: &str, texts: &[String]) {
    let secret = String::from_utf8_lossy(secret);
    for text in texts {
        assert!(
            !text.contains(secret.as_ref()),
            "{what} shows the secret: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backup_holds_the_secret_byte_for_byte() {
    let host = start();
    // Bytes a line-oriented reader would mangle: newlines, a trailing
    // space, a control character.
    let value: &[u8] = b"s3cr3t-value \n second line\x01\n";
    host.shim
        .set_swarm_secret(DOKPLOY_SECRET, Some(value))
        .unwrap();
    host.shim.clear_commands().unwrap();
    let (store, report) = backup(&host).await;
    assert!(report.warnings.is_empty(), "{report:?}");
    assert_eq!(store.bytes(SECRET_ARTIFACT).unwrap(), value);
    let record = report
        .artifacts
        .iter()
        .find(|r| r.name == SECRET_ARTIFACT)
        .unwrap();
    assert_eq!(record.size, value.len() as u64);
    assert_eq!(
        record,
        ArtifactSource::records(&store)
            .iter()
            .find(|r| r.name == SECRET_ARTIFACT)
            .unwrap(),
        "sealed with its checksum like every artifact"
    );
    assert!(
        !ArtifactSource::records(&store)
            .iter()
            .any(|r| r.name == KEY_ARTIFACT),
        "no ENCRYPTION_KEY, no key artifact"
    );
    let log = host.shim.commands();
    let task = position(
        &log,
        "docker ps -q --no-trunc --filter label=com.docker.swarm.service.name=dokploy",
    );
    let read = position(&log, " cat /run/secrets/dokploy-auth-secret");
    let dump = position(&log, "pg_dump -Fc");
    assert!(task < read && read < dump, "{log:#?}");
    assert!(
        !log.iter()
            .any(|c| c.contains("docker ps -qf name=dokploy ")),
        "the name filter selects the wrong container: {log:#?}"
    );
    assert_hidden(
        b"s3cr3t-value",
        "the backup",
        &[
            format!("{report:?}"),
            backup_json(&report),
            format!("{:?}", host.platform),
            log.join("\n"),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_onto_a_different_secret_replaces_it_before_the_database() {
    let source = start();
    let wanted = secret_of(&source);
    let (store, _) = backup(&source).await;
    let target = PaasHost::start(&CASE);
    let theirs = secret_of(&target);
    assert_ne!(theirs, wanted, "each fake install has its own secret");
    let old_id = target.shim.swarm_secret_id(DOKPLOY_SECRET).unwrap();

    let (steps, log) = restore_onto(&target, &store, true).await;
    assert_eq!(steps[0].name, "Restore platform secret");
    assert_eq!(steps[0].status, StepStatus::Success);
    let detail = steps[0].detail.as_deref().unwrap();
    assert_eq!(detail, "platform secret restored: replaced a different one");
    assert_eq!(secret_of(&target), wanted);
    assert_ne!(target.shim.swarm_secret_id(DOKPLOY_SECRET).unwrap(), old_id);
    assert_eq!(target.shim.service_secrets(), [DOKPLOY_SECRET]);
    assert_eq!(target.pg.psql("dokploy", ROWS).unwrap(), "1:one,2:two");

    // Drop, remove, create from stdin, add back: all before the database.
    let drop = position(
        &log,
        "docker service update --secret-rm dokploy-auth-secret dokploy",
    );
    let rm = position(&log, "docker secret rm dokploy-auth-secret");
    let create = position(&log, "docker secret create dokploy-auth-secret -");
    let add = position(
        &log,
        "docker service update --secret-add dokploy-auth-secret dokploy",
    );
    let db = position(&log, "docker service scale dokploy-postgres=1");
    let restore = position(&log, "pg_restore");
    assert!(drop < rm && rm < create && create < add, "{log:#?}");
    assert!(add < db && db < restore, "{log:#?}");

    // Started again, the task reads the restored secret.
    let (again, _) = backup(&target).await;
    assert_eq!(again.bytes(SECRET_ARTIFACT).unwrap(), wanted);
    assert_hidden(
        &wanted,
        "the restore",
        &[
            format!("{steps:?}"),
            steps_json(&steps),
            log.join("\n"),
            target.shim.commands().join("\n"),
        ],
    );
    assert_hidden(&theirs, "the restore", &[format!("{steps:?}")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_safety_backup_a_secret_that_cannot_be_read_is_replaced() {
    let source = start();
    let wanted = secret_of(&source);
    let (store, _) = backup(&source).await;
    let target = PaasHost::start(&CASE);
    let (steps, log) = restore_onto(&target, &store, false).await;
    let detail = steps[0].detail.as_deref().unwrap();
    assert!(
        detail.starts_with("platform secret restored: replaced one that could not be compared"),
        "{detail}"
    );
    assert_eq!(secret_of(&target), wanted);
    position(&log, "docker secret create dokploy-auth-secret -");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_onto_a_host_without_a_secret_creates_it() {
    let source = start();
    let wanted = secret_of(&source);
    let (store, _) = backup(&source).await;
    let target = PaasHost::start(&CASE);
    target.shim.set_swarm_secret(DOKPLOY_SECRET, None).unwrap();
    assert!(target.shim.service_secrets().is_empty());

    let (steps, log) = restore_onto(&target, &store, true).await;
    assert_eq!(
        steps[0].detail.as_deref(),
        Some("platform secret restored: created")
    );
    assert_eq!(secret_of(&target), wanted);
    assert_eq!(target.shim.service_secrets(), [DOKPLOY_SECRET]);
    assert!(
        !log.iter()
            .any(|c| c.contains("secret rm") || c.contains("--secret-rm")),
        "nothing to remove: {log:#?}"
    );
    assert!(
        position(&log, "--secret-add") < position(&log, "dokploy-postgres=1"),
        "{log:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_onto_the_same_secret_changes_nothing() {
    let host = start();
    let secret = secret_of(&host);
    let id = host.shim.swarm_secret_id(DOKPLOY_SECRET).unwrap();
    let (store, _) = backup(&host).await;
    host.pg.execute("dokploy", "DELETE FROM apps").unwrap();

    // The engine's way: its safety backup read the secret, then it stops.
    let (steps, log) = restore_onto(&host, &store, true).await;
    assert_eq!(
        steps[0].detail.as_deref(),
        Some("platform secret restored: unchanged")
    );
    assert!(
        !log.iter().any(|c| c.starts_with("docker secret create")
            || c.starts_with("docker secret rm")
            || c.starts_with("docker service update")),
        "{log:#?}"
    );
    assert_eq!(secret_of(&host), secret);
    assert_eq!(host.shim.swarm_secret_id(DOKPLOY_SECRET).unwrap(), id);
    assert_eq!(host.pg.psql("dokploy", ROWS).unwrap(), "1:one,2:two");

    // While Dokploy runs (no stop), its task is read directly.
    host.shim.clear_commands().unwrap();
    let steps = host.platform.restore(&store).await.into_result().unwrap();
    assert_eq!(
        steps[0].detail.as_deref(),
        Some("platform secret restored: unchanged")
    );
    position(
        &host.shim.commands(),
        " cat /run/secrets/dokploy-auth-secret",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_without_the_running_dokploy_fails_clearly() {
    let host = start();
    let secret = secret_of(&host);
    let version = host.shim.state().version;
    host.shim
        .set_state(&ShimState {
            app_running: false,
            db_running: true,
            version,
        })
        .unwrap();
    let mut store = MemoryArtifacts::new();
    let err = host.platform.backup(&mut store).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.message().contains("dokploy-auth-secret"), "{err}");
    assert!(err.message().contains("no task"), "{err}");
    assert!(
        err.hint()
            .unwrap()
            .contains("docker service scale dokploy=1"),
        "{err:?}"
    );
    assert_eq!(err.operation(), Some("backup"));
    assert!(ArtifactSource::records(&store).is_empty());
    assert!(
        !host.shim.commands().iter().any(|c| c.contains("pg_dump")),
        "it failed before the dump"
    );
    assert_hidden(&secret, "the error", &[format!("{err:?}"), err.to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dokploy_from_before_the_secret_backs_up_with_a_warning() {
    let host = start();
    host.shim.set_swarm_secret(DOKPLOY_SECRET, None).unwrap();
    let (store, report) = backup(&host).await;
    assert_eq!(report.artifacts.len(), 2, "{report:?}");
    assert!(store.bytes(SECRET_ARTIFACT).is_none());
    assert_eq!(report.warnings.len(), 1, "{report:?}");
    assert!(
        report.warnings[0].contains("no secret dokploy-auth-secret and no ENCRYPTION_KEY"),
        "{report:?}"
    );
    assert!(report.warnings[0].contains("no platform secret"));

    // Restoring it leaves the target's secret alone, reported skipped.
    let target = PaasHost::start(&CASE);
    let theirs = secret_of(&target);
    let (steps, _) = restore_onto(&target, &store, false).await;
    assert_eq!(steps[0].status, StepStatus::Skipped, "{steps:?}");
    assert_eq!(secret_of(&target), theirs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encryption_key_is_captured_and_restored_without_a_command_line() {
    let source = start();
    let key = "k3y-from-the-env";
    source
        .shim
        .set_service_env(&["NODE_ENV=production", &format!("ENCRYPTION_KEY={key}")])
        .unwrap();
    let (store, report) = backup(&source).await;
    assert_eq!(store.bytes(KEY_ARTIFACT).unwrap(), key.as_bytes());
    assert!(store.bytes(SECRET_ARTIFACT).is_some(), "both are kept");
    assert_hidden(key.as_bytes(), "the backup", &[format!("{report:?}")]);

    let target = PaasHost::start(&CASE);
    let (steps, log) = restore_onto(&target, &store, true).await;
    let detail = steps[0].detail.as_deref().unwrap();
    assert_eq!(
        detail,
        "platform secret restored: replaced a different one; ENCRYPTION_KEY: created"
    );
    assert!(
        target
            .shim
            .service_env()
            .contains(&format!("ENCRYPTION_KEY={key}")),
        "{:?}",
        target.shim.service_env()
    );
    position(
        &log,
        "docker service update --env-add ENCRYPTION_KEY dokploy",
    );
    assert_hidden(
        key.as_bytes(),
        "the restore",
        &[format!("{steps:?}"), log.join("\n")],
    );

    // Back onto a source that has it: unchanged.
    let (steps, _) = restore_onto(&source, &store, true).await;
    assert_eq!(
        steps[0].detail.as_deref(),
        Some("platform secret restored: unchanged; ENCRYPTION_KEY: unchanged")
    );

    // A backup without a key removes the one the target sets: it would win
    // over the restored secret.
    let plain = start();
    let (plain_store, _) = backup(&plain).await;
    let (steps, _) = restore_onto(&target, &plain_store, true).await;
    assert!(
        steps[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("ENCRYPTION_KEY: removed ENCRYPTION_KEY from the service"),
        "{steps:?}"
    );
    assert!(
        !target
            .shim
            .service_env()
            .iter()
            .any(|e| e.starts_with("ENCRYPTION_KEY")),
        "{:?}",
        target.shim.service_env()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encryption_key_file_is_read_inside_the_task() {
    let source = start();
    source
        .shim
        .put_container_file("/run/keys/encryption", b"k3y-from-a-file")
        .unwrap();
    source
        .shim
        .set_service_env(&["ENCRYPTION_KEY_FILE=/run/keys/encryption"])
        .unwrap();
    let (store, _) = backup(&source).await;
    assert_eq!(store.bytes(KEY_ARTIFACT).unwrap(), b"k3y-from-a-file");

    // The target reads its key from a file too: replaced by the variable,
    // the file variable dropped so only the backup's key is configured.
    let target = PaasHost::start(&CASE);
    target
        .shim
        .set_service_env(&["ENCRYPTION_KEY_FILE=/run/keys/other"])
        .unwrap();
    let (steps, _) = restore_onto(&target, &store, false).await;
    assert!(
        steps[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("ENCRYPTION_KEY: replaced one that could not be compared"),
        "{steps:?}"
    );
    assert_eq!(
        target.shim.service_env(),
        ["ENCRYPTION_KEY=k3y-from-a-file"]
    );

    // A file it names that the task lacks fails the backup.
    source
        .shim
        .set_service_env(&["ENCRYPTION_KEY_FILE=/run/keys/missing"])
        .unwrap();
    let err = source
        .platform
        .backup(&mut MemoryArtifacts::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.message().contains("/run/keys/missing"), "{err}");
}
