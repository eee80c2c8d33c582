//! Conformance trials for [`Platform`] implementations, over a scripted
//! [`MemoryTransport`].
//!
//! A platform crate describes its platform with a [`PlatformFixture`]
//! (usually a [`ScriptedFixture`]: the platform, the replies its commands
//! get on a healthy host, the artifact formats a backup yields and the
//! commands that only read) and instantiates the trials with
//! [`platform_trials!`](crate::platform_trials) or
//! [`all_platform_trials!`](crate::all_platform_trials):
//!
//! ```ignore
//! fn fixture() -> ScriptedFixture { ... }
//! kastell_testkit::all_platform_trials!(fixture);
//! ```
//!
//! Trials of operations the platform's capability does not declare check
//! instead that the operation fails with `Unsupported` before any command.

use std::collections::BTreeMap;
use std::sync::Arc;

use kastell_core::memory::{MemoryArtifacts, MemoryTransport, Reply};
use kastell_core::types::{ArtifactFormat, ArtifactSource, PlatformRoot, Privilege, UpdateOptions};
use kastell_core::{ErrorKind, Platform, PlatformContext, PlatformTarget, Result};
use sha2::{Digest, Sha256};

mod app_health;
mod app_kinds;
mod apps;
mod bare;
mod confine;
mod paas;

pub use app_health::apps_health;
pub use app_kinds::{EVENTS_DB, WIKI_DB, apps_mariadb_mongo_round_trip};
pub use apps::{
    AppsHost, BLOG_DB, CACHE, SHOP_DB, SITE, SITE_VOLUME, apps_in_place, apps_none,
    apps_round_trip, apps_selection, tree,
};
pub use bare::BareHost;
pub use confine::{ConfinedTransport, confined_platform_touches_nothing_outside_its_root};

pub use paas::{
    PaasHost, PaasRoundTrip, health_endpoint, paas_failed_restore_changes_nothing, paas_round_trip,
    paas_update,
};

/// A backup report as JSON, as the product serialises it (MCP, `--json`).
pub fn backup_json(report: &kastell_core::types::BackupReport) -> String {
    serde_json::to_string(report).unwrap()
}

/// Restore steps as JSON, as the product serialises them.
pub fn steps_json(steps: &[kastell_core::types::StepReport]) -> String {
    serde_json::to_string(steps).unwrap()
}

/// A ustar archive of `files` (name, content; mode 0600), as `tar -cf`
/// writes one, for scripted hosts whose configuration archive must be
/// readable. Panics on a name longer than 100 bytes.
pub fn tar_archive(files: &[(&str, &[u8])]) -> Vec<u8> {
    let with_modes: Vec<(&str, u32, &[u8])> = files
        .iter()
        .map(|(name, data)| (*name, 0o600, *data))
        .collect();
    tar_archive_with_modes(&with_modes)
}

/// [`tar_archive`] with each member's mode given (name, mode, content).
pub fn tar_archive_with_modes(files: &[(&str, u32, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, mode, data) in files {
        assert!(name.len() <= 100, "tar_archive: {name} is too long");
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..108].copy_from_slice(format!("{mode:07o}\0").as_bytes());
        h[108..116].copy_from_slice(b"0000000\0");
        h[116..124].copy_from_slice(b"0000000\0");
        h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
        h[136..148].copy_from_slice(b"00000000000\0");
        h[148..156].copy_from_slice(b"        ");
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// Checks a platform crate's registration: `register` adds an entry under
/// `id` with `display_name` and every capability, and the crate's
/// link-time entry is in the global registry too. Panics otherwise.
pub fn assert_registers_under(
    register: fn(&mut kastell_core::Registry) -> Result<()>,
    id: &str,
    display_name: &str,
) {
    let mut registry = kastell_core::Registry::new();
    register(&mut registry).unwrap();
    let entry = registry.platform(id).unwrap();
    assert_eq!(entry.display_name, display_name);
    assert_eq!(entry.capability, kastell_core::PlatformCapability::all());
    assert!(kastell_core::Registry::global().has_platform(id));
}

/// What a trial needs from the platform under test.
pub trait PlatformFixture: Send + Sync {
    /// The platform, built over [`PlatformFixture::transport`].
    fn platform(&self) -> Arc<dyn Platform>;

    /// The scripted transport: it answers like a healthy host and logs
    /// every command.
    fn transport(&self) -> Arc<MemoryTransport>;

    /// The version the scripted host reports.
    fn expected_version(&self) -> String;

    /// The formats of the artifacts a backup yields, in order.
    fn expected_formats(&self) -> Vec<ArtifactFormat>;

    /// Prefixes of every command that only reads. A dry-run update may run
    /// only commands starting with one of them.
    fn read_only_prefixes(&self) -> Vec<String>;

    /// Prefixes of commands that change the server (stop, start, update,
    /// restore); a dry-run update must run none of them, whatever
    /// [`PlatformFixture::read_only_prefixes`] says.
    fn mutating_prefixes(&self) -> Vec<String> {
        Vec::new()
    }

    /// The prefix of a remote command a backup cannot do without (the
    /// dump, the archive); the failure trial makes it exit non-zero.
    fn backup_command_prefix(&self) -> String;
}

/// A [`PlatformFixture`] made of data: a platform built by its registry
/// constructor over a fresh [`MemoryTransport`], and the replies of a
/// healthy host.
pub struct ScriptedFixture {
    transport: Arc<MemoryTransport>,
    platform: Arc<dyn Platform>,
    version: String,
    formats: Vec<ArtifactFormat>,
    read_only: Vec<String>,
    mutating: Vec<String>,
    backup_prefix: String,
}

impl ScriptedFixture {
    /// Builds the platform with `build` over a fresh memory transport, for a
    /// server at 127.0.0.1 with `options`, whose login user has the rights
    /// itself ([`Privilege::LoginUser`]: no sudo in the scripted commands).
    /// Panics when `build` refuses.
    pub fn new(
        build: fn(PlatformContext) -> Result<Arc<dyn Platform>>,
        options: &[(&str, &str)],
    ) -> Self {
        let transport = Arc::new(MemoryTransport::new());
        let ctx = PlatformContext {
            transport: transport.clone(),
            target: PlatformTarget {
                name: "trial".into(),
                ip: "127.0.0.1".into(),
                domain: None,
                backup_paths: Vec::new(),
            },
            root: PlatformRoot::default(),
            privilege: Privilege::LoginUser,
            options: options
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        };
        let platform = build(ctx).unwrap_or_else(|e| panic!("the platform refused to build: {e}"));
        Self {
            transport,
            platform,
            version: String::new(),
            formats: Vec::new(),
            read_only: Vec::new(),
            mutating: Vec::new(),
            backup_prefix: String::new(),
        }
    }

    /// Answers commands starting with `prefix` with `reply`.
    pub fn reply(self, prefix: &str, reply: Reply) -> Self {
        self.transport.on(prefix, reply);
        self
    }

    /// The version the scripted host reports.
    pub fn version(mut self, version: &str) -> Self {
        self.version = version.to_owned();
        self
    }

    /// The formats a backup yields, in order.
    pub fn formats(mut self, formats: &[ArtifactFormat]) -> Self {
        self.formats = formats.to_vec();
        self
    }

    /// Prefixes of the commands that only read.
    pub fn read_only(mut self, prefixes: &[&str]) -> Self {
        self.read_only = prefixes.iter().map(|p| (*p).to_owned()).collect();
        self
    }

    /// Prefixes of the commands that change the server.
    pub fn mutating(mut self, prefixes: &[&str]) -> Self {
        self.mutating = prefixes.iter().map(|p| (*p).to_owned()).collect();
        self
    }

    /// The prefix of a command a backup cannot do without.
    pub fn backup_command(mut self, prefix: &str) -> Self {
        self.backup_prefix = prefix.to_owned();
        self
    }
}

impl PlatformFixture for ScriptedFixture {
    fn platform(&self) -> Arc<dyn Platform> {
        self.platform.clone()
    }
    fn transport(&self) -> Arc<MemoryTransport> {
        self.transport.clone()
    }
    fn expected_version(&self) -> String {
        self.version.clone()
    }
    fn expected_formats(&self) -> Vec<ArtifactFormat> {
        self.formats.clone()
    }
    fn read_only_prefixes(&self) -> Vec<String> {
        self.read_only.clone()
    }
    fn mutating_prefixes(&self) -> Vec<String> {
        self.mutating.clone()
    }
    fn backup_command_prefix(&self) -> String {
        self.backup_prefix.clone()
    }
}

/// Instantiates trials as `#[tokio::test]` functions named after them, each
/// with a fresh fixture from `$fixture()`.
#[macro_export]
macro_rules! platform_trials {
    ($fixture:path; $($trial:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $trial() {
                let fixture = $fixture();
                $crate::platform::$trial(&fixture).await;
            }
        )+
    };
}

/// Instantiates every platform trial, so a trial added here runs for every
/// platform crate.
#[macro_export]
macro_rules! all_platform_trials {
    ($fixture:path) => {
        $crate::platform_trials!($fixture;
            version_parses,
            dry_run_update_changes_nothing,
            backup_yields_sealed_checksummed_artifacts,
            remote_failure_is_command_failed,
            unsupported_operations_fail_before_any_command,
            restore_reports_successful_steps,
        );
    };
}

/// Runs `op` and checks it failed with `Unsupported` without a command.
async fn assert_unsupported<T: std::fmt::Debug>(
    f: &dyn PlatformFixture,
    what: &str,
    op: impl std::future::Future<Output = Result<T>>,
) {
    let before = f.transport().commands().len();
    let err = op.await.expect_err(what);
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{what}: {err}");
    assert_eq!(
        f.transport().commands().len(),
        before,
        "{what} ran commands before refusing"
    );
}

/// The version is read and parsed as the scripted host reports it.
pub async fn version_parses(f: &impl PlatformFixture) {
    let p = f.platform();
    if !p.capability().version {
        return assert_unsupported(f, "version", p.version()).await;
    }
    let version = p.version().await.unwrap();
    assert_eq!(version, f.expected_version());
}

/// A dry-run update runs only read-only commands and lists the plan.
pub async fn dry_run_update_changes_nothing(f: &impl PlatformFixture) {
    let p = f.platform();
    let options = UpdateOptions {
        dry_run: true,
        ..UpdateOptions::default()
    };
    if !p.capability().update_dry_run {
        return assert_unsupported(f, "update dry run", p.update(&options)).await;
    }
    let before = f.transport().commands().len();
    let report = p.update(&options).await.unwrap();
    assert!(!report.commands.is_empty(), "a dry run lists its commands");
    let read_only = f.read_only_prefixes();
    let mutating = f.mutating_prefixes();
    for command in &f.transport().commands()[before..] {
        assert!(
            read_only.iter().any(|p| command.starts_with(p.as_str())),
            "a dry run ran {command:?}, which is not read-only"
        );
        assert!(
            !mutating.iter().any(|p| command.starts_with(p.as_str())),
            "a dry run ran the mutating command {command:?}"
        );
    }
}

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A backup yields the expected artifacts, each sealed with the size and
/// SHA-256 of its bytes, and readable back through the source.
pub async fn backup_yields_sealed_checksummed_artifacts(f: &impl PlatformFixture) {
    let p = f.platform();
    let mut store = MemoryArtifacts::new();
    if !p.capability().backup {
        return assert_unsupported(f, "backup", p.backup(&mut store)).await;
    }
    let report = p.backup(&mut store).await.unwrap();
    let formats: Vec<ArtifactFormat> = report.artifacts.iter().map(|a| a.format).collect();
    assert_eq!(formats, f.expected_formats());
    assert_eq!(store.records().len(), report.artifacts.len());
    for record in &report.artifacts {
        let bytes = store.bytes(&record.name).unwrap();
        assert!(!bytes.is_empty(), "{} is empty", record.name);
        assert_eq!(record.size, bytes.len() as u64, "{}", record.name);
        assert_eq!(record.sha256, hex(&bytes), "{}", record.name);
        assert!(
            store.records().contains(record),
            "{} not sealed",
            record.name
        );
        let mut back = Vec::new();
        std::io::Read::read_to_end(
            &mut ArtifactSource::open(&store, &record.name).unwrap(),
            &mut back,
        )
        .unwrap();
        assert_eq!(back, bytes);
    }
    assert!(!report.platform_version.is_empty());
}

/// A backup command exiting non-zero fails the backup with
/// `CommandFailed` carrying its stderr, and seals nothing more.
pub async fn remote_failure_is_command_failed(f: &impl PlatformFixture) {
    let p = f.platform();
    if !p.capability().backup {
        return;
    }
    let marker = "kastell-trial: injected failure";
    f.transport()
        .on(&f.backup_command_prefix(), Reply::exit(2, marker));
    let mut store = MemoryArtifacts::new();
    let err = p.backup(&mut store).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CommandFailed, "{err}");
    assert!(err.to_string().contains(marker), "stderr lost: {err}");
    assert!(
        f.transport()
            .commands()
            .iter()
            .any(|c| c.starts_with(&f.backup_command_prefix())),
        "the failing command never ran"
    );
}

/// Operations the capability does not declare fail with `Unsupported`
/// before any command runs.
pub async fn unsupported_operations_fail_before_any_command(f: &impl PlatformFixture) {
    let p = f.platform();
    let cap = p.capability();
    let mut store = MemoryArtifacts::new();
    if !cap.version {
        assert_unsupported(f, "version", p.version()).await;
    }
    if !cap.health {
        assert_unsupported(f, "health", p.health()).await;
    }
    if !cap.update {
        assert_unsupported(f, "update", p.update(&UpdateOptions::default())).await;
    }
    if !cap.backup {
        assert_unsupported(f, "backup", p.backup(&mut store)).await;
    }
    if !cap.backup_restore {
        assert_unsupported(f, "restore", async {
            p.restore(&store).await.into_result()
        })
        .await;
    }
    if !cap.stop_start {
        assert_unsupported(f, "stop", p.stop()).await;
        assert_unsupported(f, "start", p.start()).await;
    }
}

/// On a healthy host, backup then (stop), restore, (start) all succeed and
/// the restore reports its steps, none failed.
pub async fn restore_reports_successful_steps(f: &impl PlatformFixture) {
    let p = f.platform();
    let cap = p.capability();
    if !cap.backup || !cap.backup_restore {
        return;
    }
    let mut store = MemoryArtifacts::new();
    p.backup(&mut store).await.unwrap();
    if cap.stop_start {
        p.stop().await.unwrap();
    }
    let steps = p.restore(&store).await.into_result().unwrap();
    if cap.stop_start {
        p.start().await.unwrap();
    }
    assert!(!steps.is_empty(), "a restore reports its steps");
    for step in &steps {
        assert_ne!(
            step.status,
            kastell_core::types::StepStatus::Failure,
            "{step:?}"
        );
    }
}
