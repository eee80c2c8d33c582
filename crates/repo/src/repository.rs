//! A restic repository opened with its password: creating and opening it,
//! listing, reading back, checking, forgetting and pruning. Writing a
//! snapshot is `stream`'s (and `store`'s, over it).

use std::io::Write;
use std::sync::Arc;

use kastell_core::{Error, ErrorKind, Result};
use rustic_core::repofile::{Metadata, Node, NodeType, SnapshotFile};
use rustic_core::{
    CheckOptions, ConfigOptions, Credentials, KeyOptions, OpenStatus, PruneOptions, Repository,
    RepositoryBackends, RepositoryOptions, WriteBackend,
};
use serde::Serialize;

use crate::RepoLocation;
use crate::backend::{self, BackendCredentials, S3Credentials};
use crate::error::{from_rustic, one_line};
use crate::retention::{SnapshotTime, time_of};

/// The tag every snapshot kastell writes carries.
pub const KASTELL_TAG: &str = "kastell";

/// The zstd level a new repository compresses its data with, chosen from
/// a measurement (BENCHMARKS.md §7: on application-like text, level 1
/// keeps a first push within reach of a plain `zstd -3` copy of the same
/// data, level 3 does not on two cores). restic reads every level.
pub const ZSTD_LEVEL: i32 = 1;

/// The directory all of a snapshot's files are under (restic's path).
pub(crate) const SNAPSHOT_ROOT: &str = "/";

/// A snapshot in the repository, as kastell shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RepoSnapshot {
    /// The snapshot id (64 hex digits; restic accepts its first 8).
    pub id: String,
    /// When it was taken.
    pub time: SnapshotTime,
    /// The host: the kastell server name.
    pub host: String,
    /// Its tags (`kastell`, `backup:<id>`, `platform:<id>`, …).
    pub tags: Vec<String>,
    /// Bytes of the files it holds.
    pub total_bytes: u64,
    /// Bytes this snapshot added to the repository, after dedup and
    /// compression (0 when unknown, as for snapshots restic wrote).
    pub added_bytes: u64,
    /// Files taken unread from an earlier snapshot (their content key
    /// matched), 0 when unknown.
    pub unchanged_files: u64,
}

impl RepoSnapshot {
    /// The value of the first `name:value` tag, if any.
    pub fn tag_value(&self, name: &str) -> Option<&str> {
        self.tags.iter().find_map(|tag| {
            tag.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(':'))
        })
    }

    pub(crate) fn from_file(file: &SnapshotFile) -> Self {
        let summary = file.summary.as_ref();
        Self {
            id: file.id.to_hex().to_string(),
            time: time_of(&file.time),
            host: file.hostname.clone(),
            tags: file.tags.iter().cloned().collect(),
            total_bytes: summary.map_or(0, |s| s.total_bytes_processed),
            added_bytes: summary.map_or(0, |s| s.data_added_packed),
            unchanged_files: summary.map_or(0, |s| s.files_unmodified),
        }
    }
}

/// What a check found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckReport {
    /// Whether every pack's content was read and verified too.
    pub read_data: bool,
    /// Problems that make backups unrestorable.
    pub errors: Vec<String>,
    /// Problems that do not (unused packs, for example).
    pub warnings: Vec<String>,
}

impl CheckReport {
    /// Whether nothing that matters was found.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// A repository opened with its password. Every method blocks; an S3
/// repository must be opened within a tokio runtime and used from a
/// blocking thread of it; an SFTP repository keeps one SSH session open
/// while it lives. Its `Debug` shows the location only.
pub struct BackupRepository {
    location: RepoLocation,
    pub(crate) backend: Arc<dyn WriteBackend>,
    password: String,
    pub(crate) repo: Repository<OpenStatus>,
}

impl std::fmt::Debug for BackupRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupRepository")
            .field("location", &self.location.to_string())
            .finish_non_exhaustive()
    }
}

fn unopened(backend: Arc<dyn WriteBackend>) -> Result<Repository<()>> {
    Repository::new(
        &RepositoryOptions::default(),
        &RepositoryBackends::new(backend, None),
    )
    .map_err(|e| from_rustic("opening the repository", &e))
}

/// The backend at `location`, a repository handle on it not yet opened,
/// and whether a repository is there (its config exists). Refuses an
/// empty password before touching the location.
fn locate(
    location: &RepoLocation,
    password: &str,
    credentials: &BackendCredentials,
) -> Result<(Arc<dyn WriteBackend>, Repository<()>, bool)> {
    check_password(password)?;
    let backend = backend::open(location, credentials)?;
    let repo = unopened(Arc::clone(&backend))?;
    let config = repo
        .config_id()
        .map_err(|e| from_rustic(&format!("reading the repository at {location}"), &e))?;
    Ok((backend, repo, config.is_some()))
}

impl BackupRepository {
    /// Creates a new repository at a local or S3 `location` encrypted with
    /// `password`, as [`Self::init_with`] does with only S3 credentials
    /// (an SFTP location is refused: it has no key to log in with).
    pub fn init(
        location: &RepoLocation,
        password: &str,
        credentials: Option<&S3Credentials>,
    ) -> Result<Self> {
        Self::init_with(location, password, &BackendCredentials::s3(credentials))
    }

    /// Creates a new repository at `location` encrypted with `password`,
    /// its storage logged in with `credentials`. Refuses an empty password,
    /// missing credentials for an S3 or SFTP location (and an SFTP server
    /// whose host key known_hosts does not pin), and a location that
    /// already holds a repository (`AlreadyExists`).
    pub fn init_with(
        location: &RepoLocation,
        password: &str,
        credentials: &BackendCredentials,
    ) -> Result<Self> {
        Self::init_at_level(location, password, credentials, ZSTD_LEVEL)
    }

    /// [`Self::init_with`], compressing the repository's data with zstd at
    /// `level` (1..=22, or the fast levels -7..=-1; restic's own default
    /// is 3) instead of [`ZSTD_LEVEL`]. Refuses any other level (0 would
    /// store the data uncompressed).
    pub fn init_at_level(
        location: &RepoLocation,
        password: &str,
        credentials: &BackendCredentials,
        level: i32,
    ) -> Result<Self> {
        if level == 0 || !(-7..=22).contains(&level) {
            return Err(Error::invalid_input(format!(
                "zstd level {level} is not one of 1..=22 or -7..=-1"
            )));
        }
        let (backend, repo, exists) = locate(location, password, credentials)?;
        if exists {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("{location} already holds a repository"),
            )
            .with_hint("Add it with its password instead of creating it again"));
        }
        let repo = repo
            .init(
                &Credentials::password(password),
                &KeyOptions::default(),
                &ConfigOptions::default().set_compression(level),
            )
            .map_err(|e| from_rustic(&format!("creating a repository at {location}"), &e))?;
        Ok(Self {
            location: location.clone(),
            backend,
            password: password.to_owned(),
            repo,
        })
    }

    /// Opens the repository at a local or S3 `location` with `password`,
    /// as [`Self::open_with`] does with only S3 credentials (an SFTP
    /// location is refused: it has no key to log in with).
    pub fn open(
        location: &RepoLocation,
        password: &str,
        credentials: Option<&S3Credentials>,
    ) -> Result<Self> {
        Self::open_with(location, password, &BackendCredentials::s3(credentials))
    }

    /// Opens the repository at `location` with `password`, its storage
    /// logged in with `credentials`. A location without a repository is
    /// `NotFound`; a wrong password is `Unauthenticated`, as are missing
    /// S3 or SFTP credentials and a refused SSH key; an SFTP server whose
    /// host key changed is `HostKeyMismatch`.
    pub fn open_with(
        location: &RepoLocation,
        password: &str,
        credentials: &BackendCredentials,
    ) -> Result<Self> {
        let (backend, repo, exists) = locate(location, password, credentials)?;
        if !exists {
            return Err(Error::not_found(format!("no repository at {location}"))
                .with_hint("Create it first with `kastell repo init`"));
        }
        let repo = repo
            .open(&Credentials::password(password))
            .map_err(|e| from_rustic(&format!("opening the repository at {location}"), &e))?;
        Ok(Self {
            location: location.clone(),
            backend,
            password: password.to_owned(),
            repo,
        })
    }

    /// A second handle on the same repository, for the operations that
    /// consume one (reading the index does).
    fn reopened(&self) -> Result<Repository<OpenStatus>> {
        unopened(Arc::clone(&self.backend))?
            .open(&Credentials::password(&self.password))
            .map_err(|e| from_rustic(&format!("opening the repository at {}", self.location), &e))
    }

    /// Where the repository is.
    pub fn location(&self) -> &RepoLocation {
        &self.location
    }

    /// Every snapshot in the repository, oldest first, kastell's and
    /// others'.
    pub fn snapshots(&self) -> Result<Vec<RepoSnapshot>> {
        let mut files = self
            .repo
            .get_all_snapshots()
            .map_err(|e| from_rustic("listing the repository's snapshots", &e))?;
        files.sort_by(|a, b| a.time.cmp(&b.time));
        Ok(files.iter().map(RepoSnapshot::from_file).collect())
    }

    /// Writes the file `name` of snapshot `snapshot_id` (a full id or a
    /// unique prefix) to `writer`. Refuses names that are not plain file
    /// names; an absent file or snapshot is `NotFound`.
    pub fn read(&self, snapshot_id: &str, name: &str, writer: &mut dyn Write) -> Result<()> {
        check_name(name)?;
        check_snapshot_id(snapshot_id)?;
        let indexed = self
            .reopened()?
            .to_indexed()
            .map_err(|e| from_rustic("reading the repository's index", &e))?;
        let node = indexed
            .node_from_snapshot_path(&format!("{snapshot_id}:{SNAPSHOT_ROOT}{name}"), |_| true)
            .map_err(|e| {
                not_found_or(
                    from_rustic(&format!("finding {name} in snapshot {snapshot_id}"), &e),
                    &e,
                )
            })?;
        let mut writer = WriteAdapter(writer);
        indexed
            .dump(&node, &mut writer)
            .map_err(|e| from_rustic(&format!("reading {name} from snapshot {snapshot_id}"), &e))
    }

    /// Checks the repository's structure: every snapshot's tree and every
    /// blob it names is in the index and a pack; with `read_data` every
    /// pack is also downloaded, decrypted and hashed.
    pub fn check(&self, read_data: bool) -> Result<CheckReport> {
        let results = self
            .repo
            .check(CheckOptions::default().read_data(read_data))
            .map_err(|e| from_rustic("checking the repository", &e))?;
        let mut report = CheckReport {
            read_data,
            errors: Vec::new(),
            warnings: Vec::new(),
        };
        for (level, finding) in &results.0 {
            // rustic_core does not export the level's type; its Debug
            // name is the only way to tell an error from a warning.
            // One line each: a finding's own text embeds rustic's
            // multi-line report of its cause.
            if format!("{level:?}") == "Error" {
                report.errors.push(one_line(finding));
            } else {
                report.warnings.push(one_line(finding));
            }
        }
        Ok(report)
    }

    /// Removes the snapshots `ids` (full ids). Their data stays until
    /// [`Self::prune`]. Refuses ids that are not 64 hex digits.
    pub fn forget(&self, ids: &[String]) -> Result<()> {
        let parsed = ids
            .iter()
            .map(|id| {
                if id.len() != 64 {
                    return Err(Error::invalid_input(format!(
                        "{id:?} is not a full snapshot id"
                    )));
                }
                id.parse()
                    .map_err(|_| Error::invalid_input(format!("{id:?} is not a snapshot id")))
            })
            .collect::<Result<Vec<_>>>()?;
        self.repo
            .delete_snapshots(&parsed)
            .map_err(|e| from_rustic("forgetting snapshots", &e))
    }

    /// Deletes data no snapshot refers to any more, repacking partly used
    /// packs. Returns the number of packs removed.
    pub fn prune(&self) -> Result<u64> {
        let options = PruneOptions::default();
        let plan = self
            .repo
            .prune_plan(&options)
            .map_err(|e| from_rustic("planning the prune", &e))?;
        let removed = plan.stats.packs.unused + plan.stats.packs.repack;
        self.repo
            .prune(&options, plan)
            .map_err(|e| from_rustic("pruning the repository", &e))?;
        Ok(removed)
    }
}

fn check_password(password: &str) -> Result<()> {
    if password.is_empty() {
        return Err(Error::invalid_input("the repository password is empty")
            .with_hint("Put the password in the password file, on its first line"));
    }
    Ok(())
}

/// `kastell` and `tags`, as snapshot tags. Refuses a tag restic cannot
/// hold.
pub(crate) fn snapshot_tags(tags: &[String]) -> Result<Vec<rustic_core::StringList>> {
    std::iter::once(KASTELL_TAG)
        .chain(tags.iter().map(String::as_str))
        .map(|tag| {
            tag.parse()
                .map_err(|_| Error::invalid_input(format!("{tag:?} is not a valid snapshot tag")))
        })
        .collect()
}

/// The tree node of a stored file `name` of `size` bytes modified at
/// `mtime`: owner-only, no other metadata (so an earlier snapshot's node
/// matches it exactly when name, size and time do).
pub(crate) fn file_node(name: &str, size: u64, mtime: jiff::Timestamp) -> Node {
    let metadata = Metadata {
        mode: Some(0o600),
        size,
        mtime: Some(mtime),
        ..Metadata::default()
    };
    Node::new_node(name.as_ref(), NodeType::File, metadata)
}

/// Refuses a name that is not a plain file name.
pub(crate) fn check_name(name: &str) -> Result<()> {
    let plain =
        !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0', '\n']);
    if !plain {
        return Err(Error::invalid_input(format!(
            "{name:?} is not a plain file name"
        )));
    }
    Ok(())
}

fn check_snapshot_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(
            Error::invalid_input(format!("{id:?} is not a snapshot id (hex digits)"))
                .with_hint("List them with `kastell repo snapshots`"),
        );
    }
    Ok(())
}

/// `error` as `NotFound` when rustic_core could not find what was asked.
fn not_found_or(error: Error, cause: &rustic_core::RusticError) -> Error {
    let text = cause.display_log().to_lowercase();
    if text.contains("no suitable") || text.contains("not found") || text.contains("does not exist")
    {
        return Error::new(ErrorKind::NotFound, error.message().to_owned());
    }
    error
}

/// `dump` wants a sized writer.
struct WriteAdapter<'a>(&'a mut dyn Write);

impl Write for WriteAdapter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}
