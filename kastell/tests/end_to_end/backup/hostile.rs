//! Drills of hostile backups: nothing a server sent runs on this machine.
//! A configuration archive shipping an nginx module (a real shared object
//! whose constructor would leave a marker), an sshd `Include` of a local
//! file and an escaping nginx `include` is refused before any validator
//! runs; a valid archive still passes `sshd -t` (and `nginx -t` where
//! nginx is installed) inside the confinement; a tar with an absolute
//! member, a `..` member and a file written through a symlink writes
//! nothing outside the drill's directory; a plain SQL dump carrying
//! `\! touch` or `COPY ... FROM PROGRAM` creates no marker, and the
//! drill says why its restore failed.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use kastell::engine::backup::{Manifest, Staging, StoredBackup};
use kastell::engine::drill::{CheckOutcome, DrillCheck, DrillReport};
use kastell_core::types::{ArtifactFormat, ArtifactSink, ArtifactSpec, BackupId, Compression};

/// One tar member: a directory, a file, a symlink or a FIFO.
enum Member<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8], u32),
    Link(&'a str, &'a str),
    Fifo(&'a str),
}

/// A ustar archive of `members`, written by hand so it can hold what
/// GNU tar would not write (absolute and `..` names).
fn tar(members: &[Member<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for member in members {
        let (name, data, mode, kind, link): (&str, &[u8], u32, u8, &str) = match member {
            Member::Dir(n) => (n, b"", 0o755, b'5', ""),
            Member::File(n, d, m) => (n, d, *m, b'0', ""),
            Member::Link(n, l) => (n, b"", 0o777, b'2', l),
            Member::Fifo(n) => (n, b"", 0o666, b'6', ""),
        };
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let octal = |h: &mut [u8; 512], at: usize, width: usize, value: u64| {
            let text = format!("{value:0w$o}\0", w = width - 1);
            h[at..at + width].copy_from_slice(text.as_bytes());
        };
        octal(&mut h, 100, 8, u64::from(mode));
        octal(&mut h, 108, 8, 0);
        octal(&mut h, 116, 8, 0);
        octal(&mut h, 124, 12, data.len() as u64);
        octal(&mut h, 136, 12, 1_700_000_000);
        h[156] = kind;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// A stored backup holding one artifact.
fn backup(dir: &Path, name: &str, format: ArtifactFormat, bytes: &[u8]) -> StoredBackup {
    let server_dir = dir.join("store");
    let id = BackupId::new("2026-01-01_00-00-00-000").unwrap();
    let mut staging = Staging::create(&server_dir, &id, Compression::Zstd).unwrap();
    let spec = ArtifactSpec {
        name: name.into(),
        format,
    };
    let mut writer = staging.open(&spec).unwrap();
    writer.write_all(bytes).unwrap();
    drop(writer);
    staging.seal(&spec.name).unwrap();
    let manifest: Manifest = serde_json::from_str(
        r#"{"serverName":"web-1","timestamp":"2026-01-01_00-00-00-000","formatVersion":2}"#,
    )
    .unwrap();
    StoredBackup::load(id, staging.publish(manifest).unwrap())
}

fn drill(backup: StoredBackup) -> DrillReport {
    kastell::engine::drill::drill(&backup).unwrap()
}

fn check<'a>(report: &'a DrillReport, name: &str) -> &'a DrillCheck {
    report.artifacts[0]
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} check in {report:#?}"))
}

/// A directory every user may write into (the throwaway cluster's server
/// runs as `postgres` when the tests run as root), for markers.
fn open_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

#[test]
fn a_hostile_configuration_archive_runs_no_shipped_code_and_reads_no_local_file() {
    let outside = open_dir();
    let marker = outside.path().join("module-ran");
    let source = outside.path().join("evil.c");
    std::fs::write(
        &source,
        format!(
            "#include <stdio.h>\n__attribute__((constructor)) static void ran(void) {{\n\
             FILE *f = fopen(\"{}\", \"w\"); if (f) {{ fputs(\"ran\", f); fclose(f); }} }}\n",
            marker.display()
        ),
    )
    .unwrap();
    let module = outside.path().join("evil.so");
    let built = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&module)
        .arg(&source)
        .output()
        .unwrap();
    assert!(built.status.success(), "{built:?}");
    let secret_word = format!("kastell-local-secret-{}", std::process::id());
    let local_file = outside.path().join("local-file");
    std::fs::write(&local_file, format!("{secret_word} more words\n")).unwrap();

    let nginx_conf = "load_module modules/evil.so;\nevents {}\nhttp {\n    include ../../x;\n}\n";
    let sshd_config = format!("Port 22\nInclude {}\n", local_file.display());
    let archive = tar(&[
        Member::Dir("etc/"),
        Member::Dir("etc/nginx/"),
        Member::File("etc/nginx/nginx.conf", nginx_conf.as_bytes(), 0o644),
        Member::Dir("etc/nginx/modules/"),
        Member::File(
            "etc/nginx/modules/evil.so",
            &std::fs::read(&module).unwrap(),
            0o755,
        ),
        Member::Dir("etc/ssh/"),
        Member::File("etc/ssh/sshd_config", sshd_config.as_bytes(), 0o644),
        Member::Link("etc/ssh/moduli", "/etc/shadow"),
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let report = drill(backup(
        tmp.path(),
        "bare-config.tar",
        ArtifactFormat::Tar,
        &archive,
    ));

    assert!(!report.passed(), "{report:#?}");
    assert_eq!(check(&report, "unpack").outcome, CheckOutcome::Passed);
    let nginx = check(&report, "nginx -t");
    assert_eq!(nginx.outcome, CheckOutcome::Failed, "{nginx:?}");
    assert!(
        nginx.detail.starts_with("refused before nginx -t ran: ")
            && nginx.detail.contains(
                "/etc/nginx/nginx.conf:1: load_module modules/evil.so: a server-supplied \
                 module would run on this machine"
            )
            && nginx
                .detail
                .contains("/etc/nginx/nginx.conf:4: include ../../x: ")
            && nginx.detail.contains("outside the archive"),
        "{nginx:?}"
    );
    let sshd = check(&report, "sshd -t");
    // Files outside the archive are the server's own: not read here, and
    // not validated either (skipped, not failed).
    assert_eq!(sshd.outcome, CheckOutcome::Skipped, "{sshd:?}");
    assert!(
        sshd.detail.starts_with(
            "not run: the configuration names files outside the archive, which only the \
             server has and this machine must not read: /etc/ssh/sshd_config:2: Include "
        ) && sshd.detail.contains("outside the archive's /etc/ssh")
            && sshd.detail.contains(
                "/etc/ssh/moduli: the symlink /etc/ssh/moduli points outside the archive \
                 (/etc/shadow), which is not followed"
            ),
        "{sshd:?}"
    );
    assert!(!marker.exists(), "the shipped module ran");
    let shown = serde_json::to_string(&report).unwrap();
    assert!(!shown.contains(&secret_word), "{shown}");
    assert!(!report.failures().join("\n").contains(&secret_word));
}

#[test]
fn a_stock_debian_nginx_with_module_symlinks_is_skipped_not_failed() {
    // Debian's modules-enabled/*.conf link into /usr/share/nginx, which
    // only the server has: nginx -t cannot run here, and that neither
    // proves nor fails the backup.
    let nginx_conf = "include /etc/nginx/modules-enabled/*.conf;\nevents {}\nhttp {}\n";
    let archive = tar(&[
        Member::Dir("etc/"),
        Member::Dir("etc/nginx/"),
        Member::File("etc/nginx/nginx.conf", nginx_conf.as_bytes(), 0o644),
        Member::Dir("etc/nginx/modules-enabled/"),
        Member::Link(
            "etc/nginx/modules-enabled/50-mod-http-geoip.conf",
            "/usr/share/nginx/modules-available/mod-http-geoip.conf",
        ),
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let report = drill(backup(
        tmp.path(),
        "bare-config.tar",
        ArtifactFormat::Tar,
        &archive,
    ));
    let nginx = check(&report, "nginx -t");
    assert_eq!(nginx.outcome, CheckOutcome::Skipped, "{nginx:?}");
    assert!(
        nginx.detail.contains("50-mod-http-geoip.conf")
            && nginx.detail.contains("outside the archive"),
        "{nginx:?}"
    );
    assert!(report.passed(), "{report:#?}");
}

#[test]
fn a_valid_configuration_archive_passes_its_validators_inside_the_confinement() {
    let sshd_config =
        "Include /etc/ssh/sshd_config.d/*.conf\nPort 22\nPermitRootLogin prohibit-password\n";
    let nginx_conf = "user www-data;\nworker_processes auto;\npid /run/nginx.pid;\n\
        error_log /var/log/nginx/error.log;\nevents { worker_connections 64; }\n\
        http {\n    access_log /var/log/nginx/access.log;\n    include /etc/nginx/conf.d/*.conf;\n\
        include /etc/nginx/sites-enabled/*;\n}\n";
    let site = "server {\n    listen 80 default_server;\n    root /var/www/html;\n    \
        include snippets/headers.conf;\n}\n";
    let members = |extra: &'static str| {
        tar(&[
            Member::Dir("etc/"),
            Member::Dir("etc/ssh/"),
            Member::File("etc/ssh/sshd_config", sshd_config.as_bytes(), 0o600),
            Member::Dir("etc/ssh/sshd_config.d/"),
            Member::File("etc/ssh/sshd_config.d/local.conf", extra.as_bytes(), 0o600),
            Member::Dir("etc/nginx/"),
            Member::File("etc/nginx/nginx.conf", nginx_conf.as_bytes(), 0o640),
            Member::Dir("etc/nginx/conf.d/"),
            Member::Dir("etc/nginx/snippets/"),
            Member::File(
                "etc/nginx/snippets/headers.conf",
                b"add_header X-Drill yes;\n",
                0o644,
            ),
            Member::Dir("etc/nginx/sites-available/"),
            Member::File("etc/nginx/sites-available/default", site.as_bytes(), 0o644),
            Member::Dir("etc/nginx/sites-enabled/"),
            Member::Link(
                "etc/nginx/sites-enabled/default",
                "/etc/nginx/sites-available/default",
            ),
        ])
    };
    let tmp = tempfile::tempdir().unwrap();
    let report = drill(backup(
        tmp.path(),
        "bare-config.tar",
        ArtifactFormat::Tar,
        &members("PasswordAuthentication no\n"),
    ));
    let sshd = check(&report, "sshd -t");
    assert_eq!(sshd.outcome, CheckOutcome::Passed, "{report:#?}");
    let nginx = check(&report, "nginx -t");
    if Path::new("/usr/sbin/nginx").exists() {
        assert_eq!(nginx.outcome, CheckOutcome::Passed, "{report:#?}");
    } else {
        assert_eq!(nginx.outcome, CheckOutcome::Skipped, "{report:#?}");
        assert_eq!(nginx.detail, "nginx is not installed here");
    }

    // The include is read from the archive, inside the sandbox: a bad
    // option there fails sshd -t, naming it.
    let tmp = tempfile::tempdir().unwrap();
    let report = drill(backup(
        tmp.path(),
        "bare-config.tar",
        ArtifactFormat::Tar,
        &members("NoSuchDrillOption yes\n"),
    ));
    let sshd = check(&report, "sshd -t");
    assert_eq!(sshd.outcome, CheckOutcome::Failed, "{report:#?}");
    assert!(
        sshd.detail.contains("NoSuchDrillOption")
            && sshd.detail.contains("/etc/ssh/sshd_config.d/local.conf"),
        "{sshd:?}"
    );
}

#[test]
fn a_hostile_tar_writes_nothing_outside_the_drill_directory() {
    let outside = open_dir();
    let absolute = format!("{}/absolute-member", outside.path().display());
    let climbing = format!(
        "{}{}/climbing-member",
        "../".repeat(12),
        outside.path().display().to_string().trim_start_matches('/')
    );
    let archive = tar(&[
        Member::Dir("etc/"),
        Member::File(&absolute, b"absolute\n", 0o644),
        Member::File(&climbing, b"climbing\n", 0o644),
        Member::Link("etc/out", &outside.path().display().to_string()),
        Member::File("etc/out/through-symlink", b"through\n", 0o644),
        Member::File("etc/setuid", b"#!/bin/sh\n", 0o4755),
        Member::Fifo("etc/fifo"),
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let report = drill(backup(
        tmp.path(),
        "bare-config.tar",
        ArtifactFormat::Tar,
        &archive,
    ));
    let written: Vec<_> = std::fs::read_dir(outside.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(written.is_empty(), "{written:?} in {report:#?}");
    let unpack = check(&report, "unpack");
    // GNU tar refuses the `..` member and says so: the unpack fails.
    assert_eq!(unpack.outcome, CheckOutcome::Failed, "{report:#?}");
    assert!(unpack.detail.contains(".."), "{unpack:?}");

    // Without the `..` member and the write through the symlink it
    // unpacks, and the FIFO is removed unread.
    let archive = tar(&[
        Member::Dir("etc/"),
        Member::File(&absolute, b"absolute\n", 0o644),
        Member::Link("etc/out", &outside.path().display().to_string()),
        Member::File("etc/setuid", b"#!/bin/sh\n", 0o4755),
        Member::Fifo("etc/fifo"),
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let report = drill(backup(
        tmp.path(),
        "bare-config.tar",
        ArtifactFormat::Tar,
        &archive,
    ));
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        0,
        "{report:#?}"
    );
    let unpack = check(&report, "unpack");
    assert!(
        unpack
            .detail
            .ends_with("1 device files, FIFOs or sockets removed unread (etc/fifo)"),
        "{report:#?}"
    );
}

/// A plain dump as pg_dump writes it, with `tail` after its data.
fn plain_dump(tail: &str) -> String {
    format!(
        "--\n-- PostgreSQL database dump\n--\n\n-- Dumped from database version 15.8\n\
         SET standard_conforming_strings = on;\n\
         CREATE TABLE public.items (id integer, note text);\n\
         COPY public.items (id, note) FROM stdin;\n1\tone\\twith tab\n2\t\\N\n\\.\n\n{tail}\n"
    )
}

#[test]
fn a_plain_dump_with_psql_meta_commands_or_server_programs_runs_nothing_here() {
    let outside = open_dir();
    let shell_marker = outside.path().join("shell-ran");
    let program_marker = outside.path().join("program-ran");
    let tmp = tempfile::tempdir().unwrap();

    let dump = plain_dump(&format!("\\! touch {}", shell_marker.display()));
    let report = drill(backup(
        tmp.path(),
        "db.sql",
        ArtifactFormat::PgPlain,
        dump.as_bytes(),
    ));
    assert!(!shell_marker.exists(), "the dump's \\! ran: {report:#?}");
    let restore = check(&report, "restore");
    assert_eq!(restore.outcome, CheckOutcome::Failed, "{report:#?}");
    assert!(
        restore
            .detail
            .contains("line 13 carries the psql meta-command")
            && restore.detail.contains("\\! touch"),
        "{restore:?}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let dump = plain_dump(&format!(
        "COPY public.items (note) FROM PROGRAM 'touch {}';",
        program_marker.display()
    ));
    let report = drill(backup(
        tmp.path(),
        "db.sql",
        ArtifactFormat::PgPlain,
        dump.as_bytes(),
    ));
    assert!(
        !program_marker.exists(),
        "COPY FROM PROGRAM ran: {report:#?}"
    );
    let restore = check(&report, "restore");
    assert_eq!(restore.outcome, CheckOutcome::Failed, "{report:#?}");
    assert!(
        restore.detail.contains("pg_execute_server_program")
            || restore.detail.contains("superuser"),
        "{restore:?}"
    );
    // The rows before it were restored and counted.
    assert_eq!(
        check(&report, "rows").detail,
        "2 rows restored, table by table as many as the dump holds"
    );

    // The same dump without either restores and passes.
    let tmp = tempfile::tempdir().unwrap();
    let dump = plain_dump("\\connect kastell_drill\nSELECT 1;");
    let report = drill(backup(
        tmp.path(),
        "db.sql",
        ArtifactFormat::PgPlain,
        dump.as_bytes(),
    ));
    assert!(report.passed(), "{report:#?}");
}

#[test]
fn a_parallel_dump_with_a_symlinked_data_file_reads_nothing_here() {
    let outside = open_dir();
    let local = outside.path().join("local-data");
    std::fs::write(&local, "7\tkastell-local-secret-data\n").unwrap();
    let cluster = kastell_pg::Cluster::start().unwrap();
    cluster
        .execute(
            "postgres",
            "CREATE TABLE items (id int, note text); INSERT INTO items VALUES (1, 'one');",
        )
        .unwrap();
    let dump = tempfile::tempdir().unwrap();
    let dir = dump.path().join("dump");
    let out = cluster
        .client("pg_dump")
        .args(["-Fd", "-Z", "0", "-d", "postgres", "-f"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let data = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.extension().is_some_and(|e| e == "dat")
                && p.file_stem()
                    .is_some_and(|s| s.to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        })
        .unwrap();
    std::fs::remove_file(&data).unwrap();
    std::os::unix::fs::symlink(&local, &data).unwrap();
    let tarred = std::process::Command::new("tar")
        .arg("-C")
        .arg(&dir)
        .args(["-cf", "-", "."])
        .output()
        .unwrap();
    assert!(tarred.status.success(), "{tarred:?}");

    let tmp = tempfile::tempdir().unwrap();
    let stored = backup(
        tmp.path(),
        "db.dir.tar",
        ArtifactFormat::PgDirectoryTar,
        &tarred.stdout,
    );
    let refused = kastell::engine::drill::drill(&stored).unwrap_err();
    let message = refused.to_string();
    assert!(
        message.contains("which is no regular file") && message.contains(".dat"),
        "{message}"
    );
    assert!(!message.contains("kastell-local-secret-data"), "{message}");
}
