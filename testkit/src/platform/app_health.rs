//! The trial of what a rehearsal reads of an app's Docker health check
//! ([`kastell_core::Platform::observe_app`], through `docker inspect`'s
//! `.State.Health.Status` over SSH): nothing when no container declares
//! one, each of Docker's statuses as it changes, the worst of the
//! containers using a volume, and a status kastell does not know refused.

use std::os::unix::fs::PermissionsExt;

use kastell_core::ErrorKind;
use kastell_core::types::{AppData, AppDataKind, AppHealth};

use super::paas::{PaasHost, PaasRoundTrip};
use crate::shim::{AppContainer, AppKind};

/// The database app of the trial, and the volume two containers share.
const DB: &str = "healthdb0k2m";
const VOLUME: &str = "healthweb0k2-data";

/// See the module: a MySQL app and two application containers sharing a
/// volume on a host of `case`, their health files written as a container
/// declaring a health check would make Docker answer.
pub async fn apps_health(case: PaasRoundTrip) {
    let host = PaasHost::start(&case);
    let add = |key: &str, kind, volumes: &[&str]| {
        host.shim
            .add_app(&AppContainer {
                key: key.to_owned(),
                kind,
                volumes: volumes.iter().map(|v| (*v).to_owned()).collect(),
            })
            .unwrap()
    };
    let db = add(DB, AppKind::Mysql, &[]);
    let web = add("healthweb0k2", AppKind::App, &[VOLUME]);
    let worker = add("healthwrk0k2", AppKind::App, &[VOLUME]);
    let declare = |container: &str, status: &str| {
        let path = host
            .shim
            .shim()
            .state_dir()
            .join("apps")
            .join(container)
            .join("health");
        std::fs::write(&path, format!("{status}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    };
    let database = AppData {
        app: DB.to_owned(),
        name: "shop db".to_owned(),
        kind: AppDataKind::Mysql,
        volume: None,
    };
    let volume = AppData {
        app: "healthweb0k2".to_owned(),
        name: "site".to_owned(),
        kind: AppDataKind::Volume,
        volume: Some(VOLUME.to_owned()),
    };
    let health = |part: &AppData| {
        let platform = host.platform.clone();
        let part = part.clone();
        async move {
            let seen = platform.observe_app(&part).await.unwrap();
            assert!(seen.running, "{seen:?}");
            seen.health
        }
    };

    assert_eq!(health(&database).await, None, "no health check declared");
    declare(&db, "starting 1 healthy");
    assert_eq!(health(&database).await, Some(AppHealth::Starting));
    assert_eq!(health(&database).await, Some(AppHealth::Healthy));
    declare(&db, "unhealthy");
    assert_eq!(health(&database).await, Some(AppHealth::Unhealthy));
    declare(&db, "fine\u{1b}[2J");
    let err = host.platform.observe_app(&database).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(
        err.message().contains("fine") && !err.message().contains('\u{1b}'),
        "{err}"
    );

    assert_eq!(health(&volume).await, None, "neither declares one");
    declare(&web, "healthy");
    assert_eq!(health(&volume).await, Some(AppHealth::Healthy));
    declare(&worker, "unhealthy");
    assert_eq!(
        health(&volume).await,
        Some(AppHealth::Unhealthy),
        "the worst of the volume's containers"
    );
    let log = host.shim.commands().join("\n");
    assert!(
        log.contains("docker inspect --type container --format {{if .State.Health}}"),
        "{log}"
    );
}
