//! The platform's apps: their databases and volumes, found from the
//! platform's own records, each backed up as its own artifact tagged with
//! the app it belongs to, and put back after the platform's own data (or
//! alone, in place).
//!
//! - **Discovery**: the spec's [`crate::AppQuery`]s over the platform's
//!   database (only those whose tables exist), answered as one JSON array.
//!   Everything in it is hostile input: a key or volume name that is not
//!   a plain name ([`kastell_core::types::is_app_key`]) is skipped with a
//!   warning, and names are only ever shown.
//! - **Containers**: a database resource's by its key
//!   ([`crate::AppContainers`]); a volume's users by `docker ps --filter
//!   volume=`.
//! - **Consistency**: a database is dumped by its own tool, which is
//!   consistent ([`AppDataKind::consistency`]); a volume is copied with
//!   the containers using it paused and always unpaused after.
//! - **A fresh host** (a recovery): no app has a container until the
//!   platform deploys it, so kastell asks the platform's API to, with a
//!   short-lived credential it writes into the restored database and
//!   always deletes ([`deploy`]).

mod backup;
pub(crate) mod commands;
mod deploy;
mod observe;
pub(crate) mod restore;

use std::collections::BTreeMap;

use kastell_core::types::{AppData, AppDataKind, AppSelection, ArtifactRecord, is_app_key};
use kastell_core::{Error, ErrorKind, Result, TransportExt};
use serde::Deserialize;

use crate::platform::PaasPlatform;

pub use deploy::{
    STEP_CHECK_APP, STEP_DEPLOY_APP, STEP_MINT_TOKEN, STEP_REVOKE_TOKEN, STEP_START_PLATFORM,
};
pub use restore::STEP_RESTORE_APP;

/// The longest app name kept for display.
const NAME_MAX: usize = 100;

/// One row of the discovery query, as the server sent it.
#[derive(Debug, Deserialize)]
struct Row {
    kind: Option<String>,
    key: Option<String>,
    name: Option<String>,
    volume: Option<String>,
}

/// What discovery found: every app's data in a stable order (by key,
/// databases before volumes), and what was skipped.
#[derive(Debug, Default)]
pub(crate) struct Found {
    pub(crate) parts: Vec<AppData>,
    pub(crate) warnings: Vec<String>,
}

fn kind_of(word: &str) -> Option<AppDataKind> {
    Some(match word {
        "postgres" => AppDataKind::Postgres,
        "mysql" => AppDataKind::Mysql,
        "mariadb" => AppDataKind::Mariadb,
        "mongo" => AppDataKind::Mongo,
        "redis" => AppDataKind::Redis,
        "volume" => AppDataKind::Volume,
        _ => return None,
    })
}

/// A name as shown: control characters dropped, at most [`NAME_MAX`]
/// characters, the key when empty.
fn shown_name(name: Option<&str>, key: &str) -> String {
    let clean: String = name
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(NAME_MAX)
        .collect();
    let clean = clean.trim().to_owned();
    if clean.is_empty() {
        key.to_owned()
    } else {
        clean
    }
}

/// Parses the discovery answer. Refuses (`Corrupt`) an answer that is not
/// a JSON array of rows; skips, with a warning, rows whose kind, key or
/// volume is unusable.
pub(crate) fn parse_found(text: &str) -> Result<Found> {
    let rows: Vec<Row> = serde_json::from_str(text.trim()).map_err(|e| {
        Error::new(
            ErrorKind::Corrupt,
            format!("the platform's list of apps is not the JSON kastell asked for: {e}"),
        )
    })?;
    let mut found = Found::default();
    let mut seen = std::collections::BTreeSet::new();
    for row in rows {
        let key = row.key.unwrap_or_default();
        let shown = shown_name(row.name.as_deref(), &key);
        let Some(kind) = row.kind.as_deref().and_then(kind_of) else {
            found.warnings.push(format!(
                "app {shown:?}: a resource of a kind kastell does not back up was skipped"
            ));
            continue;
        };
        if !is_app_key(&key) {
            found.warnings.push(format!(
                "app {shown:?}: its key is not a plain name, so its {} data was skipped",
                kind.as_str()
            ));
            continue;
        }
        let volume = match (kind, row.volume) {
            (AppDataKind::Volume, Some(v)) if is_app_key(&v) => Some(v),
            (AppDataKind::Volume, _) => {
                found.warnings.push(format!(
                    "app {shown:?} ({key}): a volume whose name is not a plain name was skipped"
                ));
                continue;
            }
            _ => None,
        };
        let part = AppData {
            app: key,
            name: shown,
            kind,
            volume,
        };
        if seen.insert((part.app.clone(), part.kind, part.volume.clone())) {
            found.parts.push(part);
        }
    }
    found.parts.sort_by(|a, b| {
        (&a.app, a.kind == AppDataKind::Volume, &a.volume).cmp(&(
            &b.app,
            b.kind == AppDataKind::Volume,
            &b.volume,
        ))
    });
    Ok(found)
}

/// The app data of `records` that `selection` covers, in order: what a
/// restore of those apps puts back.
pub(crate) fn selected_parts(
    records: &[(ArtifactRecord, AppData)],
    selection: &AppSelection,
) -> Vec<AppData> {
    records
        .iter()
        .map(|(_, a)| a.clone())
        .filter(|a| selection.covers(a))
        .collect()
}

/// The parts of `parts` grouped by app key, in order.
pub(crate) fn by_app(parts: &[AppData]) -> BTreeMap<&str, Vec<&AppData>> {
    let mut apps: BTreeMap<&str, Vec<&AppData>> = BTreeMap::new();
    for part in parts {
        apps.entry(part.app.as_str()).or_default().push(part);
    }
    apps
}

/// The artifact name of `part`, the `n`th volume of its app (from 1):
/// `app-<key>-<kind>.<ext>`, or `app-<key>-volume-<n>.tar`.
pub(crate) fn artifact_name(part: &AppData, n: usize) -> String {
    let ext = match part.kind {
        AppDataKind::Postgres => "dump",
        AppDataKind::Mysql | AppDataKind::Mariadb => "sql",
        AppDataKind::Mongo => "archive",
        AppDataKind::Redis => "rdb",
        AppDataKind::Volume => return format!("app-{}-volume-{n}.tar", part.app),
    };
    format!("app-{}-{}.{ext}", part.app, part.kind.as_str())
}

impl PaasPlatform {
    /// Lists the apps' data from the platform's records in the database
    /// container `container`: nothing when the spec names no apps or
    /// none of its tables exist.
    pub(crate) async fn discover_apps(&self, container: &str) -> Result<Found> {
        let queries = self.spec.apps.queries;
        if queries.is_empty() {
            return Ok(Found::default());
        }
        let out = self
            .transport
            .exec_checked(
                &commands::list_tables(self.spec, container)?,
                self.settings.short_timeout,
            )
            .await?;
        let tables = out.stdout_text();
        let tables: Vec<&str> = tables.lines().map(str::trim).collect();
        let usable: Vec<&str> = queries
            .iter()
            .filter(|q| q.tables.iter().all(|t| tables.contains(t)))
            .map(|q| q.sql)
            .collect();
        if usable.is_empty() {
            return Ok(Found::default());
        }
        let sql = usable.join(" UNION ALL ");
        let out = self
            .transport
            .exec_checked(
                &commands::query_json(self.spec, container, &sql)?,
                self.settings.short_timeout,
            )
            .await
            .map_err(|e| {
                e.or_hint(format!(
                    "kastell reads the apps from {}'s own tables; check that its database is \
                     healthy and of a version kastell knows",
                    self.spec.display_name
                ))
            })?;
        parse_found(&out.stdout_text())
    }

    /// The running container of the database resource `key`, if any.
    pub(crate) async fn app_container(&self, key: &str) -> Result<Option<String>> {
        self.container_id(&commands::find_app_container(
            self.spec.apps.containers,
            key,
        )?)
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_rows_are_skipped_and_names_only_shown() {
        let text = r#"[
            {"kind":"postgres","key":"k1","name":"blog\u001b[31m db","volume":null},
            {"kind":"volume","key":"k2","name":"shop","volume":"k2-data"},
            {"kind":"volume","key":"k2","name":"shop","volume":"../../etc"},
            {"kind":"redis","key":"a;rm -rf /","name":"x","volume":null},
            {"kind":"oracle","key":"k3","name":"y","volume":null},
            {"kind":"mysql","key":"k0","name":null,"volume":null}
        ]"#;
        let found = parse_found(text).unwrap();
        let keys: Vec<(&str, &str)> = found
            .parts
            .iter()
            .map(|p| (p.app.as_str(), p.kind.as_str()))
            .collect();
        assert_eq!(
            keys,
            [("k0", "mysql"), ("k1", "postgres"), ("k2", "volume")]
        );
        assert_eq!(found.parts[0].name, "k0", "an unnamed app shows its key");
        assert_eq!(found.parts[1].name, "blog[31m db", "no control characters");
        assert_eq!(found.warnings.len(), 3, "{:?}", found.warnings);
        assert!(parse_found("not json").is_err());
        assert!(parse_found("[]").unwrap().parts.is_empty());
    }

    #[test]
    fn artifact_names_are_plain_and_short() {
        let part = AppData {
            app: "x".repeat(64),
            name: "n".into(),
            kind: AppDataKind::Volume,
            volume: Some("v".repeat(64)),
        };
        let name = artifact_name(&part, 12);
        assert!(
            name.len() <= 128 && name.ends_with("-volume-12.tar"),
            "{name}"
        );
    }
}
