//! The applications a platform runs for its user (Coolify's and Dokploy's
//! resources): which app an artifact belongs to, which apps a backup or
//! restore covers, and what a backup held per app.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What kind of app data an artifact holds, and so which tool restores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AppDataKind {
    /// A PostgreSQL database resource: `pg_dump -Fc`, restored with
    /// `pg_restore`.
    Postgres,
    /// A MySQL database resource: `mysqldump --single-transaction`, replayed
    /// with `mysql`.
    Mysql,
    /// A MariaDB database resource: `mariadb-dump --single-transaction`,
    /// replayed with `mariadb`.
    Mariadb,
    /// A MongoDB database resource: `mongodump --archive`, restored with
    /// `mongorestore --archive --drop`.
    Mongo,
    /// A Redis database resource: its RDB file after `BGSAVE`.
    Redis,
    /// A Docker volume of an application: a tar of its contents, taken
    /// with the containers using it paused.
    Volume,
}

impl AppDataKind {
    /// The word used in artifact names and tables (`postgres`, `volume`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Mysql => "mysql",
            Self::Mariadb => "mariadb",
            Self::Mongo => "mongo",
            Self::Redis => "redis",
            Self::Volume => "volume",
        }
    }

    /// Whether this is a database resource (dumped with its own tool).
    pub fn is_database(self) -> bool {
        self != Self::Volume
    }

    /// How consistent a copy of this kind is, as the README states it.
    pub fn consistency(self) -> &'static str {
        match self {
            Self::Postgres => "consistent (pg_dump snapshot)",
            Self::Mysql | Self::Mariadb => "consistent for InnoDB tables (--single-transaction)",
            Self::Mongo => "consistent per collection (mongodump)",
            Self::Redis => "consistent (BGSAVE snapshot)",
            Self::Volume => "consistent (its containers paused while copied)",
        }
    }
}

/// Whether `key` is safe as an app key, a volume name or part of an
/// artifact name: 1 to 64 ASCII letters, digits, `-`, `_` and `.`,
/// starting with a letter or digit. Everything a server reports is checked
/// with it before it reaches a command line or a file name.
pub fn is_app_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 64
        && key.as_bytes()[0].is_ascii_alphanumeric()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The app an artifact belongs to and what part of it the artifact is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppData {
    /// The app's key on its platform (Coolify's resource uuid, Dokploy's
    /// `appName`): what its containers are found by.
    pub app: String,
    /// The name the platform shows for it (free text, for people).
    pub name: String,
    /// What the artifact holds.
    pub kind: AppDataKind,
    /// For [`AppDataKind::Volume`]: the Docker volume's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<String>,
}

impl AppData {
    /// Refuses (`InvalidInput`) an app key or volume name that is not a
    /// plain key ([`is_app_key`]) and a volume artifact without a volume:
    /// a manifest read back (perhaps from a repository) is checked before
    /// any of it reaches the server.
    pub fn check(&self) -> Result<()> {
        if !is_app_key(&self.app) {
            return Err(Error::invalid_input(format!(
                "app key {:?} is not a plain name (letters, digits, '-', '_', '.')",
                self.app
            )));
        }
        match (&self.volume, self.kind) {
            (Some(v), AppDataKind::Volume) if is_app_key(v) => Ok(()),
            (None, kind) if kind.is_database() => Ok(()),
            _ => Err(Error::invalid_input(format!(
                "the {} artifact of app {} names no valid volume",
                self.kind.as_str(),
                self.app
            ))),
        }
    }

    /// Whether `word` names this app (its key or its shown name).
    pub fn named(&self, word: &str) -> bool {
        self.app == word || self.name == word
    }
}

/// Which apps a backup or restore covers: all of them (the default), only
/// those named, or all but those named. A name is an app's key or its
/// shown name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppSelection {
    /// Only these apps (`--app`); empty: every app.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only: Vec<String>,
    /// Never these apps (`--exclude-app`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
}

static EVERY_APP: AppSelection = AppSelection {
    only: Vec::new(),
    exclude: Vec::new(),
};

impl AppSelection {
    /// Every app.
    pub fn every() -> &'static AppSelection {
        &EVERY_APP
    }

    /// Whether nothing is selected or left out.
    pub fn is_every(&self) -> bool {
        self.only.is_empty() && self.exclude.is_empty()
    }

    /// Whether only named apps are covered (a restore then puts back just
    /// their data, in place, leaving the platform running).
    pub fn is_only(&self) -> bool {
        !self.only.is_empty()
    }

    /// Whether `app` is covered.
    pub fn covers(&self, app: &AppData) -> bool {
        (self.only.is_empty() || self.only.iter().any(|w| app.named(w)))
            && !self.exclude.iter().any(|w| app.named(w))
    }

    /// Refuses (`InvalidInput`) a name in the selection that matches none
    /// of `found` (the apps the server or backup has), listing them so
    /// the user can pick; `where_` says where they were looked for (`on
    /// web-1`, `in backup 2026-...`).
    pub fn check_against(&self, found: &[AppData], where_: &str) -> Result<()> {
        let unknown: Vec<&String> = self
            .only
            .iter()
            .chain(&self.exclude)
            .filter(|w| !found.iter().any(|a| a.named(w)))
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        let mut names: Vec<String> = found
            .iter()
            .map(|a| {
                if a.name == a.app || a.name.is_empty() {
                    a.app.clone()
                } else {
                    format!("{} ({})", a.name, a.app)
                }
            })
            .collect();
        names.sort();
        names.dedup();
        let quoted: Vec<String> = unknown.iter().map(|w| format!("{w:?}")).collect();
        Err(
            Error::invalid_input(format!("no app named {} {where_}", quoted.join(", "))).with_hint(
                if names.is_empty() {
                    format!("There are no apps {where_}: leave out --app and --exclude-app")
                } else {
                    format!("Apps found {where_}: {}", names.join(", "))
                },
            ),
        )
    }
}

/// What a backup held for one app: its artifacts, their size estimated
/// before and stored after, and how consistent each copy is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct AppBackup {
    /// The app's key.
    pub app: String,
    /// The name the platform shows for it.
    pub name: String,
    /// The artifacts written for it.
    pub artifacts: Vec<String>,
    /// The bytes its data took on the server before the backup (the `du`
    /// of its volumes), when it could be measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_bytes: Option<u64>,
    /// The bytes its artifacts take in the backup (as stored).
    pub stored_bytes: u64,
    /// How consistent its copy is (one line per kind of data).
    pub consistency: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(key: &str, name: &str) -> AppData {
        AppData {
            app: key.into(),
            name: name.into(),
            kind: AppDataKind::Postgres,
            volume: None,
        }
    }

    #[test]
    fn keys_refuse_what_could_escape_a_command_or_path() {
        for bad in [
            "",
            ".x",
            "-x",
            "a/b",
            "..",
            "a b",
            "a;b",
            "a\nb",
            &"x".repeat(65),
        ] {
            assert!(!is_app_key(bad), "{bad:?} accepted");
        }
        for good in ["x8k2m", "blog-db_1", "postgres-data-abc.1"] {
            assert!(is_app_key(good), "{good:?} refused");
        }
        let mut volume = app("k1", "blog");
        volume.kind = AppDataKind::Volume;
        assert!(volume.check().is_err(), "a volume artifact needs a volume");
        volume.volume = Some("../../etc".into());
        assert!(volume.check().is_err());
        volume.volume = Some("k1-data".into());
        assert!(volume.check().is_ok());
        assert!(app("../x", "x").check().is_err());
    }

    #[test]
    fn a_selection_matches_keys_and_names_and_refuses_unknown_ones() {
        let found = [app("k1", "blog"), app("k2", "shop")];
        let only = AppSelection {
            only: vec!["blog".into()],
            exclude: Vec::new(),
        };
        assert!(only.covers(&found[0]) && !only.covers(&found[1]));
        let exclude = AppSelection {
            only: Vec::new(),
            exclude: vec!["k2".into()],
        };
        assert!(exclude.covers(&found[0]) && !exclude.covers(&found[1]));
        assert!(AppSelection::every().covers(&found[1]));
        let err = AppSelection {
            only: vec!["nope".into()],
            exclude: Vec::new(),
        }
        .check_against(&found, "on web-1")
        .unwrap_err();
        assert!(err.message().contains("\"nope\""), "{err}");
        let hint = err.hint().unwrap_or_default().to_owned();
        assert!(
            hint.contains("blog (k1)") && hint.contains("shop (k2)"),
            "{hint}"
        );
        assert!(only.check_against(&found, "on web-1").is_ok());
    }

    #[test]
    fn dockers_health_words_are_read_exactly() {
        assert_eq!(AppHealth::parse("none").unwrap(), None);
        for health in [
            AppHealth::Healthy,
            AppHealth::Starting,
            AppHealth::Unhealthy,
        ] {
            assert_eq!(AppHealth::parse(health.as_str()).unwrap(), Some(health));
        }
        for bad in [
            "",
            "Healthy",
            "healthy ",
            "ok",
            "unhealthy\nhealthy",
            "\u{1b}[31m",
        ] {
            let err = AppHealth::parse(bad).unwrap_err();
            assert!(!err.message().contains('\u{1b}'), "{err}");
        }
        assert!(
            AppHealth::Unhealthy > AppHealth::Starting && AppHealth::Starting > AppHealth::Healthy
        );
    }
}

/// What a platform found of one app's data on a host
/// ([`crate::Platform::observe_app`]), for a rehearsal to compare with the
/// backup. Everything in it came from the server: hostile text, to compare
/// and show escaped, never to run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppObserved {
    /// Whether the app's container runs (a database resource's own; for a
    /// volume, a container using it).
    pub running: bool,
    /// For a PostgreSQL resource whose container runs: the rows of each
    /// table, by its name as `format('%I.%I', schema, table)` writes it
    /// (as `pg_dump` names it in the dump).
    pub rows: Option<BTreeMap<String, u64>>,
    /// For a volume: the SHA-256 (lowercase hex) of each regular file, by
    /// its path relative to the volume (`img/photo.jpg`).
    pub files: Option<BTreeMap<String, String>>,
    /// What Docker's health check says of the app's running container
    /// (for a volume, the worst of the containers using it); `None` when
    /// none of them declares a health check.
    pub health: Option<AppHealth>,
}

/// Docker's verdict on a container that declares a health check
/// (`docker inspect`'s `.State.Health.Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AppHealth {
    /// The check passes.
    Healthy,
    /// The container is in its start period: no verdict yet.
    Starting,
    /// The check failed as many times in a row as the container allows.
    Unhealthy,
}

impl AppHealth {
    /// Docker's word for it (`healthy`, `starting`, `unhealthy`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Starting => "starting",
            Self::Unhealthy => "unhealthy",
        }
    }

    /// Reads Docker's word exactly: `None` for `none` (no health check);
    /// anything else is refused as `Corrupt` (a word kastell does not know
    /// is never taken for a verdict), shown escaped.
    pub fn parse(word: &str) -> Result<Option<Self>> {
        match word {
            "none" => Ok(None),
            "healthy" => Ok(Some(Self::Healthy)),
            "starting" => Ok(Some(Self::Starting)),
            "unhealthy" => Ok(Some(Self::Unhealthy)),
            _ => {
                let shown: String = word
                    .chars()
                    .take(40)
                    .flat_map(char::escape_default)
                    .collect();
                Err(Error::new(
                    crate::error::ErrorKind::Corrupt,
                    format!(
                        "Docker's health status \"{shown}\" is none of none, starting, healthy, unhealthy"
                    ),
                ))
            }
        }
    }
}
