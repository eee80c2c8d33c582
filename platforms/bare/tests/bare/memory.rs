//! The bare platform against scripted replies: the commands it issues,
//! their quoting, and how it reads the answers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use kastell_bare::BarePlatform;
use kastell_core::memory::{MemoryArtifacts, MemoryTransport, Reply};
use kastell_core::types::{
    ArtifactFormat, ArtifactSink, ArtifactSpec, PlatformRoot, Privilege, StepStatus, UpdateOptions,
};
use kastell_core::{ErrorKind, Platform, PlatformContext, PlatformTarget, Registry};

fn platform_with(
    t: &Arc<MemoryTransport>,
    privilege: Privilege,
    options: &[(&str, &str)],
    paths: &[&str],
) -> kastell_core::Result<BarePlatform> {
    BarePlatform::new(PlatformContext {
        transport: t.clone(),
        target: PlatformTarget {
            backup_paths: paths.iter().map(|p| (*p).to_owned()).collect(),
            ..PlatformTarget::default()
        },
        root: PlatformRoot::new("/srv/it's root")?,
        privilege,
        options: options
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
    })
}

fn platform(t: &Arc<MemoryTransport>, paths: &[&str]) -> BarePlatform {
    platform_with(t, Privilege::LoginUser, &[], paths).unwrap()
}

fn replies(t: &MemoryTransport, f: impl Fn(&str, &[u8]) -> Reply + Send + Sync + 'static) {
    t.on_fn("", f);
}

#[tokio::test]
async fn entry_registration_and_capability() {
    assert_eq!(kastell_bare::ENTRY.id, "bare");
    let capability = kastell_bare::ENTRY.capability;
    assert_eq!(
        capability,
        kastell_core::PlatformCapability {
            stop_start: false,
            ..kastell_core::PlatformCapability::all()
        }
    );
    let entry = Registry::global().platform("bare").unwrap();
    assert_eq!(entry.display_name, kastell_bare::DISPLAY_NAME);
    let mut registry = Registry::new();
    kastell_bare::register(&mut registry).unwrap();
    let t = Arc::new(MemoryTransport::new());
    let built = (entry.build)(PlatformContext {
        transport: t.clone(),
        target: PlatformTarget::default(),
        root: PlatformRoot::default(),
        privilege: Privilege::default(),
        options: BTreeMap::new(),
    })
    .unwrap();
    assert_eq!(built.info().id, "bare");
    assert_eq!(built.capability(), kastell_bare::CAPABILITY);
    assert!(t.commands().is_empty());
}

#[tokio::test]
async fn stop_and_start_are_unsupported_before_any_command() {
    let t = Arc::new(MemoryTransport::new());
    let p = platform(&t, &[]);
    assert_eq!(p.stop().await.unwrap_err().kind(), ErrorKind::Unsupported);
    assert_eq!(p.start().await.unwrap_err().kind(), ErrorKind::Unsupported);
    assert!(t.commands().is_empty());
}

#[tokio::test]
async fn bad_options_and_paths_are_refused_before_any_command() {
    let t = Arc::new(MemoryTransport::new());
    let err = platform_with(&t, Privilege::Auto, &[("root", "/srv")], &[]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConfigInvalid);
    let err = platform_with(&t, Privilege::Auto, &[], &["/etc/../root/.ssh"]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = platform_with(&t, Privilege::Auto, &[], &["etc/nginx"]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(t.commands().is_empty());
}

#[tokio::test]
async fn backup_lists_then_streams_tar_with_quoted_values() {
    let t = Arc::new(MemoryTransport::new());
    replies(&t, |cmd, _| {
        if cmd.starts_with("cat -- ") {
            Reply::ok("PRETTY_NAME=\"Ubuntu 24.04 LTS\"\n\nKASTELL_UNAME Linux 6.8\n")
        } else if cmd.contains("echo \"present $p\"") {
            Reply::ok("present etc/nginx\nmissing etc/ufw\npresent etc/it's\n")
        } else if cmd.contains("exec tar -C") {
            Reply::ok(b"TARBYTES".to_vec())
        } else {
            Reply::exit(127, "unexpected")
        }
    });
    let p = platform(&t, &["/etc/nginx/", "/etc/ufw", "/etc/it's"]);
    let mut store = MemoryArtifacts::new();
    let report = p.backup(&mut store).await.unwrap();
    assert_eq!(report.platform_version, "Ubuntu 24.04 LTS");
    assert_eq!(report.skipped, vec!["/etc/ufw"]);
    assert_eq!(report.artifacts[0].name, "bare-config.tar");
    assert_eq!(report.artifacts[0].format, ArtifactFormat::Tar);
    assert_eq!(store.bytes("bare-config.tar").unwrap(), b"TARBYTES");

    let commands = t.commands();
    assert_eq!(commands.len(), 3, "{commands:#?}");
    assert_eq!(
        commands[0],
        "cat -- '/srv/it'\\''s root/etc/os-release' 2>/dev/null || true; echo; printf 'KASTELL_UNAME %s\\n' \"$(uname -sr 2>/dev/null)\""
    );
    assert!(
        commands[1].contains("root='/srv/it'\\''s root'; list='etc/nginx\netc/ufw\netc/it'\\''s'")
    );
    assert!(commands[2].contains(
        "list='etc/nginx\netc/it'\\''s'; set -- $list; exec tar -C \"$root\" -cf - -- \"$@\""
    ));
    assert!(!commands.iter().any(|c| c.contains("sudo")));
}

#[tokio::test]
async fn a_failed_tar_seals_nothing_and_sudo_refusals_are_explained() {
    let t = Arc::new(MemoryTransport::new());
    replies(&t, |cmd, _| {
        if cmd.starts_with("cat -- ") {
            Reply::ok("")
        } else if cmd.contains("present") {
            Reply::ok("present etc/crontab\n")
        } else {
            Reply::exit(2, "tar: etc/crontab: Cannot open: Permission denied")
        }
    });
    let p = platform(&t, &["/etc/crontab"]);
    let mut store = MemoryArtifacts::new();
    let err = p.backup(&mut store).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CommandFailed);
    assert!(err.message().contains("Permission denied"));
    assert!(kastell_core::types::ArtifactSource::records(&store).is_empty());

    // The memory transport logs in as "memory": auto mode uses sudo -n.
    let t = Arc::new(MemoryTransport::new());
    replies(&t, |cmd, _| {
        if cmd.starts_with("sudo -n sh -c ") {
            Reply::exit(1, "sudo: a password is required\n")
        } else {
            Reply::ok("")
        }
    });
    let p = platform_with(&t, Privilege::Auto, &[], &["/etc/crontab"]).unwrap();
    let err = p.backup(&mut MemoryArtifacts::new()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert!(err.hint().unwrap().contains("\"memory\""));
}

fn store_with(name: &str, bytes: &[u8]) -> MemoryArtifacts {
    let mut store = MemoryArtifacts::new();
    let mut w = ArtifactSink::open(
        &mut store,
        &ArtifactSpec {
            name: name.into(),
            format: ArtifactFormat::Tar,
        },
    )
    .unwrap();
    w.write_all(bytes).unwrap();
    drop(w);
    store.seal(name).unwrap();
    store
}

#[tokio::test]
async fn restore_feeds_the_archive_to_one_script_and_reads_its_markers() {
    let t = Arc::new(MemoryTransport::new());
    replies(&t, |cmd, stdin| {
        assert!(
            cmd.starts_with("set -eu\nroot='/srv/it'\\''s root'\n"),
            "{cmd}"
        );
        assert_eq!(stdin, b"ARCHIVE");
        Reply::ok(
            "KASTELL_STEP unpack ok 4 files\n\
             KASTELL_STEP validate-sshd ok sshd -t accepted the restored sshd_config\n\
             KASTELL_STEP switch ok restored\n\
             KASTELL_STEP reload-ssh ok systemctl try-reload-or-restart ssh.service\n\
             KASTELL_STEP reload-ufw skipped ufw is not installed\n",
        )
    });
    let p = platform(&t, &[]);
    // The original tool's artifact name, handed out decompressed.
    let steps = p
        .restore(&store_with("bare-config.tar.gz", b"ARCHIVE"))
        .await
        .into_result()
        .unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Unpack backup",
            "Validate sshd_config",
            "Switch config",
            "Reload ssh",
            "Reload ufw"
        ]
    );
    assert_eq!(steps[4].status, StepStatus::Skipped);
    assert_eq!(t.commands().len(), 1);
}

#[tokio::test]
async fn a_refused_config_is_invalid_input_with_the_check_output() {
    let t = Arc::new(MemoryTransport::new());
    replies(&t, |_, _| {
        Reply {
        status: 10,
        stdout: b"KASTELL_STEP unpack ok 1 files\nKASTELL_STEP validate-sshd failed /tmp/x/c/etc/ssh/sshd_config: line 3: Bad configuration option: Bogus\n".to_vec(),
        ..Reply::default()
    }
    });
    let p = platform(&t, &[]);
    let err = p
        .restore(&store_with("bare-config.tar", b"ARCHIVE"))
        .await
        .into_result()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.hint()
            .unwrap()
            .contains("Bad configuration option: Bogus")
    );

    let empty = MemoryArtifacts::new();
    let err = p.restore(&empty).await.into_result().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(t.commands().len(), 1, "no command without an artifact");
}

#[tokio::test]
async fn update_dry_run_only_simulates_and_real_runs_upgrade() {
    let t = Arc::new(MemoryTransport::new());
    replies(&t, |cmd, _| {
        if cmd.starts_with("cat -- ") {
            Reply::ok("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n")
        } else if cmd.starts_with("apt-get -s") {
            Reply::ok(
                "Inst curl [7.88.1-10] (7.88.1-10+deb12u5 Debian:12/stable [amd64])\nConf curl\n",
            )
        } else if cmd.starts_with("if [ -e '/srv/it'\\''s root/var/run/reboot-required' ]") {
            Reply::ok("yes\n")
        } else if cmd.contains("apt-get") {
            Reply::ok("done\n")
        } else {
            Reply::exit(127, "unexpected")
        }
    });
    let p = platform(&t, &[]);
    let dry = p
        .update(&UpdateOptions {
            dry_run: true,
            ..UpdateOptions::default()
        })
        .await
        .unwrap();
    assert_eq!(dry.packages_upgraded, vec!["curl"]);
    assert!(dry.reboot_required);
    assert_eq!(dry.commands.len(), 3, "planned: update, simulate, upgrade");
    let ran = t.commands();
    assert!(
        !ran.iter()
            .any(|c| c.contains("apt-get update") || c.contains("-y")),
        "{ran:#?}"
    );

    let before = t.commands().len();
    let report = p.update(&UpdateOptions::default()).await.unwrap();
    assert_eq!(report.packages_upgraded, vec!["curl"]);
    let ran: Vec<String> = t.commands().split_off(before);
    let apt: Vec<&String> = ran.iter().filter(|c| c.contains("apt-get")).collect();
    assert_eq!(apt.len(), 3, "{ran:#?}");
    assert!(
        apt[0].starts_with("DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=l apt-get update -q")
    );
    assert!(
        apt[2].contains(
            "-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold upgrade"
        )
    );
}

#[tokio::test]
async fn update_without_apt_is_unsupported() {
    let t = Arc::new(MemoryTransport::new());
    replies(&t, |cmd, _| {
        if cmd.starts_with("cat -- ") {
            Reply::ok("")
        } else {
            Reply::exit(127, "sh: 1: apt-get: not found")
        }
    });
    let err = platform(&t, &[])
        .update(&UpdateOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
}

#[tokio::test]
async fn health_without_systemctl_is_healthy_and_unreachable_is_an_error() {
    let t = Arc::new(MemoryTransport::new());
    replies(&t, |_, _| Reply::ok("KASTELL_NO_SYSTEMCTL\n"));
    let p = platform(&t, &[]);
    let h = p.health().await.unwrap();
    assert!(h.healthy);
    assert!(h.detail.contains("no systemctl"));
    t.set_reachable(false);
    assert_eq!(p.health().await.unwrap_err().kind(), ErrorKind::Unavailable);
    assert_eq!(
        p.version().await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );
}
