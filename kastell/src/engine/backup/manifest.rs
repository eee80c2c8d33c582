//! `manifest.json`: a superset of the original tool's manifest, so its
//! readers still work, plus checksums, sizes, versions and the host key.

use std::path::Path;

use kastell_core::types::{ArtifactFormat, ArtifactRecord, Compression};
use kastell_core::wire::WireTransfer;
use kastell_core::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};

use super::nofollow::BackupDir;
use crate::state::store::{MODE_BARE, MODE_COOLIFY, PLATFORM_BARE};

/// The manifest file's name.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The manifest format kastell writes (the original's has none, read as 1).
pub const FORMAT_VERSION: u32 = 2;

/// A backup's manifest. The first fields are the original tool's, with its
/// names and meanings (`coolifyVersion` holds any platform's version);
/// the rest are kastell's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Server name.
    pub server_name: String,
    /// Provider id (`hetzner`, ...), as in the server record.
    #[serde(default)]
    pub provider: String,
    /// The backup id (`YYYY-MM-DD_HH-MM-SS-mmm`).
    pub timestamp: String,
    /// Platform version, stored under the original's key `coolifyVersion`
    /// (whatever the platform) so its readers still find it.
    #[serde(default, rename = "coolifyVersion")]
    pub platform_version: String,
    /// Stored file names.
    #[serde(default)]
    pub files: Vec<String>,
    /// Platform of a managed backup (absent: bare, or a legacy Coolify one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// `bare` for bare backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,

    /// kastell: manifest format (absent in the original's: 1).
    #[serde(default = "legacy_format")]
    pub format_version: u32,
    /// kastell: the version that wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kastell_version: Option<String>,
    /// kastell: the provider's server id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_id: Option<String>,
    /// kastell: the SSH host key fingerprint seen while backing up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key: Option<String>,
    /// kastell: creation time, ISO-8601.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// kastell: compression of the stored files.
    #[serde(default)]
    pub compression: Compression,
    /// kastell: per-artifact format, size and SHA-256 of the stored file.
    #[serde(default)]
    pub artifacts: Vec<ArtifactRecord>,
    /// kastell: configured paths that did not exist on the server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    /// kastell: why it was taken, when not on request (a safety backup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// kastell: for the safety backup a restore takes of the state it is
    /// about to replace, the id of the backup that restore put back.
    /// Such a backup is never picked as the newest (see
    /// [`Manifest::safety_for`]); absent (every older manifest): an
    /// ordinary backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safety_for: Option<String>,
    /// kastell: how each artifact came over the wire (codec on the server,
    /// bytes sent, bytes they stand for, time).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wire: Vec<WireTransfer>,
    /// kastell: the repository and snapshot this local copy was pulled
    /// from (`offsite snapshot 1a2b3c4d`); absent for a backup taken here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pulled_from: Option<String>,
    /// kastell: each artifact's size and SHA-256 before compression,
    /// hashed as it streamed in, so a push into a repository need not
    /// decompress it first to learn them (absent in older backups, which
    /// are then read twice).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<ContentDigest>,
}

/// An artifact's bytes before compression: what a repository stores and
/// `checksums.sha256` there records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentDigest {
    /// The artifact's name.
    pub name: String,
    /// Its size in bytes, decompressed.
    pub size: u64,
    /// The SHA-256 of those bytes, lower-case hex.
    pub sha256: String,
}

fn legacy_format() -> u32 {
    1
}

/// Whether `name` is a plain artifact file name: letters, digits, `-`,
/// `_` and `.`, not hidden, not the manifest, at most 128 bytes. Anything
/// else (`../..`, an absolute path) could point outside the backup.
pub(crate) fn is_plain_artifact_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name != MANIFEST_FILE
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The stored file name of an artifact.
pub fn stored_file(record: &ArtifactRecord) -> String {
    match record.compression {
        Compression::None => record.name.clone(),
        Compression::Zstd => format!("{}.zst", record.name),
        Compression::Gzip => format!("{}.gz", record.name),
    }
}

impl Manifest {
    /// The platform this backup is of: `platform`, else `bare` for bare
    /// backups, else `coolify` (the original's default for legacy ones).
    pub fn platform_id(&self) -> &str {
        match (&self.platform, &self.mode) {
            (Some(p), _) => p,
            (None, Some(m)) if m == MODE_BARE => PLATFORM_BARE,
            _ => MODE_COOLIFY,
        }
    }

    /// The backup whose restore this one was the safety backup of, or
    /// `None` for an ordinary backup.
    pub fn safety_for(&self) -> Option<&str> {
        self.safety_for.as_deref()
    }

    /// Whether this manifest carries checksums (kastell's format).
    pub fn has_checksums(&self) -> bool {
        self.format_version >= FORMAT_VERSION && !self.artifacts.is_empty()
    }

    /// The artifacts: kastell's records, or for a legacy manifest records
    /// inferred from its file names (no checksum, size from disk).
    pub fn records(&self, dir: &Path) -> Vec<ArtifactRecord> {
        if self.has_checksums() {
            return self.artifacts.clone();
        }
        self.files
            .iter()
            .map(|file| {
                let (name, compression) = match file.strip_suffix(".gz") {
                    Some(stem) => (stem.to_owned(), Compression::Gzip),
                    None => (file.clone(), Compression::None),
                };
                let format = if name.ends_with(".sql") {
                    ArtifactFormat::PgPlain
                } else if name.ends_with(".tar") {
                    ArtifactFormat::Tar
                } else {
                    ArtifactFormat::Raw
                };
                let size = std::fs::symlink_metadata(dir.join(file))
                    .map(|m| m.len())
                    .unwrap_or(0);
                ArtifactRecord {
                    name,
                    format,
                    compression,
                    size,
                    sha256: String::new(),
                    app: None,
                }
            })
            .collect()
    }

    /// Reads `dir/manifest.json`. A missing file is `NotFound`; one that
    /// does not parse is `Corrupt`.
    /// Refuses (`Corrupt`) a directory or manifest that is a symbolic link
    /// or not a directory / regular file.
    pub fn read(dir: &Path) -> Result<Self> {
        Self::read_in(&BackupDir::open(dir)?)
    }

    /// Reads the manifest of the opened backup directory `dir`.
    pub(crate) fn read_in(dir: &BackupDir) -> Result<Self> {
        let bytes = dir.read(MANIFEST_FILE)?;
        Self::from_json(
            &bytes,
            &dir.path().join(MANIFEST_FILE).display().to_string(),
        )
    }

    /// Parses a manifest read from `origin` (named in the error). One that
    /// does not parse is `Corrupt`.
    /// Refuses one naming an artifact or file that is not a plain file
    /// name (`../../etc/passwd`, `/etc/shadow`): nothing outside the
    /// backup's directory is ever read for it.
    pub fn from_json(bytes: &[u8], origin: &str) -> Result<Self> {
        let manifest: Self = serde_json::from_slice(bytes).map_err(|e| {
            Error::new(
                ErrorKind::Corrupt,
                format!("{origin} is not a valid manifest: {e}"),
            )
            .with_hint("This backup cannot be restored; take a new one")
        })?;
        let names = manifest
            .artifacts
            .iter()
            .map(|r| r.name.as_str())
            .chain(manifest.files.iter().map(String::as_str));
        if let Some(bad) = names.into_iter().find(|n| !is_plain_artifact_name(n)) {
            return Err(Error::new(
                ErrorKind::Corrupt,
                format!(
                    "{origin} names the file {bad:?}, which is not a plain file name in the backup"
                ),
            )
            .with_hint("The manifest was altered; do not restore this backup, take a new one"));
        }
        Ok(manifest)
    }

    /// The manifest as pretty JSON (2-space indent, like the original).
    pub fn to_json(&self) -> Result<Vec<u8>> {
        serde_json::to_vec_pretty(self)
            .map_err(|e| Error::unexpected(format!("encoding the manifest: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_original_tools_manifests() {
        let dir = tempfile::tempdir().unwrap();
        let managed = r#"{"serverName":"web-1","provider":"hetzner","timestamp":"2026-03-15_12-30-45-123",
            "coolifyVersion":"4.0.0","files":["coolify-backup.sql.gz","coolify-config.tar.gz"],"platform":"dokploy"}"#;
        std::fs::write(dir.path().join(MANIFEST_FILE), managed).unwrap();
        std::fs::write(dir.path().join("coolify-backup.sql.gz"), b"12345").unwrap();
        let m = Manifest::read(dir.path()).unwrap();
        assert_eq!(m.platform_id(), "dokploy");
        assert_eq!(m.platform_version, "4.0.0");
        assert!(!m.has_checksums());
        let records = m.records(dir.path());
        assert_eq!(records[0].name, "coolify-backup.sql");
        assert_eq!(records[0].format, ArtifactFormat::PgPlain);
        assert_eq!(records[0].compression, Compression::Gzip);
        assert_eq!(records[0].size, 5);
        assert_eq!(records[1].format, ArtifactFormat::Tar);

        let bare = r#"{"serverName":"b","provider":"vultr","timestamp":"t","coolifyVersion":"n/a","files":["bare-config.tar.gz"],"mode":"bare"}"#;
        std::fs::write(dir.path().join(MANIFEST_FILE), bare).unwrap();
        assert_eq!(Manifest::read(dir.path()).unwrap().platform_id(), "bare");
        let legacy =
            r#"{"serverName":"c","provider":"x","timestamp":"t","coolifyVersion":"3","files":[]}"#;
        std::fs::write(dir.path().join(MANIFEST_FILE), legacy).unwrap();
        assert_eq!(Manifest::read(dir.path()).unwrap().platform_id(), "coolify");

        for escape in ["../../etc/passwd", "/etc/shadow", "manifest.json"] {
            let altered = format!(
                r#"{{"serverName":"b","timestamp":"t","formatVersion":2,"files":["a.tar"],
                "artifacts":[{{"name":"{escape}","format":"tar","compression":"none","size":1,"sha256":"x"}}]}}"#
            );
            std::fs::write(dir.path().join(MANIFEST_FILE), altered).unwrap();
            let err = Manifest::read(dir.path()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Corrupt, "{escape}");
            assert!(err.message().contains("not a plain file name"), "{err}");
        }
        let legacy = r#"{"serverName":"c","timestamp":"t","files":["../x.sql.gz"]}"#;
        std::fs::write(dir.path().join(MANIFEST_FILE), legacy).unwrap();
        assert_eq!(
            Manifest::read(dir.path()).unwrap_err().kind(),
            ErrorKind::Corrupt
        );

        std::fs::write(dir.path().join(MANIFEST_FILE), "{not json").unwrap();
        assert_eq!(
            Manifest::read(dir.path()).unwrap_err().kind(),
            ErrorKind::Corrupt
        );
    }

    #[test]
    fn the_safety_mark_round_trips_and_older_manifests_read_as_ordinary_backups() {
        // Written before the mark existed (a reason only): an ordinary backup.
        let older = r#"{"serverName":"web-1","timestamp":"2026-01-01_00-00-00-001","formatVersion":2,
            "reason":"safety backup before restoring 2026-01-01_00-00-00-000"}"#;
        let m = Manifest::from_json(older.as_bytes(), "older").unwrap();
        assert_eq!(m.safety_for(), None);
        let original = r#"{"serverName":"c","timestamp":"t","coolifyVersion":"3","files":[]}"#;
        assert_eq!(
            Manifest::from_json(original.as_bytes(), "original")
                .unwrap()
                .safety_for(),
            None
        );

        let marked = Manifest {
            safety_for: Some("2026-01-01_00-00-00-000".into()),
            ..m
        };
        let json: serde_json::Value = serde_json::from_slice(&marked.to_json().unwrap()).unwrap();
        assert_eq!(json["safetyFor"], "2026-01-01_00-00-00-000");
        let back = Manifest::from_json(&marked.to_json().unwrap(), "marked").unwrap();
        assert_eq!(back.safety_for(), Some("2026-01-01_00-00-00-000"));
        let plain = Manifest {
            safety_for: None,
            ..back
        };
        let json: serde_json::Value = serde_json::from_slice(&plain.to_json().unwrap()).unwrap();
        assert!(json.get("safetyFor").is_none(), "{json}");
    }

    #[test]
    fn kastell_manifests_keep_the_original_fields() {
        let m = Manifest {
            server_name: "web-1".into(),
            provider: "hetzner".into(),
            timestamp: "2026-03-15_12-30-45-123".into(),
            platform_version: "4.0.0".into(),
            files: vec!["coolify-db.dump.zst".into()],
            platform: Some("coolify".into()),
            mode: None,
            format_version: FORMAT_VERSION,
            kastell_version: Some("0.1.0".into()),
            server_id: None,
            host_key: Some("SHA256:abc".into()),
            created_at: None,
            compression: Compression::Zstd,
            content: Vec::new(),
            artifacts: vec![ArtifactRecord {
                name: "coolify-db.dump".into(),
                format: ArtifactFormat::PgCustom,
                compression: Compression::Zstd,
                size: 3,
                sha256: "ab".into(),
                app: None,
            }],
            skipped: vec![],
            reason: None,
            safety_for: None,
            wire: vec![],
            pulled_from: None,
        };
        let json: serde_json::Value = serde_json::from_slice(&m.to_json().unwrap()).unwrap();
        for key in [
            "serverName",
            "provider",
            "timestamp",
            "coolifyVersion",
            "files",
            "platform",
        ] {
            assert!(json.get(key).is_some(), "{key}");
        }
        assert_eq!(json["coolifyVersion"], "4.0.0");
        assert!(json.get("platformVersion").is_none(), "{json}");
        assert!(json["files"].is_array() && json["files"][0].is_string());
        assert_eq!(json["artifacts"][0]["sha256"], "ab");
        assert_eq!(stored_file(&m.artifacts[0]), "coolify-db.dump.zst");
    }
}
