//! An in-memory platform whose "database" and "config" are byte strings.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use crate::capability::PlatformCapability;
use crate::error::{Error, Result};
use crate::platform::Platform;
use crate::shell::RemoteCommand;
use crate::transport::{Transport, TransportExt};
use crate::types::{
    ArtifactFormat, ArtifactSink, ArtifactSource, ArtifactSpec, BackupReport, Health, PlatformInfo,
    RestoreReport, UpdateOptions, UpdateReport,
};

const DATA: &str = "memory-db.dump";
const CONFIG: &str = "memory-config.tar";

#[derive(Debug)]
struct State {
    version: String,
    running: bool,
    data: Vec<u8>,
    config: Vec<u8>,
    fail_restore: Option<String>,
    fail_install: Option<String>,
    events: Vec<String>,
}

/// A platform held in memory. Health also runs `true` over its transport,
/// so an unreachable transport makes it unhealthy.
#[derive(Debug)]
pub struct MemoryPlatform {
    transport: Arc<dyn Transport>,
    state: Mutex<State>,
}

impl MemoryPlatform {
    /// A running platform at version `1.0.0` with empty data.
    pub fn new(transport: Arc<dyn Transport>) -> Self {
        Self {
            transport,
            state: Mutex::new(State {
                version: "1.0.0".into(),
                running: true,
                data: Vec::new(),
                config: Vec::new(),
                fail_restore: None,
                fail_install: None,
                events: Vec::new(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the platform's data and config.
    pub fn set_data(&self, data: &[u8], config: &[u8]) {
        let mut state = self.state();
        state.data = data.to_vec();
        state.config = config.to_vec();
    }

    /// The platform's data and config.
    pub fn data(&self) -> (Vec<u8>, Vec<u8>) {
        let state = self.state();
        (state.data.clone(), state.config.clone())
    }

    /// Whether the platform's services are running.
    pub fn is_running(&self) -> bool {
        self.state().running
    }

    /// Makes the next restore fail with `message` after it has started.
    pub fn fail_next_restore(&self, message: &str) {
        self.state().fail_restore = Some(message.to_owned());
    }

    /// Makes the next install fail with `message`.
    pub fn fail_next_install(&self, message: &str) {
        self.state().fail_install = Some(message.to_owned());
    }

    /// `stop`, `start`, `restore`, `update` and `install` events, in order.
    pub fn events(&self) -> Vec<String> {
        self.state().events.clone()
    }
}

fn write_artifact(
    sink: &mut dyn ArtifactSink,
    name: &str,
    format: ArtifactFormat,
    bytes: &[u8],
) -> Result<()> {
    let mut writer = sink.open(&ArtifactSpec {
        name: name.to_owned(),
        format,
    })?;
    writer
        .write_all(bytes)
        .and_then(|()| writer.flush())
        .map_err(|e| Error::io(format!("writing artifact {name}"), e))?;
    drop(writer);
    Ok(())
}

fn read_artifact(source: &dyn ArtifactSource, name: &str) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    source
        .open(name)?
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(format!("reading artifact {name}"), e))?;
    Ok(bytes)
}

#[async_trait]
impl Platform for MemoryPlatform {
    fn info(&self) -> PlatformInfo {
        PlatformInfo::new("memory", "Memory")
    }

    fn capability(&self) -> PlatformCapability {
        PlatformCapability::all()
    }

    async fn version(&self) -> Result<String> {
        Ok(self.state().version.clone())
    }

    async fn health(&self) -> Result<Health> {
        self.transport
            .exec_checked(&RemoteCommand::fixed("true"), Duration::from_secs(5))
            .await?;
        let running = self.state().running;
        Ok(Health {
            healthy: running,
            detail: if running { "running" } else { "stopped" }.into(),
        })
    }

    async fn update(&self, options: &UpdateOptions) -> Result<UpdateReport> {
        let mut state = self.state();
        let before = state.version.clone();
        let after = if options.dry_run {
            before.clone()
        } else {
            state.events.push("update".into());
            let next = format!("{before}.1");
            state.version = next.clone();
            next
        };
        Ok(UpdateReport {
            version_before: Some(before),
            version_after: Some(after),
            commands: vec!["memory-update".into()],
            ..UpdateReport::default()
        })
    }

    /// Records `install`; fails once as [`MemoryPlatform::fail_next_install`]
    /// asked.
    async fn install(&self, _timeout: Duration) -> Result<String> {
        let mut state = self.state();
        if let Some(message) = state.fail_install.take() {
            return Err(Error::new(crate::ErrorKind::CommandFailed, message));
        }
        state.events.push("install".into());
        Ok("memory platform installed".into())
    }

    async fn backup(&self, sink: &mut dyn ArtifactSink) -> Result<BackupReport> {
        let (version, data, config) = {
            let state = self.state();
            (
                state.version.clone(),
                state.data.clone(),
                state.config.clone(),
            )
        };
        write_artifact(sink, DATA, ArtifactFormat::Raw, &data)?;
        write_artifact(sink, CONFIG, ArtifactFormat::Tar, &config)?;
        let artifacts = vec![sink.seal(DATA)?, sink.seal(CONFIG)?];
        Ok(BackupReport {
            platform_version: version,
            artifacts,
            skipped: Vec::new(),
            warnings: Vec::new(),
            apps: Vec::new(),
        })
    }

    async fn restore(&self, source: &dyn ArtifactSource) -> RestoreReport {
        if self.state().running {
            return RestoreReport::refused(Error::invalid_state(
                "the memory platform must be stopped before a restore",
            ));
        }
        let mut report = RestoreReport::default();
        let outcome = async {
            let data = report
                .step("Restore database", async {
                    let data = read_artifact(source, DATA)?;
                    if let Some(message) = self.state().fail_restore.take() {
                        return Err(Error::new(crate::ErrorKind::CommandFailed, message));
                    }
                    let detail = format!("{} bytes", data.len());
                    Ok((data, detail))
                })
                .await?;
            let config = report
                .step("Restore config", async {
                    let config = read_artifact(source, CONFIG)?;
                    let detail = format!("{} bytes", config.len());
                    Ok((config, detail))
                })
                .await?;
            let mut state = self.state();
            state.data = data;
            state.config = config;
            state.events.push("restore".into());
            Ok(())
        }
        .await;
        report.conclude(outcome)
    }

    async fn stop(&self) -> Result<()> {
        let mut state = self.state();
        state.running = false;
        state.events.push("stop".into());
        Ok(())
    }

    async fn start(&self) -> Result<()> {
        let mut state = self.state();
        state.running = true;
        state.events.push("start".into());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{MemoryArtifacts, MemoryTransport};
    use crate::platform::PlatformExt;
    use crate::poll::PollSchedule;

    #[tokio::test]
    async fn backup_restore_round_trip_needs_a_stop() {
        let transport = Arc::new(MemoryTransport::new());
        let platform = MemoryPlatform::new(transport.clone());
        platform.set_data(b"rows v1", b"env v1");
        let mut store = MemoryArtifacts::new();
        let report = platform.backup(&mut store).await.unwrap();
        assert_eq!(report.artifacts.len(), 2);
        platform.set_data(b"rows v2", b"env v2");

        assert!(
            platform.restore(&store).await.into_result().is_err(),
            "restore while running"
        );
        platform.stop().await.unwrap();
        let steps = platform.restore(&store).await.into_result().unwrap();
        assert_eq!(steps.len(), 2);
        platform.start().await.unwrap();
        assert_eq!(platform.data(), (b"rows v1".to_vec(), b"env v1".to_vec()));
        assert_eq!(platform.events(), vec!["stop", "restore", "start"]);

        let health = platform
            .wait_healthy(Duration::from_secs(1), PollSchedule::default())
            .await
            .unwrap();
        assert!(health.healthy);
        transport.set_reachable(false);
        assert!(platform.health().await.is_err());
    }

    #[tokio::test]
    async fn corrupt_artifacts_and_injected_failures_stop_the_restore() {
        let platform = MemoryPlatform::new(Arc::new(MemoryTransport::new()));
        platform.set_data(b"rows", b"env");
        let mut store = MemoryArtifacts::new();
        platform.backup(&mut store).await.unwrap();
        platform.stop().await.unwrap();
        platform.fail_next_restore("pg_restore: error");
        assert!(platform.restore(&store).await.into_result().is_err());
        store.corrupt(DATA);
        let err = platform.restore(&store).await.into_result().unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Corrupt);

        let dry = platform
            .update(&UpdateOptions {
                dry_run: true,
                ..UpdateOptions::default()
            })
            .await
            .unwrap();
        assert_eq!(dry.version_before, dry.version_after);
        assert!(!platform.events().contains(&"update".to_string()));
    }
}
