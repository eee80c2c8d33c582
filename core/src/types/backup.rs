//! Backup ids, artifacts and the sink/source a platform streams through.

use std::fmt;
use std::io::{Read, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::apps::{AppBackup, AppData, AppSelection};
use crate::error::{Error, Result};
use crate::wire::{DumpJobs, WireCodec, WirePlan};

/// The id of a local backup: in the original tool's format,
/// `YYYY-MM-DD_HH-MM-SS-mmm` (UTC), so ids sort by time.
///
/// [`BackupId::new`] accepts any id of ASCII letters, digits, `-` and `_`
/// (up to 64), which is also what makes an id safe to join to a path: it can
/// hold no separator and no `..`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BackupId(String);

impl BackupId {
    /// Validates and wraps a backup id.
    pub fn new(id: impl Into<String>) -> Result<Self> {
        let id = id.into();
        let valid = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(Self(id))
        } else {
            Err(Error::invalid_input(format!(
                "invalid backup id {id:?}: only letters, digits, '-' and '_' are allowed (at most 64)"
            ))
            .with_hint("Use backup-list to see the available backup ids"))
        }
    }

    /// The id for a backup started at `time`.
    pub fn at(time: SystemTime) -> Self {
        let millis = time
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        Self(format_utc_millis(millis))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BackupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for BackupId {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        Self::new(value)
    }
}

impl From<BackupId> for String {
    fn from(id: BackupId) -> Self {
        id.0
    }
}

/// Formats milliseconds since the epoch as `YYYY-MM-DD_HH-MM-SS-mmm` (UTC).
fn format_utc_millis(millis: u128) -> String {
    let ms = (millis % 1000) as u32;
    let secs = (millis / 1000) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = crate::time::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}_{:02}-{:02}-{:02}-{ms:03}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// How an artifact's bytes are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArtifactFormat {
    /// `pg_dump -Fc` custom format, restored with `pg_restore`.
    PgCustom,
    /// Plain SQL from `pg_dump` (legacy backups).
    PgPlain,
    /// A tar archive.
    Tar,
    /// A tar of a `pg_dump -Fd` directory (a parallel dump): `pg_restore`
    /// reads the directory it unpacks to.
    PgDirectoryTar,
    /// Opaque bytes.
    Raw,
}

/// Compression applied by kastell on the local side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Stored as produced.
    #[default]
    None,
    /// gzip (the original tool's backups).
    Gzip,
    /// zstd.
    Zstd,
}

/// What a platform is about to write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactSpec {
    /// File name inside the backup (`coolify-db.dump`); letters, digits,
    /// `-`, `_` and `.` only, checked by the sink.
    pub name: String,
    /// Layout of the bytes.
    pub format: ArtifactFormat,
}

/// A finished artifact: its name, size and checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactRecord {
    /// File name inside the backup.
    pub name: String,
    /// Layout of the (uncompressed) bytes.
    pub format: ArtifactFormat,
    /// Compression of the stored file.
    pub compression: Compression,
    /// Size of the stored file in bytes.
    pub size: u64,
    /// Lower-case hex SHA-256 of the stored file.
    pub sha256: String,
    /// The app whose data this is (a database dump or volume of one of
    /// the platform's applications); absent for the platform's own
    /// artifacts and in every older manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<AppData>,
}

/// Where a platform streams backup artifacts. The engine owns it: it stages,
/// hashes, compresses and publishes what is written.
///
/// A platform writes each artifact with
/// [`ArtifactSinkExt::stream`](crate::ArtifactSinkExt::stream): one server
/// command, its stdout stored and sealed. That is all it needs: the sink
/// carries the engine's plan for this host ([`ArtifactSink::wire`]), and
/// the helper compresses on the server when the plan says so. A platform
/// that writes bytes it has in hand uses [`open`](ArtifactSink::open) and
/// [`seal`](ArtifactSink::seal).
///
/// A sink that wraps another forwards every method (put
/// `#[deny(clippy::missing_trait_methods)]` on its impl): a default left
/// in place would silently replace the inner sink's answer.
pub trait ArtifactSink: Send {
    /// Opens a new artifact for writing. Refuses a name already opened or
    /// one that is not a plain file name.
    fn open(&mut self, spec: &ArtifactSpec) -> Result<Box<dyn Write + Send>>;

    /// Declares the artifact complete once its writer has been dropped, and
    /// returns its record. Refuses an artifact that was never opened.
    fn seal(&mut self, name: &str) -> Result<ArtifactRecord>;

    /// How artifacts travel from the server for this backup: the codec the
    /// engine chose after probing the host and the link, and why. The
    /// default, [`WirePlan::unplanned`], keeps the wire raw: a sink that
    /// accepts compressed bytes says otherwise.
    fn wire(&self) -> &WirePlan {
        WirePlan::unplanned()
    }

    /// How many parallel jobs the user allows a database dump. The
    /// default, one, streams the dump and writes nothing on the server.
    fn dump_jobs(&self) -> DumpJobs {
        DumpJobs::ONE
    }

    /// Which of the platform's apps the user wants backed up. The
    /// default: every app.
    fn apps(&self) -> &AppSelection {
        AppSelection::every()
    }

    /// Records that the sealed artifact `name` holds data of the app
    /// `app`, and returns its record with it. Refuses an artifact that was
    /// not sealed. The default refuses: a sink that cannot keep the app
    /// would lose which app a restore puts it back into.
    fn assign_app(&mut self, name: &str, app: &AppData) -> Result<ArtifactRecord> {
        let _ = app;
        Err(Error::unsupported(format!(
            "this artifact store cannot record which app {name} belongs to"
        )))
    }

    /// Opens an artifact whose bytes arrive encoded with `codec` (the
    /// server compressed them); `reason` says why, for the record. The
    /// default accepts only [`WireCodec::Raw`].
    fn open_encoded(
        &mut self,
        spec: &ArtifactSpec,
        codec: WireCodec,
        reason: &str,
    ) -> Result<Box<dyn Write + Send>> {
        let _ = reason;
        if codec == WireCodec::Raw {
            self.open(spec)
        } else {
            Err(Error::unsupported(format!(
                "this artifact store cannot take {codec}-compressed bytes for {}",
                spec.name
            )))
        }
    }
}

/// Where a platform reads artifacts from during a restore. Implementations
/// verify checksums before they hand anything out.
pub trait ArtifactSource: Send + Sync {
    /// The artifacts of the backup.
    fn records(&self) -> Vec<ArtifactRecord>;

    /// Opens one artifact for reading (decompressed). Refuses unknown names.
    fn open(&self, name: &str) -> Result<Box<dyn Read + Send>>;

    /// Opens one artifact as stored, with the compression of what the
    /// reader yields, so a platform can send compressed bytes and
    /// decompress on the server. The default yields the decompressed bytes
    /// ([`Compression::None`]).
    fn open_stored(&self, name: &str) -> Result<(Box<dyn Read + Send>, Compression)> {
        Ok((self.open(name)?, Compression::None))
    }

    /// Whether the host being restored can decompress zstd, as the engine
    /// found before the restore: [`crate::wire::restore_feed`] then sends
    /// stored zstd bytes as they are. The default, no, sends decompressed
    /// bytes.
    fn server_unzstd(&self) -> bool {
        false
    }

    /// Which apps' data the restore puts back: every app (the default),
    /// all but some, or only some: then only their data, in place, with
    /// the platform left running (see [`AppSelection::is_only`]).
    fn apps(&self) -> &AppSelection {
        AppSelection::every()
    }
}

/// A source restoring only the apps `apps` selects, reading everything
/// from `inner`.
#[derive(Debug)]
pub struct ScopedSource<S> {
    inner: S,
    apps: AppSelection,
}

impl<S: ArtifactSource> ScopedSource<S> {
    /// `inner`, restoring the apps `apps` selects.
    pub fn new(inner: S, apps: AppSelection) -> Self {
        Self { inner, apps }
    }
}

#[deny(clippy::missing_trait_methods)]
impl<S: ArtifactSource> ArtifactSource for ScopedSource<S> {
    fn records(&self) -> Vec<ArtifactRecord> {
        self.inner.records()
    }

    fn open(&self, name: &str) -> Result<Box<dyn Read + Send>> {
        self.inner.open(name)
    }

    fn open_stored(&self, name: &str) -> Result<(Box<dyn Read + Send>, Compression)> {
        self.inner.open_stored(name)
    }

    fn server_unzstd(&self) -> bool {
        self.inner.server_unzstd()
    }

    fn apps(&self) -> &AppSelection {
        &self.apps
    }
}

/// What a platform's backup produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupReport {
    /// Platform version at backup time (`unknown` when it could not be read).
    pub platform_version: String,
    /// The sealed artifacts.
    pub artifacts: Vec<ArtifactRecord>,
    /// Paths that were configured but missing on the server.
    pub skipped: Vec<String>,
    /// Anything the user should know.
    pub warnings: Vec<String>,
    /// What the backup held per app (empty: a platform without apps, or
    /// a host that runs none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apps: Vec<AppBackup>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ids_use_the_original_format_and_sort_by_time() {
        // 2026-03-15T12:30:45.123Z
        let t = UNIX_EPOCH + Duration::from_millis(1_773_577_845_123);
        assert_eq!(BackupId::at(t).as_str(), "2026-03-15_12-30-45-123");
        assert_eq!(BackupId::at(UNIX_EPOCH).as_str(), "1970-01-01_00-00-00-000");
        // Leap day.
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(BackupId::at(leap).as_str(), "2000-02-29_00-00-00-000");
        let earlier = BackupId::at(t);
        let later = BackupId::at(t + Duration::from_millis(1));
        assert!(earlier < later);
        let much_later = BackupId::at(t + Duration::from_secs(86_400 * 400));
        assert!(later < much_later);
    }

    #[test]
    fn ids_refuse_traversal() {
        for bad in [
            "",
            "..",
            "../x",
            "a/b",
            "a\\b",
            "a.b",
            "a b",
            &"x".repeat(65),
        ] {
            assert!(BackupId::new(bad).is_err(), "{bad:?} accepted");
        }
        assert!(BackupId::new("2026-03-15_12-30-45-123").is_ok());
    }
}
