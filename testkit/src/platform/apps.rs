//! Trials of the users' apps on a fake PaaS host: a PostgreSQL database
//! resource (a real database of the shim's cluster), a MySQL and a Redis
//! (fake tools that round-trip real bytes) and an application with a
//! Docker volume (files under the fake root), recorded in the platform's
//! own tables as Coolify or Dokploy records them.

use std::collections::BTreeMap;
use std::path::Path;

use kastell_core::memory::MemoryArtifacts;
use kastell_core::types::{AppSelection, ArtifactSource, BackupReport, ScopedSource};
use sha2::{Digest, Sha256};

use super::paas::{PaasHost, PaasRoundTrip};
use crate::shim::{AppContainer, AppKind, PaasFlavour};

/// The apps every trial host has: (key, shown name).
pub const BLOG_DB: (&str, &str) = ("pgblog0k2m9x", "blog db");
/// The MySQL app.
pub const SHOP_DB: (&str, &str) = ("myshop0k2m9x", "shop db");
/// The Redis app.
pub const CACHE: (&str, &str) = ("rdcache0k2m9", "cache");
/// The application with a volume.
pub const SITE: (&str, &str) = ("apsite0k2m9x", "site");
/// The site's volume.
pub const SITE_VOLUME: &str = "apsite0k2m9x-uploads";

const BLOG_ROWS: &str =
    "SELECT string_agg(id || ':' || title, ',' ORDER BY id) FROM posts; SELECT count(*) FROM tags";

/// The platform's own records of the apps, as its tables hold them.
fn platform_tables(flavour: PaasFlavour) -> String {
    let rows = |table: &str, key: (&str, &str)| match flavour {
        PaasFlavour::Coolify => format!(
            "CREATE TABLE IF NOT EXISTS {table} (id serial PRIMARY KEY, uuid text, name text);\n\
             INSERT INTO {table} (uuid, name) VALUES ('{}', '{}');\n",
            key.0, key.1
        ),
        PaasFlavour::Dokploy => format!(
            "CREATE TABLE IF NOT EXISTS {table} (\"{table}Id\" text PRIMARY KEY, \"appName\" text, name text);\n\
             INSERT INTO {table} VALUES ('id-{}', '{}', '{}');\n",
            key.0, key.0, key.1
        ),
    };
    match flavour {
        PaasFlavour::Coolify => format!(
            "{}{}{}{}\
             CREATE TABLE local_persistent_volumes (id serial PRIMARY KEY, name text, mount_path text, \
             host_path text, resource_type text, resource_id int);\n\
             INSERT INTO local_persistent_volumes (name, mount_path, resource_type, resource_id) \
             VALUES ('{SITE_VOLUME}', '/app/uploads', 'App\\Models\\Application', 1);\n\
             INSERT INTO local_persistent_volumes (name, mount_path, host_path, resource_type, resource_id) \
             VALUES ('bind-mount-not-a-volume', '/x', '/srv/x', 'App\\Models\\Application', 1);\n",
            rows("standalone_postgresqls", BLOG_DB),
            rows("standalone_mysqls", SHOP_DB),
            rows("standalone_redis", CACHE),
            rows("applications", SITE),
        ),
        PaasFlavour::Dokploy => format!(
            "{}{}{}{}\
             CREATE TABLE mount (\"mountId\" text PRIMARY KEY, type text, \"volumeName\" text, \
             \"hostPath\" text, \"applicationId\" text);\n\
             INSERT INTO mount VALUES ('m1', 'volume', '{SITE_VOLUME}', NULL, 'id-{}');\n\
             INSERT INTO mount VALUES ('m2', 'bind', NULL, '/srv/x', 'id-{}');\n",
            rows("postgres", BLOG_DB),
            rows("mysql", SHOP_DB),
            rows("redis", CACHE),
            rows("application", SITE),
            SITE.0,
            SITE.0,
        ),
    }
}

/// A trial host with the four apps, and their containers' names by key.
pub struct AppsHost {
    /// The fake host.
    pub host: PaasHost,
    /// Container name by app key.
    pub containers: BTreeMap<&'static str, String>,
}

impl AppsHost {
    /// A fake host of `case` whose platform records the four apps and runs
    /// their containers; with `data`, each holds data (rows, a dump, a
    /// dataset whose RDB file on disk is stale, files), else they are
    /// empty (a fresh server to restore into).
    pub fn start(case: &PaasRoundTrip, data: bool) -> Self {
        let host = PaasHost::start(case);
        host.pg
            .execute(case.database, &platform_tables(case.flavour))
            .unwrap();
        host.pg
            .execute(
                "postgres",
                "CREATE ROLE blog LOGIN; CREATE DATABASE blog OWNER blog;",
            )
            .unwrap();
        let mut containers = BTreeMap::new();
        for (key, kind, volumes) in [
            (
                BLOG_DB.0,
                AppKind::Postgres {
                    database: "blog",
                    user: "blog",
                },
                vec![],
            ),
            (SHOP_DB.0, AppKind::Mysql, vec![]),
            (CACHE.0, AppKind::Redis, vec![]),
            (SITE.0, AppKind::App, vec![SITE_VOLUME.to_owned()]),
        ] {
            let name = host
                .shim
                .add_app(&AppContainer {
                    key: key.to_owned(),
                    kind,
                    volumes,
                })
                .unwrap();
            containers.insert(key, name);
        }
        let this = Self { host, containers };
        if data {
            this.host
                .pg
                .execute(
                    "blog",
                    "SET ROLE blog; CREATE TABLE posts (id int PRIMARY KEY, title text NOT NULL);\n\
                     INSERT INTO posts VALUES (1, 'hello'), (2, 'it''s'), (3, 'world');\n\
                     CREATE TABLE tags (id int); INSERT INTO tags SELECT generate_series(1, 250);",
                )
                .unwrap();
            let shop: Vec<u8> = (0..40_000u32)
                .flat_map(|i| format!("INSERT INTO orders VALUES ({i});\n").into_bytes())
                .collect();
            this.host
                .shim
                .set_app_data(this.container(SHOP_DB.0), "mysql.sql", &shop)
                .unwrap();
            let cache: Vec<u8> = (0..70_000).map(|_| fastrand::u8(..)).collect();
            let redis = this.container(CACHE.0);
            this.host
                .shim
                .set_app_data(redis, "memory", &cache)
                .unwrap();
            this.host
                .shim
                .set_app_data(redis, "dump.rdb", b"stale RDB from before the last writes")
                .unwrap();
            let volume = this.host.shim.volume_path(SITE_VOLUME);
            std::fs::create_dir_all(volume.join("img/2026")).unwrap();
            std::fs::write(volume.join("index.html"), "<h1>site</h1>\n").unwrap();
            let photo: Vec<u8> = (0..200_000).map(|_| fastrand::u8(..)).collect();
            std::fs::write(volume.join("img/2026/photo.jpg"), photo).unwrap();
            std::fs::write(volume.join("img/empty"), "").unwrap();
            crate::shim::give_to_sandbox_user(&this.host.shim.root()).unwrap();
        }
        this
    }

    /// The container of app `key`.
    pub fn container(&self, key: &str) -> &str {
        self.containers
            .get(key)
            .unwrap_or_else(|| panic!("no app {key}"))
    }

    /// Everything a restore must bring back: the blog's rows, the shop's
    /// dump, the cache's dataset and the site's files (path -> SHA-256).
    pub fn state(&self) -> (String, Vec<u8>, Vec<u8>, BTreeMap<String, String>) {
        (
            // A table missing (a fresh host, one dropped) is part of the
            // state too.
            self.host
                .pg
                .psql("blog", BLOG_ROWS)
                .unwrap_or_else(|e| format!("error: {}", e.message())),
            self.host
                .shim
                .app_data(self.container(SHOP_DB.0), "mysql.sql"),
            self.host.shim.app_data(self.container(CACHE.0), "memory"),
            tree(&self.host.shim.volume_path(SITE_VOLUME)),
        )
    }

    /// Changes every app's data (and the site's files) after a backup.
    pub fn change_everything(&self) {
        self.host
            .pg
            .execute(
                "blog",
                "UPDATE posts SET title = 'changed'; DROP TABLE tags;",
            )
            .unwrap();
        self.host
            .shim
            .set_app_data(self.container(SHOP_DB.0), "mysql.sql", b"-- changed\n")
            .unwrap();
        self.host
            .shim
            .set_app_data(self.container(CACHE.0), "memory", b"changed")
            .unwrap();
        let volume = self.host.shim.volume_path(SITE_VOLUME);
        std::fs::write(volume.join("index.html"), "defaced\n").unwrap();
        std::fs::remove_file(volume.join("img/2026/photo.jpg")).unwrap();
        std::fs::write(volume.join("new-file"), "added after the backup").unwrap();
        crate::shim::give_to_sandbox_user(&self.host.shim.root()).unwrap();
    }
}

/// Every file under `dir` (relative path -> SHA-256), directories as
/// `dir/`.
pub fn tree(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            let rel = path
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if path.is_dir() {
                out.insert(format!("{rel}/"), String::new());
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.insert(rel, format!("{:x}", Sha256::digest(&bytes)));
            }
        }
    }
    out
}

fn app_keys(report: &BackupReport) -> Vec<String> {
    report.apps.iter().map(|a| a.app.clone()).collect()
}

/// Backs `apps` up into a new store.
async fn backup(apps: &AppsHost, selection: AppSelection) -> (MemoryArtifacts, BackupReport) {
    let mut store = MemoryArtifacts::new().with_apps(selection);
    let report = apps.host.platform.backup(&mut store).await.unwrap();
    (store, report)
}

/// Backup of a host with four apps, then a full restore (stop, restore,
/// start) into a fresh host with the same apps but no data: every app's
/// rows, dump, dataset and files come back equal, after the platform's
/// own database; the volume was copied with its container paused (and
/// unpaused after), the Redis after a BGSAVE (not its stale file).
pub async fn apps_round_trip(case: PaasRoundTrip) {
    let source = AppsHost::start(&case, true);
    let before = source.state();
    let (store, report) = backup(&source, AppSelection::default()).await;
    assert_eq!(
        app_keys(&report),
        [SITE.0, SHOP_DB.0, BLOG_DB.0, CACHE.0],
        "one entry per app, by key: {report:?}"
    );
    for app in &report.apps {
        assert!(app.stored_bytes > 0, "{app:?}");
        assert!(!app.consistency.is_empty(), "{app:?}");
    }
    let site = report.apps.iter().find(|a| a.app == SITE.0).unwrap();
    assert!(
        site.estimated_bytes.is_some_and(|b| b >= 200_000),
        "the volume's size is measured before: {site:?}"
    );
    assert_eq!(site.artifacts, [format!("app-{}-volume-1.tar", SITE.0)]);
    let records = ArtifactSource::records(&store);
    let tagged: Vec<_> = records.iter().filter(|r| r.app.is_some()).collect();
    assert_eq!(tagged.len(), 4, "{records:?}");
    assert!(
        records
            .iter()
            .any(|r| r.name.ends_with(".rdb") && store.bytes(&r.name).unwrap() == before.2),
        "the Redis artifact is the live dataset (BGSAVE), not the stale file"
    );
    let log = source.host.shim.commands().join("\n");
    assert!(
        log_position(&log, "docker pause") < log_position(&log, "docker unpause"),
        "paused, then unpaused: {log}"
    );
    assert_eq!(
        source.host.shim.app_state(source.container(SITE.0)),
        "running"
    );
    assert!(
        !log.contains("bind-mount-not-a-volume"),
        "bind mounts are not volumes"
    );

    let target = AppsHost::start(&case, false);
    assert_ne!(target.state(), before, "the fresh host starts empty");
    target.host.platform.stop().await.unwrap();
    let restored = target.host.platform.restore(&store).await;
    target.host.platform.start().await.unwrap();
    assert!(restored.error.is_none(), "{restored:?}");
    let names: Vec<&str> = restored.steps.iter().map(|s| s.name.as_str()).collect();
    let config = names
        .iter()
        .position(|n| *n == "Restore config")
        .unwrap_or_else(|| panic!("{names:?}"));
    let first_app = names
        .iter()
        .position(|n| n.starts_with(kastell_paas_step()))
        .unwrap_or_else(|| panic!("{names:?}"));
    assert!(config < first_app, "apps after the platform: {names:?}");
    assert_eq!(names.len() - first_app, 4, "one step per app: {names:?}");
    assert_eq!(target.state(), before, "every app's data is back");
    for key in [BLOG_DB.0, SHOP_DB.0, CACHE.0, SITE.0] {
        assert_eq!(target.host.shim.app_state(target.container(key)), "running");
    }
}

/// The step name prefix of an app's restore (`kastell_paas::STEP_RESTORE_APP`,
/// which testkit cannot name: it does not depend on the platform crates).
fn kastell_paas_step() -> &'static str {
    "Restore app "
}

fn log_position(log: &str, needle: &str) -> usize {
    log.find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in the log:\n{log}"))
}

/// `--app` backs up only the apps named (by name or key), `--exclude-app`
/// all but them, and a name no app has is refused before anything is
/// written, listing the apps found.
pub async fn apps_selection(case: PaasRoundTrip) {
    let apps = AppsHost::start(&case, true);
    let only = AppSelection {
        only: vec![BLOG_DB.1.to_owned(), SITE.0.to_owned()],
        exclude: Vec::new(),
    };
    let (_, report) = backup(&apps, only).await;
    assert_eq!(app_keys(&report), [SITE.0, BLOG_DB.0], "{report:?}");
    let exclude = AppSelection {
        only: Vec::new(),
        exclude: vec![CACHE.1.to_owned()],
    };
    let (store, report) = backup(&apps, exclude).await;
    assert!(
        !app_keys(&report).contains(&CACHE.0.to_owned()),
        "{report:?}"
    );
    assert_eq!(report.apps.len(), 3);
    assert!(
        ArtifactSource::records(&store)
            .iter()
            .any(|r| r.app.is_none() && r.name.ends_with("-db.dump")),
        "the platform's own database is always there"
    );
    let mut empty = MemoryArtifacts::new().with_apps(AppSelection {
        only: vec!["no-such-app".into()],
        exclude: Vec::new(),
    });
    let err = apps.host.platform.backup(&mut empty).await.unwrap_err();
    assert!(err.message().contains("\"no-such-app\""), "{err}");
    let hint = err.hint().unwrap_or_default();
    assert!(
        hint.contains(&format!("{} ({})", SITE.1, SITE.0)) && hint.contains(BLOG_DB.1),
        "{hint}"
    );
    assert!(
        ArtifactSource::records(&empty).is_empty(),
        "nothing was written before the refusal"
    );
    let restored = apps
        .host
        .platform
        .restore(&ScopedSource::new(
            store,
            AppSelection {
                only: vec![CACHE.0.to_owned()],
                exclude: Vec::new(),
            },
        ))
        .await;
    let err = restored.error.expect("an app the backup lacks is refused");
    assert!(restored.steps.is_empty(), "{:?}", restored.steps);
    assert!(err.message().contains(CACHE.0), "{err}");
}

/// Restoring one app in place (only it selected, the platform left
/// running): its volume comes back, its container is stopped and started,
/// and every other app, the platform's database and their containers are
/// untouched.
pub async fn apps_in_place(case: PaasRoundTrip) {
    let apps = AppsHost::start(&case, true);
    let before = apps.state();
    let (store, _) = backup(&apps, AppSelection::default()).await;
    apps.change_everything();
    apps.host
        .pg
        .execute(case.database, "CREATE TABLE kastell_after (id int);")
        .unwrap();
    let changed = apps.state();
    apps.host.shim.clear_commands().unwrap();
    let report = apps
        .host
        .platform
        .restore(&ScopedSource::new(
            store,
            AppSelection {
                only: vec![SITE.1.to_owned()],
                exclude: Vec::new(),
            },
        ))
        .await;
    assert!(report.error.is_none(), "{report:?}");
    assert_eq!(report.steps.len(), 1, "{:?}", report.steps);
    assert!(report.steps[0].name.contains(SITE.0));
    let now = apps.state();
    assert_eq!(now.3, before.3, "the site's files are back");
    assert_eq!(
        (&now.0, &now.1, &now.2),
        (&changed.0, &changed.1, &changed.2),
        "the other apps keep their data"
    );
    assert_eq!(
        apps.host
            .pg
            .psql(case.database, "SELECT count(*) FROM kastell_after")
            .unwrap(),
        "0",
        "the platform's database was not restored"
    );
    let log = apps.host.shim.commands().join("\n");
    for key in [BLOG_DB.0, SHOP_DB.0, CACHE.0] {
        assert_eq!(apps.host.shim.app_state(apps.container(key)), "running");
    }
    assert_eq!(apps.host.shim.app_state(apps.container(SITE.0)), "running");
    assert!(
        !log.contains("compose"),
        "the platform was not stopped: {log}"
    );
    assert!(
        !log.contains("dokploy=0"),
        "the platform was not stopped: {log}"
    );
    match case.flavour {
        PaasFlavour::Coolify => {
            assert!(log.contains("docker stop"), "{log}");
            assert!(log.contains("docker start"), "{log}");
        }
        PaasFlavour::Dokploy => {
            assert!(log.contains(&format!("{}=0", SITE.0)), "{log}");
            assert!(log.contains(&format!("{}=1", SITE.0)), "{log}");
        }
    }
}

/// A host whose platform records no apps (its tables absent) backs up as
/// before: no app artifact, no app entry; naming an app is refused
/// saying there are none.
pub async fn apps_none(case: PaasRoundTrip) {
    let host = PaasHost::start(&case);
    let mut store = MemoryArtifacts::new();
    let report = host.platform.backup(&mut store).await.unwrap();
    assert!(report.apps.is_empty(), "{report:?}");
    assert!(
        ArtifactSource::records(&store)
            .iter()
            .all(|r| r.app.is_none()),
        "no app artifact"
    );
    let mut named = MemoryArtifacts::new().with_apps(AppSelection {
        only: vec!["blog".into()],
        exclude: Vec::new(),
    });
    let err = host.platform.backup(&mut named).await.unwrap_err();
    assert!(
        err.hint().unwrap_or_default().contains("There are no apps"),
        "{err:?}"
    );
}
