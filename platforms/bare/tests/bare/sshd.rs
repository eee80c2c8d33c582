//! The bare platform over real SSH, against a fake root and shims.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::fs;

use common::{Host, HostPlatform, Privilege, snapshot, tar_members};
use kastell_core::memory::MemoryArtifacts;
use kastell_core::types::{StepStatus, UpdateOptions};
use kastell_core::{ErrorKind, Platform};

fn nginx_tree(host: &Host, site: &str) {
    host.write(
        "etc/nginx/nginx.conf",
        "events {}\nhttp {\n  include /etc/nginx/conf.d/*.conf;\n  include /etc/nginx/sites-enabled/*;\n}\n",
    );
    host.write("etc/nginx/conf.d/gzip.conf", "gzip on;\n");
    host.write("etc/nginx/sites-available/default", site);
    let link = host.path("etc/nginx/sites-enabled/default");
    fs::create_dir_all(link.parent().unwrap()).unwrap();
    if fs::symlink_metadata(&link).is_err() {
        std::os::unix::fs::symlink("/etc/nginx/sites-available/default", &link).unwrap();
    }
}

fn seed(host: &Host) {
    host.write_sshd_config("");
    host.write(
        "etc/crontab",
        "17 * * * * root cd / && run-parts --report /etc/cron.hourly\n",
    );
    nginx_tree(host, "server { listen 80; root /var/www/html; }\n");
    host.hand_over();
}

fn step<'a>(
    steps: &'a [kastell_core::types::StepReport],
    name: &str,
) -> &'a kastell_core::types::StepReport {
    steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no step {name} in {steps:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_then_restore_brings_every_file_back_and_reloads_what_changed() {
    let host = Host::start();
    seed(&host);
    let platform = host.platform(Privilege::LoginUser, &[]);
    let before = snapshot(&host.root());

    let mut store = MemoryArtifacts::new();
    let report = platform.backup(&mut store).await.unwrap();
    assert_eq!(report.artifacts.len(), 1);
    assert_eq!(report.artifacts[0].name, "bare-config.tar");
    assert_eq!(
        report.skipped,
        vec![
            "/etc/ufw",
            "/etc/fail2ban",
            "/etc/apt/apt.conf.d/50unattended-upgrades"
        ]
    );
    assert!(report.platform_version.starts_with("Linux"), "{report:?}");
    let members = tar_members(&store.bytes("bare-config.tar").unwrap());
    for m in [
        "etc/nginx/nginx.conf",
        "etc/nginx/sites-enabled/default",
        "etc/ssh/sshd_config",
        "etc/crontab",
    ] {
        assert!(members.contains(&m.to_owned()), "{m} not in {members:?}");
    }
    assert!(!members.iter().any(|m| m.contains("ssh_host_ed25519_key")));
    assert_eq!(snapshot(&host.root()), before, "a backup writes nothing");

    // Change what was backed up.
    host.write_sshd_config("MaxAuthTries 3\n");
    host.write("etc/crontab", "# emptied\n");
    host.write("etc/nginx/conf.d/gzip.conf", "gzip off;\n");
    host.hand_over();
    host.clear_log();

    let steps = platform.restore(&store).await.into_result().unwrap();
    assert_eq!(snapshot(&host.root()), before, "restored files differ");
    assert_eq!(step(&steps, "Unpack backup").status, StepStatus::Success);
    assert_eq!(
        step(&steps, "Validate sshd_config").status,
        StepStatus::Success
    );
    assert_eq!(step(&steps, "Validate nginx").status, StepStatus::Success);
    assert_eq!(step(&steps, "Switch config").status, StepStatus::Success);
    assert_eq!(step(&steps, "Reload ssh").status, StepStatus::Success);
    assert_eq!(step(&steps, "Reload nginx").status, StepStatus::Success);
    let log = host.log();
    assert!(
        log.iter().any(|l| l.starts_with("nginx -t -q -c /")),
        "{log:?}"
    );
    assert!(log.contains(&"systemctl try-reload-or-restart ssh.service".to_owned()));
    assert!(log.contains(&"systemctl try-reload-or-restart nginx.service".to_owned()));
    assert!(!log.iter().any(|l| l.contains("fail2ban")));

    // The same backup again: nothing changed, nothing is reloaded.
    host.clear_log();
    let steps = platform.restore(&store).await.into_result().unwrap();
    assert_eq!(step(&steps, "Reload ssh").status, StepStatus::Skipped);
    assert_eq!(step(&steps, "Reload nginx").status, StepStatus::Skipped);
    assert!(!host.log().iter().any(|l| l.contains("try-reload")));
    assert_eq!(snapshot(&host.root()), before);

    // A reload that fails after the switch is reported as such.
    host.write("etc/nginx/conf.d/gzip.conf", "gzip off;\n");
    host.hand_over();
    host.set_state("fail-nginx.service", "");
    let err = platform.restore(&store).await.into_result().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CommandFailed, "{err:?}");
    assert!(
        err.message().contains("restored, but Reload nginx failed"),
        "{err}"
    );
    assert_eq!(snapshot(&host.root()), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_sshd_config_is_refused_and_nothing_changes() {
    let host = Host::start();
    seed(&host);
    host.write_sshd_config("NoSuchOption yes\n");
    host.hand_over();
    let platform = host.platform(Privilege::LoginUser, &[]);
    let mut store = MemoryArtifacts::new();
    platform.backup(&mut store).await.unwrap();

    // The live host has moved on to a good config.
    host.write_sshd_config("MaxAuthTries 4\n");
    host.write("etc/crontab", "# newer crontab\n");
    host.hand_over();
    let before = snapshot(&host.root());
    host.clear_log();

    let report = platform.restore(&store).await;
    let ran: Vec<(&str, StepStatus)> = report
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.status))
        .collect();
    assert_eq!(
        ran,
        [
            ("Unpack backup", StepStatus::Success),
            ("Validate sshd_config", StepStatus::Failure)
        ],
        "the steps that ran come back with the error, none after the check"
    );
    let err = report.into_result().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err:?}");
    assert!(err.message().contains("sshd -t"), "{err}");
    let hint = err.hint().unwrap();
    assert!(hint.contains("NoSuchOption"), "{hint}");
    assert!(hint.contains("left exactly as it was"), "{hint}");
    assert_eq!(snapshot(&host.root()), before, "the host changed");
    assert!(!host.log().iter().any(|l| l.contains("try-reload")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_nginx_config_is_refused_and_nothing_changes() {
    let host = Host::start();
    seed(&host);
    nginx_tree(&host, "");
    host.write("etc/nginx/conf.d/gzip.conf", "BROKEN;\n");
    host.hand_over();
    let platform = host.platform(Privilege::LoginUser, &[]);
    let mut store = MemoryArtifacts::new();
    platform.backup(&mut store).await.unwrap();

    host.write("etc/nginx/conf.d/gzip.conf", "gzip on;\n");
    host.write("etc/crontab", "# newer crontab\n");
    host.hand_over();
    let before = snapshot(&host.root());
    host.clear_log();

    let err = platform.restore(&store).await.into_result().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err:?}");
    assert!(err.message().contains("nginx -t"), "{err}");
    assert!(err.hint().unwrap().contains("BROKEN"), "{err:?}");
    assert_eq!(snapshot(&host.root()), before, "the host changed");
    let log = host.log();
    assert!(log.iter().any(|l| l.starts_with("nginx -t")), "{log:?}");
    assert!(!log.iter().any(|l| l.contains("try-reload")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_paths_are_skipped_and_named() {
    let host = Host::start();
    host.write("etc/crontab", "# cron\n");
    host.write("opt/app/it's here.conf", "x = 1\n");
    host.hand_over();
    let platform = host.platform(
        Privilege::LoginUser,
        &[
            "/etc/crontab",
            "/etc/missing.conf",
            "/opt/app/it's here.conf",
            "/srv/none",
        ],
    );
    let mut store = MemoryArtifacts::new();
    let report = platform.backup(&mut store).await.unwrap();
    assert_eq!(report.skipped, vec!["/etc/missing.conf", "/srv/none"]);
    assert!(report.warnings[0].contains("/etc/missing.conf"));
    let members = tar_members(&store.bytes("bare-config.tar").unwrap());
    assert_eq!(members, vec!["etc/crontab", "opt/app/it's here.conf"]);

    // Restoring an archive without sshd or nginx configuration just
    // switches the files.
    host.write("opt/app/it's here.conf", "x = 2\n");
    host.hand_over();
    let steps = platform.restore(&store).await.into_result().unwrap();
    assert!(
        steps.iter().all(|s| !s.name.starts_with("Validate")),
        "{steps:?}"
    );
    assert_eq!(
        fs::read_to_string(host.path("opt/app/it's here.conf")).unwrap(),
        "x = 1\n"
    );

    let none = host.platform(Privilege::LoginUser, &["/nothing/here"]);
    let err = none.backup(&mut MemoryArtifacts::new()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_upgrades_and_dry_run_only_simulates() {
    let host = Host::start();
    host.write(
        "etc/os-release",
        "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
    );
    host.hand_over();
    let platform = host.platform(Privilege::LoginUser, &[]);

    let dry = platform
        .update(&UpdateOptions {
            dry_run: true,
            ..UpdateOptions::default()
        })
        .await
        .unwrap();
    assert_eq!(dry.packages_upgraded, vec!["libssl3", "openssl"]);
    assert!(!dry.reboot_required);
    assert!(dry.hint.unwrap().contains("Dry run"));
    let log = host.log();
    assert_eq!(
        log,
        vec!["apt-get DEBIAN_FRONTEND= -s -o Debug::NoLocking=1 upgrade"],
        "a dry run only simulates"
    );

    host.clear_log();
    let report = platform.update(&UpdateOptions::default()).await.unwrap();
    assert_eq!(report.packages_upgraded, vec!["libssl3", "openssl"]);
    assert!(report.reboot_required);
    assert_eq!(
        report.version_before.as_deref(),
        Some("Debian GNU/Linux 12 (bookworm)")
    );
    assert!(report.output_tail.contains("Setting up libssl3"));
    let log = host.log();
    assert_eq!(log.len(), 3, "{log:?}");
    assert!(log[0].starts_with("apt-get DEBIAN_FRONTEND=noninteractive update -q"));
    assert!(log[1].contains(" -s "));
    assert!(log[2].starts_with("apt-get DEBIAN_FRONTEND=noninteractive -y -q"));
    assert!(log[2].contains("--force-confold upgrade"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_version_read_the_system() {
    let host = Host::start();
    let platform = host.platform(Privilege::LoginUser, &[]);
    let health = platform.health().await.unwrap();
    assert!(health.healthy, "{health:?}");
    host.set_state("system-state", "degraded\n");
    host.set_state(
        "failed-units",
        "nginx.service loaded failed failed A high performance web server\n",
    );
    let health = platform.health().await.unwrap();
    assert!(!health.healthy);
    assert!(health.detail.contains("nginx.service"), "{health:?}");
    let version = platform.version().await.unwrap();
    assert!(version.starts_with("Linux "), "{version}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_root_login_goes_through_sudo_n() {
    let host = Host::start();
    seed(&host);
    let platform = host.platform(Privilege::Auto, &["/etc/crontab"]);
    let mut store = MemoryArtifacts::new();
    platform.backup(&mut store).await.unwrap();
    host.write("etc/crontab", "# changed\n");
    host.hand_over();
    platform.restore(&store).await.into_result().unwrap();
    assert!(
        fs::read_to_string(host.path("etc/crontab"))
            .unwrap()
            .contains("run-parts")
    );
    let sudo: Vec<String> = host
        .log()
        .into_iter()
        .filter(|l| l.starts_with("sudo "))
        .collect();
    assert_eq!(sudo.len(), 3, "listing, tar, restore: {sudo:?}");
    assert!(sudo.iter().all(|l| l.starts_with("sudo -n sh -c")));
}

/// Confined to its root, a backup, a restore and an update change nothing
/// outside it and leave nothing in /tmp.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confined_to_a_root_it_touches_nothing_outside() {
    kastell_testkit::platform::confined_platform_touches_nothing_outside_its_root(
        kastell_bare::build,
        &[
            ("etc/crontab", "0 3 * * * root /usr/local/bin/nightly\n"),
            ("etc/ufw/ufw.conf", "ENABLED=yes\n"),
        ],
    )
    .await;
}
