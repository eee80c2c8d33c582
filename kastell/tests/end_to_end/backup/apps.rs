//! The backup engine with the users' apps of a Coolify or Dokploy host:
//! the app each artifact belongs to survives into the published manifest,
//! and a restore of one app runs in place, the platform never stopped,
//! after a safety backup of just that app.

#![cfg(all(feature = "coolify", feature = "dokploy"))]
// Test helpers: a panic is the test failing, with the error shown.
#![allow(clippy::unwrap_used)]

use crate::paas_host;

use kastell::engine::backup::{BackupRequest, TransferProgress};
use kastell_core::Transport;
use kastell_core::types::{AppSelection, ArtifactRecord};
use kastell_testkit::platform::{AppsHost, BLOG_DB, SITE};
use paas_host::{Kind, engine, record};

fn tagged(records: &[ArtifactRecord]) -> Vec<String> {
    let mut keys: Vec<String> = records
        .iter()
        .filter_map(|r| r.app.as_ref().map(|a| a.app.clone()))
        .collect();
    keys.sort();
    keys
}

fn only(names: &[&str]) -> AppSelection {
    AppSelection {
        only: names.iter().map(|n| (*n).to_owned()).collect(),
        exclude: Vec::new(),
    }
}

async fn one_app_in_place(kind: Kind) {
    let apps = AppsHost::start(&paas_host::case(kind), true);
    let host = &apps.host;
    let before = apps.state();
    let tmp = tempfile::tempdir().unwrap();
    let host_key = host.sshd.ssh().host_key().await.unwrap().fingerprint;
    let created = engine(tmp.path())
        .with_apps(only(&[SITE.1, BLOG_DB.0]))
        .create(&BackupRequest {
            server: record(kind),
            platform: host.platform.clone(),
            transport: host.transport.clone(),
            host_key: Some(host_key),
            transfer: TransferProgress::none(),
        })
        .await
        .unwrap();
    let stored = engine(tmp.path()).find("paas-1", &created.id).unwrap();
    let manifest = stored.manifest.unwrap();
    assert_eq!(
        tagged(&manifest.artifacts),
        [SITE.0, BLOG_DB.0],
        "the manifest on disk says which app each artifact is of: {:?}",
        manifest.artifacts
    );
    assert_eq!(created.report.apps.len(), 2);

    apps.change_everything();
    host.shim.clear_commands().unwrap();
    let outcome = engine(tmp.path())
        .with_apps(only(&[SITE.0]))
        .restore(paas_host::restore_request(host, kind, &created.id, true))
        .await;
    assert!(outcome.success(), "{outcome:#?}");
    let now = apps.state();
    assert_eq!(now.3, before.3, "the site's files are back");
    assert_ne!(now.0, before.0, "the blog was not restored (not selected)");
    let names: Vec<&str> = outcome.steps.iter().map(|s| s.name.as_str()).collect();
    assert!(
        names.iter().any(|n| n.starts_with("Restore app site")),
        "{names:?}"
    );
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("Stop ") || n.starts_with("Start ")),
        "the platform is neither stopped nor started: {names:?}"
    );
    let log = host.shim.commands().join("\n");
    assert!(
        !log.contains("compose") && !log.contains("dokploy=0"),
        "{log}"
    );
    let safety = outcome.safety_backup.unwrap();
    let safety = engine(tmp.path()).find("paas-1", &safety).unwrap();
    assert_eq!(
        tagged(&safety.manifest.unwrap().artifacts),
        [SITE.0],
        "the safety backup holds the app being replaced"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coolify_restores_one_app_in_place() {
    one_app_in_place(Kind::Coolify).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dokploy_restores_one_app_in_place() {
    one_app_in_place(Kind::Dokploy).await;
}
