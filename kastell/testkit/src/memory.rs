//! The memory transport, scripted to answer the trials' commands.

use std::sync::Arc;
use std::time::Duration;

use kastell_core::Transport;
use kastell_core::memory::{MemoryTransport, Reply};

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
