use super::*;

fn artifacts() -> Vec<CapturedArtifact> {
    vec![CapturedArtifact {
        name: "backup.tar".into(),
        command: RemoteCommand::template("tar -cf - -C {} etc", &["/srv/it's"]).unwrap(),
    }]
}

fn keys() -> S3Credentials {
    S3Credentials {
        access_key_id: "server-key".into(),
        secret_access_key: "TOPSECRET-s3".into(),
    }
}

fn render_with(starter: Starter, ping: Option<&str>) -> Result<Vec<ServerFile>> {
    let artifacts = artifacts();
    let keys = keys();
    let setup = Setup {
        server: "web-1",
        target: Target::S3 {
            repository: "s3:http://127.0.0.1:9/b/servers/web-1",
            keys: &keys,
        },
        password: "TOPSECRET-pw",
        ping_url: ping,
        calendar: "*-*-* 03:00:00",
        artifacts: &artifacts,
        starter,
    };
    render(
        &setup,
        &Layout::new(PlatformRoot::new("/srv/root").unwrap()),
    )
}

#[test]
fn secrets_are_only_in_the_two_private_files() {
    let files = render_with(Starter::Systemd, Some("https://hc.example/ping/TOKEN-uuid")).unwrap();
    let names: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        names,
        [
            "/srv/root/etc/kastell/onserver/env",
            "/srv/root/etc/kastell/onserver/password",
            "/srv/root/usr/local/lib/kastell/onserver-backup",
            "/srv/root/etc/systemd/system/kastell-onserver-backup.service",
            "/srv/root/etc/systemd/system/kastell-onserver-backup.timer",
        ]
    );
    for file in &files {
        let shown = file.shown();
        for secret in ["TOPSECRET", "TOKEN-uuid"] {
            assert!(!shown.contains(secret), "{} shows {secret}", file.path);
            if !file.secret {
                assert!(
                    !file.content.contains(secret),
                    "{} holds {secret}",
                    file.path
                );
            }
        }
        assert_eq!(
            file.mode & 0o077 == 0,
            file.secret || file.mode == 0o700,
            "{}",
            file.path
        );
    }
    let env = &files[0];
    assert!(env.content.contains("AWS_SECRET_ACCESS_KEY='TOPSECRET-s3'"));
    assert!(
        env.content
            .contains("KASTELL_PING_URL='https://hc.example/ping/TOKEN-uuid'")
    );
    assert!(
        env.shown().contains("AWS_SECRET_ACCESS_KEY"),
        "{}",
        env.shown()
    );
    let script = &files[2].content;
    assert!(script.starts_with("#!/bin/sh\n# Written by kastell schedule install --on-server"));
    assert!(
        script.contains("store 'backup.tar' ") && script.contains("--stdin-filename"),
        "{script}"
    );
    assert!(script.contains(COMPLETE_TAG), "{script}");
    assert!(script.contains("apt-get install -y restic"), "{script}");
    let timer = &files[4].content;
    assert!(timer.contains("OnCalendar=*-*-* 03:00:00"), "{timer}");
}

#[test]
fn the_script_is_valid_shell() {
    let files = render_with(Starter::Cron, None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("script");
    std::fs::write(&path, &files[2].content).unwrap();
    let status = std::process::Command::new("sh")
        .arg("-n")
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        files[3].content.lines().nth(1).unwrap(),
        "0 3 * * * root /bin/sh '/srv/root/usr/local/lib/kastell/onserver-backup'"
    );
}

#[test]
fn hostile_values_are_refused_or_quoted() {
    assert!(render_with(Starter::Cron, Some("https://x/'; rm -rf /")).is_err());
    assert!(render_with(Starter::Cron, Some("ftp://x")).is_err());
    assert!(assignments(&[("A", "x\ny")]).is_err());
    assert_eq!(
        assignments(&[("A", "it's $(x)")]).unwrap(),
        "A='it'\\''s $(x)'\n"
    );
}

#[test]
fn cron_takes_only_a_daily_time() {
    assert_eq!(cron_schedule("*-*-* 03:00:00").unwrap(), "0 3 * * *");
    assert_eq!(cron_schedule("*-*-* 23:59").unwrap(), "59 23 * * *");
    for bad in [
        "Sun *-*-* 03:00",
        "*-*-* 24:00",
        "*-*-* 03:00:30",
        "daily",
        "*-*-* 3:0x",
    ] {
        assert!(cron_schedule(bad).is_err(), "{bad}");
    }
}

#[test]
fn an_sftp_target_pins_the_storage_and_runs_restic_through_ssh() {
    let artifacts = artifacts();
    let program = "ssh -F none -i /k -p 2222 -l store 127.0.0.1";
    let known_hosts = format!("{MARKER}: pins.\n[127.0.0.1]:2222 ssh-ed25519 AAAA\n");
    let setup = Setup {
        server: "web-1",
        target: Target::Rclone {
            program,
            known_hosts: &known_hosts,
        },
        password: "TOPSECRET-pw",
        ping_url: None,
        calendar: "*-*-* 03:00:00",
        artifacts: &artifacts,
        starter: Starter::Cron,
    };
    let layout = Layout::new(PlatformRoot::new("/srv/root").unwrap());
    let files = render(&setup, &layout).unwrap();
    let names: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        names,
        [
            "/srv/root/etc/kastell/onserver/env",
            "/srv/root/etc/kastell/onserver/password",
            "/srv/root/etc/kastell/onserver/known_hosts",
            "/srv/root/usr/local/lib/kastell/onserver-backup",
            "/srv/root/etc/cron.d/kastell-onserver-backup",
        ]
    );
    assert_eq!(files[2].content, known_hosts);
    assert!(!files[2].secret && files[2].mode == 0o644);
    assert!(
        files[0]
            .content
            .contains("RESTIC_REPOSITORY='rclone:kastell:'"),
        "{}",
        files[0].content
    );
    assert!(!files[0].content.contains("AWS_"), "{}", files[0].content);
    let script = &files[3].content;
    assert_eq!(
        script
            .matches("rclone.program=ssh -F none -i /k -p 2222 -l store 127.0.0.1")
            .count(),
        2,
        "every restic call (the artifact's and the close) goes through ssh: {script}"
    );
    assert!(
        script.contains(
            "| restic -o 'rclone.program=ssh -F none -i /k -p 2222 -l store 127.0.0.1' backup"
        ),
        "{script}"
    );
    assert!(script.contains("command -v ssh "), "{script}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("script");
    std::fs::write(&path, script).unwrap();
    let status = std::process::Command::new("sh")
        .arg("-n")
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
}
