//! One artifact streamed from a server command into a sink, compressed on
//! the server as the sink's plan says: all a platform needs to back
//! something up.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::shell::RemoteCommand;
use crate::transport::{BoxRead, Transport, check_status};
use crate::types::{ArtifactRecord, ArtifactSink, ArtifactSpec};

use super::plan::WirePlan;

/// Streaming on every [`ArtifactSink`]: a platform's backup calls
/// [`stream`](ArtifactSinkExt::stream) once per artifact and knows nothing
/// of compression, which the backup engine planned for this host.
#[async_trait]
pub trait ArtifactSinkExt: ArtifactSink {
    /// Runs `command` over `transport` with `stdin` (if any) and stores its
    /// stdout as the artifact `spec`, then seals it. The command runs
    /// compressed on the server when the sink's plan
    /// ([`ArtifactSink::wire`]) says so (`command | zstd -T0` at the plan's
    /// level, or `--adapt`): the
    /// compressor runs as the login user, after `command`, so a command
    /// wrapped in `sudo` keeps only what it needs.
    ///
    /// Refuses, leaving the artifact unsealed for the engine to discard: a
    /// name the sink refuses, a command that exits non-zero
    /// ([`crate::ErrorKind::CommandFailed`] with its stderr), one that
    /// exits 0 without any output, a timeout after `timeout`, and a lost
    /// connection.
    async fn stream(
        &mut self,
        transport: &dyn Transport,
        spec: &ArtifactSpec,
        command: &RemoteCommand,
        stdin: Option<BoxRead>,
        timeout: Duration,
    ) -> Result<ArtifactRecord> {
        let plan = self.wire().clone();
        self.stream_with(&plan, transport, spec, command, stdin, timeout)
            .await
    }

    /// [`stream`](ArtifactSinkExt::stream) following `plan` instead of the
    /// sink's own: for a platform that adds to the plan's reason (how it
    /// dumped a database), never to choose another codec than the sink's.
    async fn stream_with(
        &mut self,
        plan: &WirePlan,
        transport: &dyn Transport,
        spec: &ArtifactSpec,
        command: &RemoteCommand,
        stdin: Option<BoxRead>,
        timeout: Duration,
    ) -> Result<ArtifactRecord> {
        let command = plan.compressing(command);
        let writer = self.open_encoded(spec, plan.codec, &plan.reason)?;
        let out = transport
            .exec_streaming(&command, stdin, writer, timeout)
            .await?;
        check_status(&command, out.status, &out.stderr)?;
        if out.bytes_received == 0 {
            return Err(Error::unexpected(format!(
                "`{}` exited 0 but produced no output for {}",
                command.as_str(),
                spec.name
            )));
        }
        self.seal(&spec.name)
    }
}

impl<S: ArtifactSink + ?Sized> ArtifactSinkExt for S {}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::ErrorKind;
    use crate::memory::{MemoryArtifacts, MemoryTransport, Reply};
    use crate::types::ArtifactFormat;
    use crate::wire::WireCodec;

    /// A sink carrying `plan` that accepts encoded bytes and records how
    /// each artifact was opened.
    struct Planned {
        inner: MemoryArtifacts,
        plan: WirePlan,
        opened: Vec<(String, WireCodec, String)>,
    }

    impl ArtifactSink for Planned {
        fn open(&mut self, spec: &ArtifactSpec) -> Result<Box<dyn Write + Send>> {
            self.open_encoded(spec, WireCodec::Raw, "")
        }
        fn seal(&mut self, name: &str) -> Result<ArtifactRecord> {
            self.inner.seal(name)
        }
        fn wire(&self) -> &WirePlan {
            &self.plan
        }
        fn assign_app(
            &mut self,
            name: &str,
            app: &crate::types::AppData,
        ) -> Result<ArtifactRecord> {
            self.inner.assign_app(name, app)
        }
        fn open_encoded(
            &mut self,
            spec: &ArtifactSpec,
            codec: WireCodec,
            reason: &str,
        ) -> Result<Box<dyn Write + Send>> {
            self.opened
                .push((spec.name.clone(), codec, reason.to_owned()));
            self.inner.open(spec)
        }
    }

    fn spec(name: &str) -> ArtifactSpec {
        ArtifactSpec {
            name: name.to_owned(),
            format: ArtifactFormat::Tar,
        }
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[tokio::test]
    async fn the_sinks_plan_decides_what_runs_on_the_server() {
        let host = MemoryTransport::new();
        // The compressed pipeline starts with the pipe's own redirections.
        host.on("exec 4>&1", Reply::ok("zstd bytes"));
        host.on("tar -cf -", Reply::ok("raw tar"));
        let tar = RemoteCommand::fixed("tar -cf - etc");
        let mut sink = Planned {
            inner: MemoryArtifacts::new(),
            plan: WirePlan {
                codec: WireCodec::Zstd,
                reason: "a slow link".into(),
                ..WirePlan::default()
            },
            opened: Vec::new(),
        };
        let record = sink
            .stream(&host, &spec("a.tar"), &tar, None, SECOND)
            .await
            .unwrap();
        assert_eq!(record.size, 10);
        assert_eq!(sink.inner.bytes("a.tar").unwrap(), b"zstd bytes");
        assert_eq!(
            sink.opened,
            [("a.tar".into(), WireCodec::Zstd, "a slow link".into())]
        );
        let ran = host.commands();
        assert!(ran[0].contains("'tar -cf - etc'"), "{ran:?}");
        assert!(ran[0].contains("'zstd -1 -T0 -q -c'"), "{ran:?}");

        // A sink without a plan (the default) gets the command as it is.
        let mut unplanned = MemoryArtifacts::new();
        unplanned
            .stream(&host, &spec("b.tar"), &tar, None, SECOND)
            .await
            .unwrap();
        assert_eq!(unplanned.bytes("b.tar").unwrap(), b"raw tar");
        assert_eq!(host.commands()[1], "tar -cf - etc");
    }

    #[tokio::test]
    async fn a_failed_or_silent_command_is_refused_and_left_unsealed() {
        let host = MemoryTransport::new();
        host.on("tar", Reply::exit(2, "tar: etc: Permission denied"));
        let mut sink = MemoryArtifacts::new();
        let err = sink
            .stream(
                &host,
                &spec("a.tar"),
                &RemoteCommand::fixed("tar -cf - etc"),
                None,
                SECOND,
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CommandFailed);
        assert!(err.message().contains("Permission denied"), "{err}");
        // `true` prints nothing and exits 0.
        let err = sink
            .stream(
                &host,
                &spec("b.tar"),
                &RemoteCommand::fixed("true"),
                None,
                SECOND,
            )
            .await
            .unwrap_err();
        assert!(
            err.message().contains("produced no output for b.tar"),
            "{err}"
        );
        assert!(crate::types::ArtifactSource::records(&sink).is_empty());
    }
}
