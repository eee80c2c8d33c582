//! Real round trips over SSH against a fake PaaS host: a private
//! PostgreSQL cluster behind the `docker` shim of a
//! [`crate::shim::PaasShim`], reached through a sandbox sshd.

use std::sync::Arc;

use kastell_core::memory::MemoryArtifacts;
use kastell_core::types::{ArtifactFormat, ArtifactSource, PlatformRoot, Privilege, UpdateOptions};
use kastell_core::{ErrorKind, Platform, PlatformContext, PlatformTarget, Result, Transport};

/// What [`paas_round_trip`] needs to know about the platform under test.
#[derive(Debug, Clone, Copy)]
pub struct PaasRoundTrip {
    /// The platform's registry constructor.
    pub build: fn(PlatformContext) -> Result<Arc<dyn Platform>>,
    /// Which fake host to run it against.
    pub flavour: crate::shim::PaasFlavour,
    /// The database (and role) the platform uses in the cluster.
    pub database: &'static str,
    /// A configuration file (relative to the fake root) the config archive
    /// must carry.
    pub config_file: &'static str,
}

/// A fake PaaS host reached over SSH, and the platform built for it.
pub struct PaasHost {
    /// The database cluster behind the `docker` shim.
    pub pg: crate::pg::PgCluster,
    /// The shims, their log and the fake root.
    pub shim: crate::shim::PaasShim,
    /// The sandbox sshd (kept alive with the host).
    pub sshd: crate::sshd::SshdFixture,
    /// The platform under test, with `root` set to the shim's fake root.
    pub platform: Arc<dyn Platform>,
    /// The connection the platform uses (what a backup request carries).
    pub transport: Arc<dyn Transport>,
}

impl PaasHost {
    /// Starts a cluster, the shim of `case.flavour` and a sandbox sshd with
    /// the shims first on its PATH, and builds the platform over SSH.
    /// Panics when any of them cannot start.
    pub fn start(case: &PaasRoundTrip) -> Self {
        Self::start_with_options(case, &[])
    }

    /// [`PaasHost::start`], with `extra` platform options beside `root`
    /// and `health_url`.
    pub fn start_with_options(case: &PaasRoundTrip, extra: &[(&str, &str)]) -> Self {
        use crate::shim::{PaasFlavour, PaasShim};
        let pg = crate::pg::PgCluster::start().unwrap();
        let shim = match case.flavour {
            PaasFlavour::Coolify => PaasShim::coolify(&pg),
            PaasFlavour::Dokploy => PaasShim::dokploy(&pg),
        }
        .unwrap();
        let sshd = crate::sshd::SshdFixture::start_with(&shim.sandbox_options());
        let root = shim.root().to_string_lossy().into_owned();
        let transport: Arc<dyn Transport> = sshd.ssh();
        let platform = (case.build)(PlatformContext {
            transport: transport.clone(),
            target: PlatformTarget {
                name: "round-trip".into(),
                ip: "127.0.0.1".into(),
                domain: None,
                backup_paths: Vec::new(),
            },
            root: PlatformRoot::new(&root).unwrap(),
            privilege: Privilege::default(),
            options: [("health_url".to_owned(), health_endpoint())]
                .into_iter()
                .chain(
                    extra
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
                )
                .collect(),
        })
        .unwrap();
        Self {
            pg,
            shim,
            sshd,
            platform,
            transport,
        }
    }
}

/// A local HTTP endpoint answering every request with 200, standing in for
/// the platform's web UI in health checks. Lives until the process ends.
pub fn health_endpoint() -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(2)));
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    format!("http://{addr}/")
}

const RT_QUERY: &str =
    "SELECT id, name, note FROM kastell_rt ORDER BY id; SELECT count(*) FROM kastell_gone;";
const RT_ROWS: &str = "SELECT string_agg(id || ':' || name, ',' ORDER BY id) FROM kastell_rt";

/// Creates the round-trip tables, backs up, then changes rows, drops a
/// table and overwrites the config file. Returns the backup, the query
/// output and the config file from before the change.
async fn backup_then_change(
    host: &PaasHost,
    case: &PaasRoundTrip,
) -> (MemoryArtifacts, String, Vec<u8>) {
    let db = case.database;
    host.pg
        .execute(
            db,
            "CREATE TABLE kastell_rt (id int PRIMARY KEY, name text NOT NULL, note text);\n\
             INSERT INTO kastell_rt VALUES (1, 'one', NULL), (2, 'two', 'it''s'), (3, 'three', 'x');\n\
             CREATE TABLE kastell_gone (id int);\n\
             INSERT INTO kastell_gone SELECT generate_series(1, 500);",
        )
        .unwrap();
    let before = host.pg.psql(db, RT_QUERY).unwrap();
    let config_path = host.shim.root_path(case.config_file);
    let config_before = std::fs::read(&config_path).unwrap();

    let mut store = MemoryArtifacts::new();
    let report = host.platform.backup(&mut store).await.unwrap();
    // Dokploy's secret is an artifact of its own; Coolify's APP_KEY is in
    // the configuration archive.
    let expected = match case.flavour {
        crate::shim::PaasFlavour::Dokploy => 3,
        crate::shim::PaasFlavour::Coolify => 2,
    };
    assert_eq!(report.artifacts.len(), expected, "{report:?}");
    assert_eq!(
        report.platform_version,
        host.shim.state().version,
        "the version is the shim's image tag"
    );

    host.pg
        .execute(
            db,
            "UPDATE kastell_rt SET name = 'changed'; DELETE FROM kastell_rt WHERE id = 2;\n\
             INSERT INTO kastell_rt VALUES (4, 'four', NULL); DROP TABLE kastell_gone;",
        )
        .unwrap();
    std::fs::write(&config_path, "overwritten after the backup\n").unwrap();
    assert_eq!(
        host.pg.psql(db, RT_ROWS).unwrap(),
        "1:changed,3:changed,4:four"
    );
    (store, before, config_before)
}

/// A real round trip over SSH: a private PostgreSQL cluster behind the
/// `docker` shim of a [`crate::shim::PaasShim`], reached through a sandbox
/// sshd. Rows are created, backed up into [`MemoryArtifacts`], changed and
/// dropped (and a config file overwritten); then stop, restore and start
/// must bring back exactly the backed-up rows and file, the platform
/// secret restored first.
pub async fn paas_round_trip(case: PaasRoundTrip) {
    let host = PaasHost::start(&case);
    let (store, before, config_before) = backup_then_change(&host, &case).await;
    let platform = &host.platform;

    platform.stop().await.unwrap();
    assert!(!host.shim.state().app_running, "stop stops the application");
    let steps = platform.restore(&store).await.into_result().unwrap();
    platform.start().await.unwrap();
    let state = host.shim.state();
    assert!(state.app_running && state.db_running);

    assert_eq!(steps.len(), 5, "{steps:?}");
    assert_eq!(steps[0].name, "Restore platform secret", "{steps:?}");
    for step in &steps {
        assert_eq!(
            step.status,
            kastell_core::types::StepStatus::Success,
            "{step:?}"
        );
    }
    assert_eq!(
        host.pg.psql(case.database, RT_ROWS).unwrap(),
        "1:one,2:two,3:three"
    );
    assert_eq!(host.pg.psql(case.database, RT_QUERY).unwrap(), before);
    let config = std::fs::read(host.shim.root_path(case.config_file)).unwrap();
    assert_eq!(config, config_before);
    let log = host.shim.commands().join("\n");
    assert!(log.contains("pg_dump -Fc"), "{log}");
    assert!(log.contains("pg_restore --clean --if-exists"), "{log}");
}

/// A restore from a truncated dump fails at "Restore database" and leaves
/// the database exactly as it was (one transaction) and the config
/// untouched (the step after it never ran), except what the platform
/// secret step before it wrote (Coolify's `.env`, the backup's again).
pub async fn paas_failed_restore_changes_nothing(case: PaasRoundTrip) {
    let host = PaasHost::start(&case);
    let (good, _, config_before) = backup_then_change(&host, &case).await;
    let mut bad = MemoryArtifacts::new();
    for record in ArtifactSource::records(&good) {
        let mut bytes = good.bytes(&record.name).unwrap();
        if record.format == ArtifactFormat::PgCustom {
            bytes.truncate(bytes.len() * 2 / 3);
        }
        let spec = kastell_core::types::ArtifactSpec {
            name: record.name.clone(),
            format: record.format,
        };
        let mut w = kastell_core::types::ArtifactSink::open(&mut bad, &spec).unwrap();
        std::io::Write::write_all(&mut w, &bytes).unwrap();
        drop(w);
        kastell_core::types::ArtifactSink::seal(&mut bad, &record.name).unwrap();
    }
    let changed = host.pg.psql(case.database, RT_ROWS).unwrap();
    host.platform.stop().await.unwrap();
    let report = host.platform.restore(&bad).await;
    host.platform.start().await.unwrap();
    let names: Vec<&str> = report.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Restore platform secret",
            "Start database",
            "Wait for database",
            "Restore database"
        ],
        "the steps up to the failed one come back with the error"
    );
    assert_eq!(
        report.steps[3].status,
        kastell_core::types::StepStatus::Failure
    );
    let err = report.into_result().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CommandFailed, "{err}");
    assert!(
        err.message().starts_with("Restore database failed"),
        "{err}"
    );
    assert!(err.message().contains("pg_restore"), "{err}");
    assert_eq!(host.pg.psql(case.database, RT_ROWS).unwrap(), changed);
    let config = std::fs::read(host.shim.root_path(case.config_file)).unwrap();
    if case.config_file.ends_with("/.env") {
        assert_eq!(
            config, config_before,
            "the .env went back first, with the APP_KEY"
        );
    } else {
        assert_eq!(config, b"overwritten after the backup\n");
    }
}

/// Update over SSH with the shimmed installer: a dry run changes nothing;
/// a real run moves the version on and reports both versions.
pub async fn paas_update(case: PaasRoundTrip) {
    let host = PaasHost::start(&case);
    let version = host.shim.state().version;
    host.shim.clear_commands().unwrap();
    let dry = host
        .platform
        .update(&UpdateOptions {
            dry_run: true,
            ..UpdateOptions::default()
        })
        .await
        .unwrap();
    assert_eq!(dry.version_before.as_deref(), Some(version.as_str()));
    assert!(
        host.shim
            .commands()
            .iter()
            .all(|c| c.starts_with("docker inspect")),
        "{:?}",
        host.shim.commands()
    );
    assert_eq!(host.shim.state().version, version);

    let report = host
        .platform
        .update(&UpdateOptions::default())
        .await
        .unwrap();
    let after = host.shim.state().version;
    assert_ne!(after, version, "the installer ran");
    assert_eq!(report.version_before.as_deref(), Some(version.as_str()));
    assert_eq!(report.version_after.as_deref(), Some(after.as_str()));
    assert!(report.output_tail.contains("upgraded"), "{report:?}");

    host.shim
        .fail_next("install.sh", 1, "E: no space left on device")
        .unwrap();
    let err = host
        .platform
        .update(&UpdateOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CommandFailed);
    assert!(err.message().contains("no space left"), "{err}");
    assert!(err.hint().is_some());
}
