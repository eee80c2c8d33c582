//! The trial that a platform confined to a root touches nothing outside
//! it, on a real host: every command it sends runs (over the host's real
//! SSH) inside bubblewrap, where the whole filesystem is read-only except
//! the platform's root, the shims' state and a private `/tmp` kept for
//! inspection. A write anywhere else fails the command (and so the
//! operation); a file left in `/tmp` is named afterwards.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kastell_core::memory::MemoryArtifacts;
use kastell_core::types::{Privilege, StepStatus, UpdateOptions};
use kastell_core::{
    BoxRead, BoxWrite, HostKeyInfo, HostTarget, Output, Platform, PlatformContext, RemoteCommand,
    Result, StreamOutput, Transport,
};

use super::BareHost;

/// Runs every command of `inner` in a bubblewrap namespace where only
/// the platform's root, the shims' state and a private `/tmp` (kept, to
/// be inspected) can be written, and the rest of the filesystem is
/// read-only.
#[derive(Debug)]
pub struct ConfinedTransport {
    inner: Arc<dyn Transport>,
    scratch: tempfile::TempDir,
    /// The fake hosts' directory (shims, state, roots), read-only.
    hosts: PathBuf,
    /// The platform's root, writable.
    root: PathBuf,
    /// The shims' state, writable.
    state: PathBuf,
}

/// Every command, in the namespace: the private `/tmp`, the hosts'
/// directory read-only over it, the root and the shims' state writable.
const BWRAP: &str = "exec bwrap --die-with-parent --ro-bind / / --proc /proc --dev /dev \
                     --bind {} /tmp --ro-bind {} {} --bind {} {} --bind {} {} -- sh -c {}";

impl ConfinedTransport {
    /// Confines `inner`'s commands on `host`.
    pub fn on(host: &BareHost, inner: Arc<dyn Transport>) -> Self {
        let scratch = tempfile::tempdir().unwrap();
        // The private /tmp is the login user's to write, as /tmp is.
        std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        let fake = host.fake_hosts();
        Self {
            inner,
            scratch,
            hosts: fake.bin_dir().parent().unwrap().to_owned(),
            root: host.root(),
            state: fake.state_dir(),
        }
    }

    /// `command` run inside the namespace.
    fn wrap(&self, command: &RemoteCommand) -> Result<RemoteCommand> {
        let [scratch, hosts, root, state] =
            [self.scratch.path(), &self.hosts, &self.root, &self.state]
                .map(|p| p.to_string_lossy().into_owned());
        RemoteCommand::template(
            BWRAP,
            &[
                &scratch,
                &hosts,
                &hosts,
                &root,
                &root,
                &state,
                &state,
                command.as_str(),
            ],
        )
    }

    /// The files and directories left in the private `/tmp`, other than
    /// the (empty) mount points bubblewrap made for the hosts' directory.
    pub fn leftovers(&self) -> Vec<String> {
        let mount_points: Vec<PathBuf> = self
            .hosts
            .strip_prefix("/tmp")
            .map(|relative| relative.ancestors().map(Path::to_owned).collect())
            .unwrap_or_default();
        let mut left = Vec::new();
        walk(
            self.scratch.path(),
            self.scratch.path(),
            &mut |relative, is_dir| {
                if !(is_dir && mount_points.iter().any(|m| m == relative)) {
                    left.push(format!("/tmp/{}", relative.display()));
                }
            },
        );
        left
    }
}

/// Calls `found` with every path under `dir` (relative to `base`) and
/// whether it is a directory.
fn walk(base: &Path, dir: &Path, found: &mut dyn FnMut(&Path, bool)) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let is_dir = entry.file_type().unwrap().is_dir();
        found(path.strip_prefix(base).unwrap(), is_dir);
        if is_dir {
            walk(base, &path, found);
        }
    }
}

/// A platform confined to a root touches nothing outside it. On a
/// [`BareHost`] seeded with `files` (relative to its root), whose commands
/// run where only the root, the shims' state and a private `/tmp` can be
/// written ([`ConfinedTransport`]), the platform built by `build` with
/// that root and [`Privilege::LoginUser`] backs up, restores (between stop
/// and start when it declares them) and updates, as its capability
/// declares: each succeeds (a write anywhere else fails it) and nothing is
/// left in `/tmp`. Panics otherwise.
pub async fn confined_platform_touches_nothing_outside_its_root(
    build: fn(PlatformContext) -> Result<Arc<dyn Platform>>,
    files: &[(&str, &str)],
) {
    let host = BareHost::start();
    for (path, text) in files {
        host.write(path, text);
    }
    host.hand_over();
    let confined = Arc::new(ConfinedTransport::on(&host, host.transport()));
    let ctx = PlatformContext {
        transport: confined.clone(),
        ..host.context(Privilege::LoginUser, &[])
    };
    let platform = build(ctx).unwrap();
    let cap = platform.capability();
    if cap.backup {
        let mut store = MemoryArtifacts::new();
        platform.backup(&mut store).await.unwrap();
        if cap.backup_restore {
            if cap.stop_start {
                platform.stop().await.unwrap();
            }
            let steps = platform.restore(&store).await.into_result().unwrap();
            assert!(
                steps.iter().all(|s| s.status != StepStatus::Failure),
                "{steps:?}"
            );
            if cap.stop_start {
                platform.start().await.unwrap();
            }
        }
    }
    if cap.update {
        platform.update(&UpdateOptions::default()).await.unwrap();
    }
    let left = confined.leftovers();
    assert!(left.is_empty(), "the platform left files in /tmp: {left:?}");
}

#[async_trait]
impl Transport for ConfinedTransport {
    fn target(&self) -> &HostTarget {
        self.inner.target()
    }

    async fn exec(&self, command: &RemoteCommand, timeout: Duration) -> Result<Output> {
        self.inner.exec(&self.wrap(command)?, timeout).await
    }

    async fn exec_streaming(
        &self,
        command: &RemoteCommand,
        stdin: Option<BoxRead>,
        stdout: BoxWrite,
        timeout: Duration,
    ) -> Result<StreamOutput> {
        self.inner
            .exec_streaming(&self.wrap(command)?, stdin, stdout, timeout)
            .await
    }

    async fn host_key(&self) -> Result<HostKeyInfo> {
        self.inner.host_key().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kastell_core::quote;

    /// What the trial relies on: in the namespace the root is written
    /// through to the host, a write anywhere else outside it is refused,
    /// and a file put in /tmp is named as left behind.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_the_root_the_state_and_a_private_tmp_can_be_written() {
        let host = BareHost::start();
        host.hand_over();
        let confined = ConfinedTransport::on(&host, host.transport());
        let run = |script: String| {
            let confined = &confined;
            async move {
                let command = RemoteCommand::template("sh -c {}", &[&script]).unwrap();
                confined
                    .exec(&command, Duration::from_secs(30))
                    .await
                    .unwrap()
            }
        };
        let inside = host.path("written");
        let out = run(format!("echo in > {}", quote(&inside.to_string_lossy()))).await;
        assert!(out.success(), "{}", out.stderr_text());
        assert_eq!(std::fs::read_to_string(&inside).unwrap(), "in\n");

        let beside = host
            .root()
            .parent()
            .unwrap()
            .join("kastell-beside-the-root");
        for outside in [
            "\"$HOME/kastell-confined\"".to_owned(),
            "/var/tmp/kastell-confined".to_owned(),
            quote(&beside.to_string_lossy()),
        ] {
            let out = run(format!("echo out > {outside}")).await;
            assert!(!out.success(), "wrote {outside}");
            assert!(
                out.stderr_text().contains("Read-only file system"),
                "{outside}: {}",
                out.stderr_text()
            );
        }
        assert!(!beside.exists());

        assert!(
            confined.leftovers().is_empty(),
            "{:?}",
            confined.leftovers()
        );
        let out = run("mkdir /tmp/kept && echo x > /tmp/kept/file".to_owned()).await;
        assert!(out.success(), "{}", out.stderr_text());
        assert_eq!(confined.leftovers(), ["/tmp/kept", "/tmp/kept/file"]);
        assert!(!Path::new("/tmp/kept/file").exists());
    }
}
