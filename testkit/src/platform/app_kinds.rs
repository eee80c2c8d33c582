//! Trials of the app database kinds [`super::apps`] leaves out: a MariaDB
//! and a MongoDB resource (fake tools that round-trip real bytes behind
//! the shim's `docker exec`), dumped by their own tools, each with the
//! credentials its container was made with, and restored into a fresh
//! host; and the macro that runs every app trial for a platform crate.

use kastell_core::memory::MemoryArtifacts;
use kastell_core::types::ArtifactSource;

use super::paas::{PaasHost, PaasRoundTrip};
use crate::shim::{AppContainer, AppKind, PaasFlavour};

/// The MariaDB app: (key, shown name).
pub const WIKI_DB: (&str, &str) = ("mariawiki0k2", "wiki db");
/// The MongoDB app.
pub const EVENTS_DB: (&str, &str) = ("mongoev0k2m9", "events db");

/// The platform's own records of the two apps.
fn platform_tables(flavour: PaasFlavour) -> String {
    let table = |coolify: &str, dokploy: &str, key: (&str, &str)| match flavour {
        PaasFlavour::Coolify => format!(
            "CREATE TABLE {coolify} (id serial PRIMARY KEY, uuid text, name text);\n\
             INSERT INTO {coolify} (uuid, name) VALUES ('{}', '{}');\n",
            key.0, key.1
        ),
        PaasFlavour::Dokploy => format!(
            "CREATE TABLE {dokploy} (\"{dokploy}Id\" text PRIMARY KEY, \"appName\" text, name text);\n\
             INSERT INTO {dokploy} VALUES ('id-{}', '{}', '{}');\n",
            key.0, key.0, key.1
        ),
    };
    format!(
        "{}{}",
        table("standalone_mariadbs", "mariadb", WIKI_DB),
        table("standalone_mongodbs", "mongo", EVENTS_DB)
    )
}

/// A host of `case` with the two apps (their containers' names returned)
/// and, with `data`, data in both.
fn start(case: &PaasRoundTrip, data: bool) -> (PaasHost, String, String) {
    let host = PaasHost::start(case);
    host.pg
        .execute(case.database, &platform_tables(case.flavour))
        .unwrap();
    let add = |key: &str, kind| {
        host.shim
            .add_app(&AppContainer {
                key: key.to_owned(),
                kind,
                volumes: Vec::new(),
            })
            .unwrap()
    };
    let wiki = add(WIKI_DB.0, AppKind::Mariadb);
    let events = add(EVENTS_DB.0, AppKind::Mongo);
    if data {
        let sql: Vec<u8> = (0..20_000u32)
            .flat_map(|i| format!("INSERT INTO pages VALUES ({i}, 'page {i}');\n").into_bytes())
            .collect();
        host.shim.set_app_data(&wiki, "mysql.sql", &sql).unwrap();
        let archive: Vec<u8> = (0..90_000).map(|_| fastrand::u8(..)).collect();
        host.shim
            .set_app_data(&events, "mongo.archive", &archive)
            .unwrap();
    }
    (host, wiki, events)
}

/// The two apps' data on `host`.
fn data(host: &PaasHost, wiki: &str, events: &str) -> (Vec<u8>, Vec<u8>) {
    (
        host.shim.app_data(wiki, "mysql.sql"),
        host.shim.app_data(events, "mongo.archive"),
    )
}

/// A MariaDB and a MongoDB backed up by `mariadb-dump --single-transaction`
/// and `mongodump --archive` (with the root user of the container's
/// environment), each its own artifact with its app and consistency, then
/// restored (`mariadb`, `mongorestore --archive --drop`) into a fresh host
/// with the same apps and no data: both come back byte for byte.
pub async fn apps_mariadb_mongo_round_trip(case: PaasRoundTrip) {
    let (source, wiki, events) = start(&case, true);
    let before = data(&source, &wiki, &events);
    let mut store = MemoryArtifacts::new();
    let report = source.platform.backup(&mut store).await.unwrap();
    let keys: Vec<&str> = report.apps.iter().map(|a| a.app.as_str()).collect();
    assert_eq!(keys, [WIKI_DB.0, EVENTS_DB.0], "{report:?}");
    for app in &report.apps {
        assert!(app.stored_bytes > 0, "{app:?}");
        assert!(
            app.consistency.iter().any(|c| c.contains("consistent")),
            "{app:?}"
        );
    }
    let log = source.shim.commands().join("\n");
    assert!(
        log.contains("mariadb-dump -uroot --single-transaction"),
        "MariaDB's own tool: {log}"
    );
    assert!(
        log.contains("mongodump --archive --quiet --username root"),
        "MongoDB's own tool, as the container's root user: {log}"
    );
    let tagged = ArtifactSource::records(&store)
        .into_iter()
        .filter(|r| r.app.is_some())
        .count();
    assert_eq!(tagged, 2);

    let (target, t_wiki, t_events) = start(&case, false);
    assert_eq!(
        data(&target, &t_wiki, &t_events),
        (Vec::new(), Vec::new()),
        "the fresh host starts empty"
    );
    target.platform.stop().await.unwrap();
    let restored = target.platform.restore(&store).await;
    target.platform.start().await.unwrap();
    assert!(restored.error.is_none(), "{restored:?}");
    assert_eq!(
        data(&target, &t_wiki, &t_events),
        before,
        "both databases are back"
    );
    let log = target.shim.commands().join("\n");
    assert!(log.contains("mongorestore --archive --drop"), "{log}");
}

/// The app trials of a PaaS platform crate, as `#[tokio::test]`s over the
/// [`PaasRoundTrip`] `$case`: every app's data on a fresh host, selection
/// by name or key, one app in place, a host without apps, MariaDB and
/// MongoDB round trips, and a declared Docker health check read.
#[macro_export]
macro_rules! paas_app_trials {
    ($case:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn every_apps_data_comes_back_on_a_fresh_host() {
            $crate::platform::apps_round_trip($case).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn apps_are_selected_by_name_or_key() {
            $crate::platform::apps_selection($case).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn one_app_is_restored_in_place() {
            $crate::platform::apps_in_place($case).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_host_without_apps_backs_up_as_before() {
            $crate::platform::apps_none($case).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn mariadb_and_mongodb_dumps_round_trip() {
            $crate::platform::apps_mariadb_mongo_round_trip($case).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_declared_docker_health_check_is_read() {
            $crate::platform::apps_health($case).await;
        }
    };
}
