//! The transport trials against the memory reference implementation: the
//! suite's own self-test. Trials about keys, ports and host keys do not
//! apply to a transport that has none.

use kastell_testkit::memory::MemoryFixture;

kastell_testkit::transport_trials!(MemoryFixture::new;
    exit_status_and_stderr,
    stream_64mib_both_ways,
    stdin_and_stdout_flow_together,
    timeout_leaves_no_process,
    eight_concurrent_execs,
);
