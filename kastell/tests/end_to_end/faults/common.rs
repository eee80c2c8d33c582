// Shared by the fault-injection test binaries (faults_*.rs); each uses part of it.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

//! The fault-injection suite's shared checks: what the user sees after a
//! fault, and the invariants that must hold whatever failed:
//!
//! - no complete-looking partial backup ([`assert_no_partial_backup`]);
//! - no temporary file left on the server ([`RemoteTemp`],
//!   [`assert_no_remote_temp`]);
//! - the platform running ([`assert_paas_running`], [`assert_host_healthy`]);
//! - the store readable ([`assert_store_readable`]);
//! - a non-idempotent provider call sent at most once
//!   ([`assert_at_most_once`]);
//! - no secret in anything shown ([`assert_no_secret`]).
//!
//! Every check counts itself on a [`Tally`], which prints one line per
//! scenario when it passed:
//! `fault-summary: <scenario> injected=<faults> invariants=<checks>`
//! (gather them with `cargo test ... -- --nocapture | grep fault-summary`).
//! What the user saw is printed as `fault-user-sees: <scenario>: ...`,
//! after checking it holds no secret.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use kastell::engine::backup::{BackupEngine, BackupStatus, MANIFEST_FILE, STAGING_PREFIX};
use kastell::ops::{self, Context, OpError};
use kastell::state::store::FleetStore;
use kastell_sim::Recorder;

/// Faults injected and invariants checked in one scenario.
#[derive(Debug)]
pub(crate) struct Tally {
    scenario: String,
    injected: usize,
    invariants: usize,
    secrets: Vec<String>,
}

impl Tally {
    /// A scenario with nothing injected or checked yet. `secrets` (tokens)
    /// must appear in nothing the scenario prints or the user sees.
    pub(crate) fn new(scenario: impl Into<String>, secrets: &[String]) -> Self {
        Self {
            scenario: scenario.into(),
            injected: 0,
            invariants: 0,
            secrets: secrets.to_vec(),
        }
    }

    /// Counts `n` injected faults.
    pub(crate) fn injected(&mut self, n: usize) {
        self.injected += n;
    }

    /// Asserts one invariant and counts it.
    #[track_caller]
    pub(crate) fn check(&mut self, holds: bool, what: impl std::fmt::Display) {
        assert!(holds, "{}: invariant broken: {what}", self.scenario);
        self.invariants += 1;
    }

    /// The scenario's name.
    pub(crate) fn scenario(&self) -> &str {
        &self.scenario
    }

    /// How many invariants were checked so far.
    pub(crate) fn invariants(&self) -> usize {
        self.invariants
    }

    /// Prints what the user saw of a scenario that ended well (`success,
    /// <detail>`), after checking it holds no secret.
    pub(crate) fn saw(&mut self, text: &str) {
        assert_no_secret(self, text);
        println!("fault-user-sees: {}: {text}", self.scenario);
    }

    /// Prints the scenario's summary line.
    pub(crate) fn finish(self) {
        println!(
            "fault-summary: {} injected={} invariants={}",
            self.scenario, self.injected, self.invariants
        );
    }
}

/// Checks that `text` holds none of the scenario's secrets.
#[track_caller]
pub(crate) fn assert_no_secret(t: &mut Tally, text: &str) {
    let leaked = t
        .secrets
        .iter()
        .any(|s| !s.is_empty() && text.contains(s.as_str()));
    t.check(!leaked, "a secret appears in what the user sees");
}

/// What the user sees for a failed operation: a non-empty error and hint,
/// a kind among `kinds`, an error mentioning every one of `mentions`, and
/// no secret anywhere in the payload. Prints it (one line) and returns it.
#[track_caller]
pub(crate) fn assert_user_sees<'e>(
    t: &mut Tally,
    err: &'e OpError,
    kinds: &[&str],
    mentions: &[&str],
) -> &'e OpError {
    let json = serde_json::to_string(err).unwrap();
    assert_no_secret(t, &json);
    t.check(!err.error.trim().is_empty(), "an error message");
    t.check(
        err.hint.as_deref().is_some_and(|h| !h.trim().is_empty()),
        format!("a hint with the error {json}"),
    );
    t.check(
        kinds.contains(&err.kind.as_str()),
        format!("kind {} is one of {kinds:?}: {json}", err.kind),
    );
    for m in mentions {
        t.check(
            err.error.contains(m),
            format!("the error mentions {m:?}: {json}"),
        );
    }
    println!(
        "fault-user-sees: {}: kind={} error={:?} hint={:?}",
        t.scenario(),
        err.kind,
        err.error,
        err.hint.as_deref().unwrap_or("")
    );
    err
}

/// The entries of `dir` (names), empty when it does not exist.
pub(crate) fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// No complete-looking partial backup of `server` in the store at
/// `kastell_dir`: no staging directory is left, every directory there has
/// a manifest (nothing half-published), and every listed backup is
/// complete and verifies. Returns the listed ids, newest first.
#[track_caller]
pub(crate) fn assert_no_partial_backup(
    t: &mut Tally,
    kastell_dir: &Path,
    server: &str,
) -> Vec<String> {
    let server_dir = kastell_dir.join("backups").join(server);
    let names = entries(&server_dir);
    t.check(
        !names.iter().any(|n| n.starts_with(STAGING_PREFIX)),
        format!("no staging directory is left in {names:?}"),
    );
    let unpublished: Vec<&String> = names
        .iter()
        .filter(|n| !n.starts_with('.'))
        .filter(|n| !server_dir.join(n).join(MANIFEST_FILE).is_file())
        .collect();
    t.check(
        unpublished.is_empty(),
        format!("every backup directory has a manifest: {unpublished:?}"),
    );
    let engine = BackupEngine::new(kastell_dir);
    let listed = engine.list(server).unwrap();
    for b in &listed {
        t.check(
            b.status == BackupStatus::Complete,
            format!("listed backup {} is complete: {:?}", b.id, b.problem),
        );
        t.check(
            engine.verify(server, &b.id).is_ok(),
            format!("listed backup {} verifies", b.id),
        );
    }
    listed.iter().map(|b| b.id.to_string()).collect()
}

/// The store at `kastell_dir` is readable: `servers.json` parses as an
/// array, the store lists its servers, no store lock is left behind, and
/// every server's backups can be listed. Returns the server names.
#[track_caller]
pub(crate) fn assert_store_readable(t: &mut Tally, kastell_dir: &Path) -> Vec<String> {
    let bytes = std::fs::read(kastell_dir.join("servers.json")).unwrap_or_default();
    let parsed: Option<serde_json::Value> = serde_json::from_slice(&bytes).ok();
    t.check(
        parsed.as_ref().is_some_and(serde_json::Value::is_array),
        "servers.json is a JSON array",
    );
    let servers = FleetStore::open(kastell_dir).and_then(|s| s.servers());
    t.check(servers.is_ok(), format!("the store lists: {servers:?}"));
    t.check(
        !kastell_dir.join("servers.json.lock").exists(),
        "no store lock is left behind",
    );
    let names: Vec<String> = servers.unwrap().into_iter().map(|s| s.name).collect();
    let engine = BackupEngine::new(kastell_dir);
    for name in &names {
        t.check(engine.list(name).is_ok(), format!("backups of {name} list"));
    }
    names
}

/// The uid of user `name`.
fn uid_of(name: &str) -> u32 {
    let out = std::process::Command::new("id")
        .args(["-u", name])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Where remote commands of the sandbox hosts may leave temporary files.
const TEMP_DIRS: [&str; 2] = ["/tmp", "/var/tmp"];

/// The temporary directories' entries owned by the sandbox login user
/// before a fault, to tell what the fault left behind. The sandbox hosts
/// are this machine, so their `/tmp` is this machine's: entries of the
/// harness itself (`kastell-*` directories, the `tempfile` crate's
/// `.tmp*`) are not counted.
#[derive(Debug)]
pub(crate) struct RemoteTemp {
    uid: u32,
    before: BTreeSet<PathBuf>,
}

impl RemoteTemp {
    /// Notes what the login user `user` owns in the temporary directories now.
    pub(crate) fn snapshot(user: &str) -> Self {
        let uid = uid_of(user);
        Self {
            uid,
            before: owned_temp_entries(uid),
        }
    }

    /// What the user owns there now and did not before.
    pub(crate) fn new_entries(&self) -> Vec<PathBuf> {
        owned_temp_entries(self.uid)
            .difference(&self.before)
            .cloned()
            .collect()
    }
}

fn owned_temp_entries(uid: u32) -> BTreeSet<PathBuf> {
    TEMP_DIRS
        .iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            !name.starts_with("kastell-") && !name.starts_with(".tmp")
        })
        .filter(|e| e.metadata().is_ok_and(|m| m.uid() == uid))
        .map(|e| e.path())
        .collect()
}

/// No temporary file or directory was left on the server since `snapshot`.
#[track_caller]
pub(crate) fn assert_no_remote_temp(t: &mut Tally, snapshot: &RemoteTemp) {
    // A remote command whose connection died may still be finishing its
    // clean-up: give it a moment (no timing is asserted, only the end state).
    let mut left = snapshot.new_entries();
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        left = snapshot.new_entries();
    }
    t.check(
        left.is_empty(),
        format!("no temporary file left on the server: {left:?}"),
    );
}

/// The fake PaaS host's platform is running: application and database.
#[track_caller]
pub(crate) fn assert_paas_running(t: &mut Tally, host: &kastell_testkit::platform::PaasHost) {
    let state = host.shim.state();
    t.check(state.app_running, "the platform's application runs");
    t.check(state.db_running, "the platform's database runs");
}

/// `server` answers its health check through the operations layer.
pub(crate) async fn assert_host_healthy(t: &mut Tally, ctx: &Context, server: &str) {
    let health = ops::server_health(ctx, Some(server)).await;
    t.check(
        health.as_ref().is_ok_and(|h| h.healthy),
        format!("{server} is healthy: {health:?}"),
    );
}

/// `method` requests whose path contains `path` reached the simulator at
/// most once since `before` of them had. Returns how many did.
#[track_caller]
pub(crate) fn assert_at_most_once(
    t: &mut Tally,
    recorder: &Recorder,
    method: &str,
    path: &str,
    before: usize,
) -> usize {
    let sent = recorder.count(method, path) - before;
    t.check(
        sent <= 1,
        format!("{method} {path} was sent at most once (sent {sent})"),
    );
    sent
}

/// Serialises the tests of one binary that look at this machine's
/// temporary directories, so one test's remote commands are not taken for
/// another's leftovers.
pub(crate) static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Called with each command a [`Watched`] transport ran, after it ran.
pub(crate) type OnExec = Box<dyn Fn(&str) + Send + Sync>;

/// A transport that records every remote command it runs (exec and
/// streaming) and tells a hook about each once it ran, so a test can
/// assert that nothing ran on a server, or strike right after a command.
pub(crate) struct Watched {
    inner: std::sync::Arc<dyn kastell_core::Transport>,
    commands: std::sync::Mutex<Vec<String>>,
    on_exec: OnExec,
}

impl std::fmt::Debug for Watched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watched")
            .field("inner", &self.inner)
            .finish()
    }
}

impl Watched {
    /// Watches `inner`, calling `on_exec` after each command.
    pub(crate) fn new(inner: std::sync::Arc<dyn kastell_core::Transport>, on_exec: OnExec) -> Self {
        Self {
            inner,
            commands: std::sync::Mutex::new(Vec::new()),
            on_exec,
        }
    }

    /// Every command run so far.
    pub(crate) fn commands(&self) -> Vec<String> {
        self.commands.lock().unwrap().clone()
    }

    fn ran(&self, command: &kastell_core::RemoteCommand) {
        self.commands
            .lock()
            .unwrap()
            .push(command.as_str().to_owned());
        (self.on_exec)(command.as_str());
    }
}

#[async_trait::async_trait]
impl kastell_core::Transport for Watched {
    fn target(&self) -> &kastell_core::HostTarget {
        self.inner.target()
    }

    async fn exec(
        &self,
        command: &kastell_core::RemoteCommand,
        timeout: std::time::Duration,
    ) -> kastell_core::Result<kastell_core::Output> {
        let out = self.inner.exec(command, timeout).await;
        self.ran(command);
        out
    }

    async fn exec_streaming(
        &self,
        command: &kastell_core::RemoteCommand,
        stdin: Option<kastell_core::BoxRead>,
        stdout: kastell_core::BoxWrite,
        timeout: std::time::Duration,
    ) -> kastell_core::Result<kastell_core::StreamOutput> {
        let out = self
            .inner
            .exec_streaming(command, stdin, stdout, timeout)
            .await;
        self.ran(command);
        out
    }

    async fn host_key(&self) -> kastell_core::Result<kastell_core::HostKeyInfo> {
        self.inner.host_key().await
    }
}

/// The name of the server [`paas_context`] registers.
pub(crate) const PAAS_SERVER: &str = "paas-1";

/// An operations context over a fresh store at `dir` holding one server,
/// [`PAAS_SERVER`] at 127.0.0.1 running `platform_id`, reached through
/// `transport` (a fake PaaS host's sshd) and built as `platform`.
pub(crate) fn paas_context(
    dir: &Path,
    platform_id: &str,
    transport: std::sync::Arc<dyn kastell_core::Transport>,
    platform: std::sync::Arc<dyn kastell_core::Platform>,
) -> Context {
    let store = FleetStore::open(dir).unwrap();
    let mut record = kastell::ServerRecord::new("manual-1700000000001", PAAS_SERVER, "127.0.0.1");
    record.platform = Some(platform_id.to_owned());
    record.mode = platform_id.to_owned();
    store.add(record).unwrap();
    Context::new(
        kastell::Env::from_pairs([("KASTELL_ALLOW_PRIVATE_IPS", "true")]),
        store,
        kastell::Surface::Cli,
    )
    .with_timing(ops::Timing::fast())
    .with_transport_factory(std::sync::Arc::new(move |_| transport.clone()))
    .with_platform_factory(std::sync::Arc::new(move |_, _| Ok(platform.clone())))
}
