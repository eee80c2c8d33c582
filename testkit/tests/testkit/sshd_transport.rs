//! The transport trials against a real OpenSSH sshd on loopback, plus the
//! SSH-specific behaviour: RSA keys, trust on first use, strict mode and
//! hostile values quoted through a real remote shell.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kastell_core::{ErrorKind, HostKeyTrust, RemoteCommand, Transport, TransportExt};
use kastell_ssh::SshTransport;
use kastell_testkit::sshd::SshdFixture;

kastell_testkit::transport_trials!(SshdFixture::start;
    exit_status_and_stderr,
    stream_64mib_both_ways,
    stdin_and_stdout_flow_together,
    timeout_leaves_no_process,
    eight_concurrent_execs,
    wrong_key_is_unauthenticated,
    changed_host_key_is_mismatch,
    closed_port_is_unavailable,
);

const T: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread")]
async fn rsa_keys_authenticate() {
    let f = SshdFixture::start();
    let t = SshTransport::new(f.config().with_identity(f.sshd.rsa_key()));
    let out = t
        .exec_checked(&RemoteCommand::fixed("id -un"), T)
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), f.sshd.user());
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_host_is_trusted_on_first_use_pinned_and_warned() {
    let f = SshdFixture::start();
    let pinned: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut config = f.config();
    let sink = pinned.clone();
    config.pin_host_key = Some(Arc::new(move |info| {
        sink.lock().unwrap().push(info.fingerprint.clone());
        Ok(())
    }));
    let t = SshTransport::new(config);
    let info = t.host_key().await.unwrap();
    assert_eq!(info.trust, HostKeyTrust::TrustedOnFirstUse);
    assert_eq!(info.fingerprint, f.sshd.host_key_fingerprint());
    assert!(info.warning.as_deref().unwrap().contains(&info.fingerprint));
    assert_eq!(*pinned.lock().unwrap(), vec![info.fingerprint.clone()]);

    // Later sessions check against the learned pin; the callback runs once.
    t.disconnect();
    t.exec_checked(&RemoteCommand::fixed("true"), T)
        .await
        .unwrap();
    assert_eq!(pinned.lock().unwrap().len(), 1);

    let again = SshTransport::new(f.config().with_pinned_host_key(info.fingerprint));
    assert_eq!(again.host_key().await.unwrap().trust, HostKeyTrust::Pinned);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_pin_callback_refuses_the_host() {
    let f = SshdFixture::start();
    let mut config = f.config();
    config.pin_host_key = Some(Arc::new(|_| {
        Err(kastell_core::Error::unexpected("store is read-only"))
    }));
    let err = SshTransport::new(config).host_key().await.unwrap_err();
    assert!(err.message().contains("store is read-only"));
}

#[tokio::test(flavor = "multi_thread")]
async fn strict_mode_refuses_unknown_hosts() {
    let f = SshdFixture::start();
    let mut config = f.config();
    config.strict_host_key = true;
    let err = SshTransport::new(config)
        .exec(&RemoteCommand::fixed("true"), T)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert!(!err.is_retryable());
    assert!(err.message().contains(f.sshd.host_key_fingerprint()));
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_values_reach_the_remote_shell_as_one_literal_word() {
    let f = SshdFixture::start();
    let t = f.ssh();
    let canary = format!("/tmp/kastell-canary-{}", fastrand_suffix());
    let hostile = [
        "it's".to_owned(),
        format!("a; touch {canary}"),
        format!("$(touch {canary})"),
        format!("`touch {canary}`"),
        "line1\nline2".to_owned(),
        "${HOME} $PATH".to_owned(),
        "\"quoted\" \\back".to_owned(),
        "*".to_owned(),
        "-n".to_owned(),
    ];
    for value in &hostile {
        let cmd = RemoteCommand::template("printf '%s' {}", &[value]).unwrap();
        let out = t.exec_checked(&cmd, T).await.unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), *value);
    }
    let check =
        RemoteCommand::template("test -e {} && echo present || echo absent", &[&canary]).unwrap();
    assert_eq!(
        t.exec_checked(&check, T).await.unwrap().stdout_text(),
        "absent"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn boot_id_and_reachability_over_ssh() {
    let f = SshdFixture::start();
    let t = f.ssh();
    let boot = t.boot_id().await.unwrap();
    assert_eq!(boot.len(), 36, "{boot}");
    let took = t
        .wait_reachable(
            Duration::from_secs(5),
            kastell_core::PollSchedule::default(),
        )
        .await
        .unwrap();
    assert!(took < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread")]
async fn stopping_sshd_makes_the_host_unavailable() {
    let mut f = SshdFixture::start();
    let t = f.ssh();
    t.exec_checked(&RemoteCommand::fixed("true"), T)
        .await
        .unwrap();
    f.sshd.stop();
    t.disconnect();
    let err = t.exec(&RemoteCommand::fixed("true"), T).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
}

fn fastrand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_path_prefix_puts_shims_first() {
    let shims = std::env::temp_dir().join(format!("kastell-shims-{}", std::process::id()));
    std::fs::create_dir_all(&shims).unwrap();
    let shim = shims.join("docker");
    std::fs::write(&shim, "#!/bin/sh\necho shimmed \"$@\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&shims, std::fs::Permissions::from_mode(0o755)).unwrap();
    let f = SshdFixture::start_with(&kastell_testkit::sshd::SandboxOptions {
        path_prefix: vec![shims.clone()],
        ..Default::default()
    });
    let out = f
        .ssh()
        .exec_checked(&RemoteCommand::fixed("docker ps -q"), T)
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), "shimmed ps -q");
    std::fs::remove_dir_all(&shims).unwrap();
}
