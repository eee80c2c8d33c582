//! The memory transport, scripted to answer the trials' commands.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kastell_core::memory::{MemoryCloud, MemoryTransport, Reply};
use kastell_core::types::ServerId;
use kastell_core::{CloudProvider, Transport};

use crate::cloud::{Account, CloudFixture, CloudOp, Fault, TokenChoice};

use crate::transport::{
    CONCURRENT_ECHO_PREFIX, EXIT_AND_STDERR, PROCESS_COUNT_PREFIX, SLEEP_PREFIX, TransportFixture,
};

/// A [`MemoryTransport`] that answers the trial commands the way a POSIX
/// host would. It has no keys, ports or processes, so the trials about
/// those do not apply to it.
pub struct MemoryFixture {
    transport: Arc<MemoryTransport>,
}

impl Default for MemoryFixture {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryFixture {
    /// A scripted memory transport.
    pub fn new() -> Self {
        let t = MemoryTransport::new();
        t.on(
            EXIT_AND_STDERR,
            Reply {
                status: 3,
                stdout: b"out".to_vec(),
                stderr: b"err".to_vec(),
                delay: Duration::ZERO,
            },
        );
        t.on(SLEEP_PREFIX, Reply::ok("").after(Duration::from_secs(3600)));
        // No processes exist on a memory host: grep -c prints 0 and exits 1.
        t.on(
            PROCESS_COUNT_PREFIX,
            Reply {
                status: 1,
                stdout: b"0\n".to_vec(),
                ..Reply::default()
            },
        );
        t.on_fn(CONCURRENT_ECHO_PREFIX, |cmd, _| {
            // `echo 'job-N'; sleep 0.2` prints job-N.
            let word = cmd
                .trim_start_matches("echo ")
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches('\'');
            Reply::ok(format!("{word}\n")).after(Duration::from_millis(50))
        });
        Self {
            transport: Arc::new(t),
        }
    }
}

impl TransportFixture for MemoryFixture {
    fn transport(&self) -> Arc<dyn Transport> {
        self.transport.clone()
    }
}

/// A [`MemoryCloud`] with 130 servers, for the cloud trials' self-test. It
/// has no tokens and no HTTP, so only the behaviour trials apply to it.
pub struct MemoryCloudFixture {
    cloud: Arc<MemoryCloud>,
    account: Account,
}

impl MemoryCloudFixture {
    /// Seeds the account.
    pub async fn new() -> Self {
        let cloud = MemoryCloud::new();
        let ids: Vec<ServerId> = (0..130u8)
            .map(|i| cloud.add_server(&format!("web-{i}"), Ipv4Addr::new(203, 0, 113, i)))
            .collect();
        let account = Account {
            server_a: ids[0].clone(),
            server_b: ids[1].clone(),
            missing_server: ServerId::new("999999").expect("valid id"),
            public_ip_a: Ipv4Addr::new(203, 0, 113, 0),
            private_ip_a: None,
            last_ip: Ipv4Addr::new(203, 0, 113, 129),
            server_count: ids.len(),
        };
        Self {
            cloud: Arc::new(cloud),
            account,
        }
    }
}

impl CloudFixture for MemoryCloudFixture {
    fn id(&self) -> &'static str {
        "memory"
    }

    fn provider(&self, token: TokenChoice, _retries: bool) -> Arc<dyn CloudProvider> {
        assert_eq!(
            token,
            TokenChoice::ReadWrite,
            "the memory cloud has no tokens"
        );
        self.cloud.clone()
    }

    fn account(&self) -> Account {
        self.account.clone()
    }

    fn secrets(&self) -> Vec<String> {
        Vec::new()
    }

    fn boots(&self, id: &ServerId) -> u64 {
        self.cloud.boots(id)
    }

    fn inject(&self, _op: CloudOp, _fault: Fault, _times: u64, _after_effect: bool) -> bool {
        false
    }

    fn requests(&self, _op: CloudOp) -> Vec<Instant> {
        Vec::new()
    }
}
