//! Conformance trials for [`Transport`] implementations.
//!
//! Each trial is an async function taking a [`TransportFixture`]. Instantiate
//! the ones that apply with [`transport_trials!`](crate::transport_trials):
//!
//! ```ignore
//! kastell_testkit::transport_trials!(SshdFixture::start;
//!     exit_status_and_stderr, stream_64mib_both_ways, wrong_key_is_unauthenticated);
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use kastell_core::{ErrorKind, Idempotency, RemoteCommand, RetryPolicy, Transport, TransportExt};

use crate::data::{HashingWriter, RandomReader, digest_hex};

/// The command of [`exit_status_and_stderr`].
pub const EXIT_AND_STDERR: &str = "printf 'out'; printf 'err' >&2; exit 3";
/// Prefix of the long command [`timeout_leaves_no_process`] starts.
pub const SLEEP_PREFIX: &str = "sleep '7";
/// Prefix of the process count [`timeout_leaves_no_process`] runs after.
pub const PROCESS_COUNT_PREFIX: &str = "for p in /proc/[0-9]*";
/// Prefix of the commands [`eight_concurrent_execs`] runs.
pub const CONCURRENT_ECHO_PREFIX: &str = "echo 'job-";

/// What a trial needs from the implementation under test.
pub trait TransportFixture: Send + Sync {
    /// A working transport.
    fn transport(&self) -> Arc<dyn Transport>;

    /// A transport that presents a key the host does not accept.
    fn with_wrong_key(&self) -> Option<Arc<dyn Transport>> {
        None
    }

    /// A transport whose pinned host key differs from what the host presents.
    fn with_changed_host_key(&self) -> Option<Arc<dyn Transport>> {
        None
    }

    /// A transport pointed at a port where nothing listens.
    fn with_closed_port(&self) -> Option<Arc<dyn Transport>> {
        None
    }
}

/// Instantiates trials as `#[tokio::test]` functions, one per listed trial,
/// each with a fresh fixture from `$fixture()`.
#[macro_export]
macro_rules! transport_trials {
    ($fixture:path; $($trial:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $trial() {
                let fixture = $fixture();
                $crate::transport::$trial(&fixture).await;
            }
        )+
    };
}

const T: Duration = Duration::from_secs(30);

/// Exit status, stdout and stderr come back as data; `exec_checked` turns
/// the failure into `CommandFailed` carrying stderr.
pub async fn exit_status_and_stderr(f: &dyn TransportFixture) {
    let t = f.transport();
    let cmd = RemoteCommand::fixed(EXIT_AND_STDERR);
    let out = t
        .exec(&cmd, T)
        .await
        .expect("a non-zero exit is data, not an error");
    assert_eq!(out.status, 3);
    assert_eq!(out.stdout, b"out");
    assert_eq!(out.stderr, b"err");
    let err = t
        .exec_checked(&cmd, T)
        .await
        .expect_err("exit 3 must fail exec_checked");
    assert_eq!(err.kind(), ErrorKind::CommandFailed);
    assert!(err.to_string().contains("status 3"), "{err}");
    assert!(err.to_string().contains("err"), "{err}");
    assert!(
        t.exec_checked(&RemoteCommand::fixed("true"), T)
            .await
            .is_ok()
    );
}

/// 64 MiB goes up and comes back byte-exact: the remote checksum of the
/// upload and the local checksum of the download match the sent data.
pub async fn stream_64mib_both_ways(f: &dyn TransportFixture) {
    const LEN: u64 = 64 * 1024 * 1024;
    let t = f.transport();
    let path = format!("/tmp/kastell-trial-{}", fastrand::u64(..));
    let (reader, sent_digest) = RandomReader::new(0x6b61_7374, LEN);
    let sent = t
        .upload(Box::new(reader), &path, Duration::from_secs(300))
        .await
        .expect("upload");
    assert_eq!(sent, LEN);
    let sent_hash = digest_hex(&sent_digest);

    let sum = t
        .exec_checked(
            &RemoteCommand::template("sha256sum {}", &[&path]).unwrap(),
            T,
        )
        .await
        .expect("remote sha256sum");
    let remote_hash = sum
        .stdout_text()
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_owned();
    assert_eq!(remote_hash, sent_hash, "upload was not byte-exact");

    let sink = HashingWriter::new();
    let received = t
        .download(&path, Box::new(sink.clone()), Duration::from_secs(300))
        .await
        .expect("download");
    assert_eq!(received, LEN);
    assert_eq!(
        sink.finish(),
        (sent_hash, LEN),
        "download was not byte-exact"
    );
    t.exec_checked(
        &RemoteCommand::template("rm -f -- {}", &[&path]).unwrap(),
        T,
    )
    .await
    .expect("cleanup");
}

/// Stdin and stdout flow at the same time: 32 MiB through `cat` does not
/// deadlock when both directions' windows fill.
pub async fn stdin_and_stdout_flow_together(f: &dyn TransportFixture) {
    const LEN: u64 = 32 * 1024 * 1024;
    let t = f.transport();
    let (reader, digest) = RandomReader::new(7, LEN);
    let sink = HashingWriter::new();
    let out = t
        .exec_streaming(
            &RemoteCommand::fixed("cat"),
            Some(Box::new(reader)),
            Box::new(sink.clone()),
            Duration::from_secs(300),
        )
        .await
        .expect("cat round trip");
    assert!(out.success(), "cat exited {}", out.status);
    assert_eq!(out.bytes_sent, LEN);
    assert_eq!(out.bytes_received, LEN);
    assert_eq!(sink.finish(), (digest_hex(&digest), LEN));
}

/// A command that outlives its timeout fails with `Timeout` (retryable) and
/// leaves no process behind on the host.
pub async fn timeout_leaves_no_process(f: &dyn TransportFixture) {
    let t = f.transport();
    let seconds = format!(
        "7{}.{:06}",
        fastrand::u8(0..10),
        fastrand::u32(0..1_000_000)
    );
    let sleep = RemoteCommand::template("sleep {}", &[&seconds]).unwrap();
    let started = Instant::now();
    let err = t
        .exec(&sleep, Duration::from_secs(1))
        .await
        .expect_err("a 70 s sleep with a 1 s timeout must fail");
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.is_retryable());
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the timeout was not enforced"
    );

    // The bracket keeps the pattern from matching the counting command itself.
    let pattern = format!("[s]leep {}", seconds.replace('.', "\\."));
    let count = RemoteCommand::template(
        "for p in /proc/[0-9]*; do tr '\\0' ' ' < \"$p/cmdline\" 2>/dev/null; echo; done | grep -c {}",
        &[&pattern],
    )
    .unwrap();
    let mut remaining = String::new();
    for _ in 0..30 {
        let out = t.exec(&count, T).await.expect("process count");
        remaining = out.stdout_text();
        if remaining == "0" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{remaining} process(es) running `sleep {seconds}` survived the timeout");
}

/// Eight commands at once on one host all succeed with their own output.
pub async fn eight_concurrent_execs(f: &dyn TransportFixture) {
    let t = f.transport();
    let jobs = (0..8).map(|i| {
        let t = t.clone();
        tokio::spawn(async move {
            let word = format!("job-{i}");
            let cmd = RemoteCommand::template("echo {}; sleep 0.2", &[&word]).unwrap();
            (i, t.exec_checked(&cmd, T).await)
        })
    });
    for job in jobs {
        let (i, result) = job.await.expect("join");
        let out = result.unwrap_or_else(|e| panic!("job {i} failed: {e}"));
        assert_eq!(out.stdout_text(), format!("job-{i}"));
    }
}

/// A key the host refuses is `Unauthenticated` and not retryable.
pub async fn wrong_key_is_unauthenticated(f: &dyn TransportFixture) {
    let t = f
        .with_wrong_key()
        .expect("fixture has no wrong-key transport");
    let err = t
        .exec(&RemoteCommand::fixed("true"), T)
        .await
        .expect_err("must be refused");
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
    assert!(!err.is_retryable());
    assert!(err.hint().is_some());
}

/// A host presenting a key other than the pinned one is `HostKeyMismatch`,
/// which the retry policy never repeats.
pub async fn changed_host_key_is_mismatch(f: &dyn TransportFixture) {
    let t = f
        .with_changed_host_key()
        .expect("fixture has no changed-host-key transport");
    let err = t
        .exec(&RemoteCommand::fixed("true"), T)
        .await
        .expect_err("must be refused");
    assert_eq!(err.kind(), ErrorKind::HostKeyMismatch, "{err}");
    assert!(!err.is_retryable());
    assert!(!RetryPolicy::default().should_retry(&err, Idempotency::Idempotent));
    let again = t.host_key().await.expect_err("the pin is never cleared");
    assert_eq!(again.kind(), ErrorKind::HostKeyMismatch);
}

/// Nothing listening is `Unavailable`, retryable, and provably not applied.
pub async fn closed_port_is_unavailable(f: &dyn TransportFixture) {
    let t = f
        .with_closed_port()
        .expect("fixture has no closed-port transport");
    let err = t
        .exec(&RemoteCommand::fixed("true"), T)
        .await
        .expect_err("nothing listens");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_retryable());
    assert!(!err.may_have_taken_effect());
}
