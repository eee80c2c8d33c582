//! The platform's own backup, taken as commands instead of bytes: the
//! platform runs its real `backup` against a transport that answers its
//! read-only questions from the server (`exec`: listings, probes) but
//! records each artifact's stream command instead of running it, and a
//! sink that records each artifact's name. What an on-server backup runs
//! is therefore exactly what `kastell backup create` would stream, never a
//! second copy of the platform's commands.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use kastell_core::transport::{BoxRead, BoxWrite, HostKeyInfo, HostTarget, Output, StreamOutput};
use kastell_core::types::{AppData, ArtifactRecord, ArtifactSink, ArtifactSpec, Compression};
use kastell_core::{Error, ErrorKind, Platform, RemoteCommand, Result, Transport};

/// One artifact of the platform's backup: its file name and the server
/// command whose stdout it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CapturedArtifact {
    /// The artifact's file name (`backup.tar`, `coolify-db.dump`, ...).
    pub name: String,
    /// The command the platform streams it from.
    pub command: RemoteCommand,
}

/// A transport that forwards `exec` to the real one and records each
/// stream command, answering it with one placeholder byte and status 0.
#[derive(Debug)]
struct Recording {
    inner: Arc<dyn Transport>,
    streams: Arc<Mutex<Vec<Result<RemoteCommand>>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[async_trait]
impl Transport for Recording {
    fn target(&self) -> &HostTarget {
        self.inner.target()
    }

    async fn exec(&self, command: &RemoteCommand, timeout: Duration) -> Result<Output> {
        self.inner.exec(command, timeout).await
    }

    async fn exec_streaming(
        &self,
        command: &RemoteCommand,
        stdin: Option<BoxRead>,
        mut stdout: BoxWrite,
        _timeout: Duration,
    ) -> Result<StreamOutput> {
        let recorded = if stdin.is_some() {
            Err(Error::new(
                ErrorKind::Unsupported,
                "the platform feeds this artifact's command from kastell's side, which a \
                 script on the server cannot do",
            ))
        } else {
            Ok(command.clone())
        };
        lock(&self.streams).push(recorded);
        stdout
            .write_all(b"\n")
            .map_err(|e| Error::io("recording an artifact", e))?;
        Ok(StreamOutput {
            status: 0,
            stderr: Vec::new(),
            bytes_sent: 0,
            bytes_received: 1,
        })
    }

    async fn host_key(&self) -> Result<HostKeyInfo> {
        self.inner.host_key().await
    }
}

/// A sink that keeps only the names of the artifacts opened, in order.
#[derive(Default)]
struct Names {
    opened: Vec<ArtifactSpec>,
}

impl Names {
    fn record(&self, name: &str) -> Result<ArtifactRecord> {
        let spec = self
            .opened
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| Error::unexpected(format!("artifact {name} was never opened")))?;
        Ok(ArtifactRecord {
            name: spec.name.clone(),
            format: spec.format,
            compression: Compression::None,
            size: 0,
            sha256: String::new(),
            app: None,
        })
    }
}

#[deny(clippy::missing_trait_methods)]
impl ArtifactSink for Names {
    fn open(&mut self, spec: &ArtifactSpec) -> Result<Box<dyn Write + Send>> {
        if self.opened.iter().any(|s| s.name == spec.name) {
            return Err(Error::invalid_input(format!(
                "artifact {} opened twice",
                spec.name
            )));
        }
        self.opened.push(spec.clone());
        Ok(Box::new(std::io::sink()))
    }

    fn seal(&mut self, name: &str) -> Result<ArtifactRecord> {
        self.record(name)
    }

    fn wire(&self) -> &kastell_core::wire::WirePlan {
        kastell_core::wire::WirePlan::unplanned()
    }

    fn dump_jobs(&self) -> kastell_core::wire::DumpJobs {
        kastell_core::wire::DumpJobs::ONE
    }

    fn apps(&self) -> &kastell_core::types::AppSelection {
        kastell_core::types::AppSelection::every()
    }

    fn assign_app(&mut self, name: &str, app: &AppData) -> Result<ArtifactRecord> {
        let mut record = self.record(name)?;
        record.app = Some(app.clone());
        Ok(record)
    }

    fn open_encoded(
        &mut self,
        spec: &ArtifactSpec,
        codec: kastell_core::wire::WireCodec,
        _reason: &str,
    ) -> Result<Box<dyn Write + Send>> {
        if codec != kastell_core::wire::WireCodec::Raw {
            return Err(Error::unsupported(format!(
                "an on-server backup stores {} as the command writes it",
                spec.name
            )));
        }
        self.open(spec)
    }
}

/// The artifacts `build`'s platform backs up, each with its command, found
/// by running the platform's backup over `transport` with the streams
/// recorded (see the module's doc). Refuses a platform whose backup fails
/// (its error), writes an artifact kastell produces itself (no server
/// command to run there), or feeds a command from kastell's side.
pub(crate) async fn capture(
    transport: Arc<dyn Transport>,
    build: impl FnOnce(Arc<dyn Transport>) -> Result<Arc<dyn Platform>>,
) -> Result<Vec<CapturedArtifact>> {
    let streams = Arc::new(Mutex::new(Vec::new()));
    let recording: Arc<dyn Transport> = Arc::new(Recording {
        inner: transport,
        streams: streams.clone(),
    });
    let platform = build(recording)?;
    let mut names = Names::default();
    platform.backup(&mut names).await?;
    let streams = std::mem::take(&mut *lock(&streams));
    pair(&names.opened, streams)
}

/// Pairs the artifacts opened with the commands streamed, in order (the
/// one stream helper opens an artifact right before it streams into it).
fn pair(
    opened: &[ArtifactSpec],
    streams: Vec<Result<RemoteCommand>>,
) -> Result<Vec<CapturedArtifact>> {
    if opened.len() != streams.len() {
        let names: Vec<&str> = opened.iter().map(|s| s.name.as_str()).collect();
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "this platform's backup writes {} artifact(s) ({}) from {} server command(s): \
                 an artifact kastell writes itself cannot be taken on the server",
                opened.len(),
                names.join(", "),
                streams.len()
            ),
        )
        .with_hint(
            "Back this server up from the operator's machine (`kastell schedule install`)",
        ));
    }
    if opened.is_empty() {
        return Err(Error::invalid_state(
            "the platform's backup holds no artifact on this server",
        ));
    }
    opened
        .iter()
        .zip(streams)
        .map(|(spec, command)| {
            Ok(CapturedArtifact {
                name: spec.name.clone(),
                command: command.map_err(|e| {
                    let message = format!("{}: {}", spec.name, e.message());
                    e.with_message(message)
                })?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kastell_core::types::ArtifactFormat;

    fn spec(name: &str) -> ArtifactSpec {
        ArtifactSpec {
            name: name.to_owned(),
            format: ArtifactFormat::Tar,
        }
    }

    #[test]
    fn artifacts_pair_with_their_commands_in_order() {
        let paired = pair(
            &[spec("a.tar"), spec("b.dump")],
            vec![
                Ok(RemoteCommand::fixed("tar -cf - /a")),
                Ok(RemoteCommand::fixed("pg_dump x")),
            ],
        )
        .unwrap();
        assert_eq!(paired[0].name, "a.tar");
        assert_eq!(paired[0].command.as_str(), "tar -cf - /a");
        assert_eq!(paired[1].command.as_str(), "pg_dump x");
    }

    #[test]
    fn an_artifact_without_a_server_command_is_refused() {
        let error = pair(
            &[spec("a.tar"), spec("secret.env")],
            vec![Ok(RemoteCommand::fixed("tar"))],
        )
        .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unsupported);
        assert!(error.to_string().contains("secret.env"), "{error}");
        let fed = pair(
            &[spec("a.tar")],
            vec![Err(Error::unsupported("fed from kastell"))],
        )
        .unwrap_err();
        assert!(fed.to_string().contains("a.tar"), "{fed}");
        assert!(pair(&[], vec![]).is_err());
    }
}
