//! The health check after a restore: a port that refuses connections ends
//! the wait within its grace (proved by the step's time, with a generous
//! wall-clock bound), an unhealthy answer keeps waiting to the deadline,
//! and a server without a web UI skips the check.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use kastell_core::memory::{MemoryPlatform, MemoryTransport};
use kastell_core::types::{
    ArtifactSink, ArtifactSource, BackupId, BackupReport, Health, HealthLook, HealthWait,
    PlatformInfo, RestoreReport, StepReport, StepStatus, UpdateOptions, UpdateReport,
};
use kastell_core::{ErrorKind, Platform, PlatformCapability, Result};

use super::*;
use crate::state::store::ServerRecord;

/// The memory platform whose health check connects to `port` on
/// loopback: refused when nothing listens there, else unhealthy (an
/// answer that is not a good one, as a 5xx is).
#[derive(Debug)]
struct PortHealth {
    inner: MemoryPlatform,
    port: u16,
}

#[async_trait]
impl Platform for PortHealth {
    fn info(&self) -> PlatformInfo {
        self.inner.info()
    }
    fn capability(&self) -> PlatformCapability {
        PlatformCapability::all()
    }
    async fn version(&self) -> Result<String> {
        self.inner.version().await
    }
    async fn health(&self) -> Result<Health> {
        self.health_look().await.map(|l| l.health)
    }
    async fn health_look(&self) -> Result<HealthLook> {
        // Loopback answers at once: a refusal, or the kernel's accept.
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        let refused = match std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(_) => false,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionRefused,
        };
        Ok(HealthLook {
            health: Health {
                healthy: false,
                detail: format!("127.0.0.1:{} refused: {refused}", self.port),
            },
            refused,
        })
    }
    async fn update(&self, options: &UpdateOptions) -> Result<UpdateReport> {
        self.inner.update(options).await
    }
    async fn backup(&self, sink: &mut dyn ArtifactSink) -> Result<BackupReport> {
        self.inner.backup(sink).await
    }
    async fn restore(&self, source: &dyn ArtifactSource) -> RestoreReport {
        self.inner.restore(source).await
    }
    async fn stop(&self) -> Result<()> {
        self.inner.stop().await
    }
    async fn start(&self) -> Result<()> {
        self.inner.start().await
    }
}

/// A backup of a [`PortHealth`] platform asking `port`, and the engine.
async fn backed_up(port: u16) -> (tempfile::TempDir, BackupEngine, Arc<PortHealth>, BackupId) {
    let tmp = tempfile::tempdir().unwrap();
    let engine = BackupEngine::new(tmp.path());
    let inner = MemoryPlatform::new(Arc::new(MemoryTransport::new()));
    inner.set_data(b"rows", b"APP_KEY=base64:abc");
    let platform = Arc::new(PortHealth { inner, port });
    let created = engine
        .create(&BackupRequest {
            server: ServerRecord::new("manual-1", "web-1", "203.0.113.10"),
            platform: platform.clone(),
            transport: Arc::new(MemoryTransport::new()),
            host_key: None,
            transfer: TransferProgress::none(),
        })
        .await
        .unwrap();
    (tmp, engine, platform, created.id)
}

async fn restore(
    engine: &BackupEngine,
    platform: Arc<PortHealth>,
    id: &BackupId,
) -> RestoreOutcome {
    engine
        .restore(RestoreRequest {
            server: ServerRecord::new("manual-1", "web-1", "203.0.113.10"),
            platform,
            transport: Arc::new(MemoryTransport::new()),
            backup_id: id.clone(),
            safety_backup: false,
            host_key: None,
            health_deadline: Duration::from_secs(120),
            transfer: TransferProgress::none(),
        })
        .await
}

fn health_step(outcome: &RestoreOutcome) -> &StepReport {
    outcome
        .steps
        .iter()
        .find(|s| s.name == "Health check")
        .unwrap_or_else(|| panic!("no health check: {:?}", outcome.steps))
}

/// A loopback port nothing listens on (bound, then closed).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn a_refusing_health_port_ends_the_wait_within_the_grace() {
    let (_tmp, engine, platform, id) = backed_up(closed_port()).await;
    let engine = engine.with_restore_health(RestoreHealth::Wait(HealthWait {
        deadline: Duration::from_secs(120),
        refused_grace: Some(Duration::from_secs(1)),
    }));
    let started = Instant::now();
    let outcome = restore(&engine, platform, &id).await;
    let wall = started.elapsed();
    let err = outcome.error.as_ref().expect("the wait failed");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.message().contains("not listening"), "{err}");
    let step = health_step(&outcome);
    assert_eq!(step.status, StepStatus::Failure);
    // The grace is 1 s, the deadline 120 s: the step ends near the first.
    assert!(step.duration_ms >= 1000, "{step:?}");
    assert!(step.duration_ms < 30_000, "{step:?}");
    assert!(wall < Duration::from_secs(60), "{wall:?}");
}

#[tokio::test]
async fn an_unhealthy_answer_keeps_waiting_to_the_deadline() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (_tmp, engine, platform, id) = backed_up(port).await;
    let engine = engine.with_restore_health(RestoreHealth::Wait(HealthWait {
        deadline: Duration::from_secs(5),
        refused_grace: Some(Duration::from_millis(500)),
    }));
    let outcome = restore(&engine, platform, &id).await;
    let err = outcome.error.as_ref().expect("never healthy");
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    let step = health_step(&outcome);
    assert!(step.duration_ms >= 2000, "waited the deadline: {step:?}");
    drop(listener);
}

#[tokio::test]
async fn a_server_without_a_web_ui_skips_the_check() {
    let (_tmp, engine, platform, id) = backed_up(closed_port()).await;
    let engine = engine.with_restore_health(RestoreHealth::Skip("no web UI".into()));
    let outcome = restore(&engine, platform, &id).await;
    assert!(outcome.success(), "{:?}", outcome.error);
    let step = health_step(&outcome);
    assert_eq!(step.status, StepStatus::Skipped);
    assert_eq!(step.detail.as_deref(), Some("no web UI"));
}
