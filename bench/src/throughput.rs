//! Benchmarks 2 and 3 (raw): a database dump of `size` bytes backed up and
//! restored through the real sshd by kastell's backup engine, against the
//! OpenSSH client moving the same bytes (`ssh host cat FILE > local` and
//! `ssh host 'cat > FILE' < local`) in the same run.

use std::fs;
use std::io::{BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use kastell::ServerRecord;
use kastell::engine::backup::{BackupEngine, BackupRequest, RestoreRequest, TransferProgress};
use kastell_core::transport::check_status;
use kastell_core::types::{
    ArtifactFormat, ArtifactSink, ArtifactSource, ArtifactSpec, BackupId, BackupReport,
    Compression, Health, PlatformInfo, RestoreReport, UpdateOptions, UpdateReport,
};
use kastell_core::wire::CompressMode;
use kastell_core::{
    Error, Platform, PlatformCapability, RemoteCommand, Result, Transport, TransportExt,
};
use kastell_ssh::SshTransport;
use kastell_ssh::sandbox::LocalSshd;

use crate::measure::{mb_per_s, median, secs};
use crate::report::Section;

/// The artifact's name in the backup.
const ARTIFACT: &str = "db.sql";
const LONG: Duration = Duration::from_secs(3600);

/// A platform whose whole state is one dump file on the host: backup
/// streams it with `cat`, restore writes it back with `cat >`.
#[derive(Debug)]
struct DumpFile {
    transport: Arc<dyn Transport>,
    source: String,
    restore_to: String,
}

#[async_trait]
impl Platform for DumpFile {
    fn info(&self) -> PlatformInfo {
        PlatformInfo::new("bench-dump", "Dump file")
    }

    fn capability(&self) -> PlatformCapability {
        PlatformCapability {
            version: true,
            health: true,
            backup: true,
            backup_restore: true,
            stop_start: true,
            ..PlatformCapability::NONE
        }
    }

    async fn version(&self) -> Result<String> {
        Ok("1".into())
    }

    async fn health(&self) -> Result<Health> {
        Ok(Health {
            healthy: true,
            detail: "a file".into(),
        })
    }

    async fn update(&self, _options: &UpdateOptions) -> Result<UpdateReport> {
        Err(Error::unsupported("a dump file has nothing to update"))
    }

    async fn backup(&self, sink: &mut dyn ArtifactSink) -> Result<BackupReport> {
        let spec = ArtifactSpec {
            name: ARTIFACT.into(),
            format: ArtifactFormat::Raw,
        };
        let writer = sink.open(&spec)?;
        let command = RemoteCommand::template("cat {}", &[&self.source])?;
        let out = self
            .transport
            .exec_streaming(&command, None, writer, LONG)
            .await?;
        check_status(&command, out.status, &out.stderr)?;
        Ok(BackupReport {
            platform_version: "1".into(),
            artifacts: vec![sink.seal(ARTIFACT)?],
            skipped: Vec::new(),
            warnings: Vec::new(),
            apps: Vec::new(),
        })
    }

    async fn restore(&self, source: &dyn ArtifactSource) -> RestoreReport {
        let mut report = RestoreReport::default();
        let outcome = report
            .step("Write dump", async {
                let reader = source.open(ARTIFACT)?;
                let bytes = self
                    .transport
                    .upload(reader, &self.restore_to, LONG)
                    .await?;
                Ok(((), format!("{bytes} bytes")))
            })
            .await;
        report.conclude(outcome)
    }

    async fn stop(&self) -> Result<()> {
        Ok(())
    }

    async fn start(&self) -> Result<()> {
        Ok(())
    }
}

/// Writes `size` bytes of text shaped like a plain `pg_dump` (COPY rows of
/// ids, names, e-mail addresses, amounts and timestamps) to `path`, from a
/// fixed seed, so it compresses like a real dump.
pub(crate) fn write_dump(path: &Path, size: u64) -> Result<()> {
    let file = fs::File::create(path).map_err(|e| Error::io("creating the dump", e))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    const WORDS: [&str; 16] = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
        "juliet", "kilo", "lima", "mike", "november", "oscar", "papa",
    ];
    let mut written: u64 = 0;
    let header = "COPY public.orders (id, customer, email, amount, created_at) FROM stdin;\n";
    out.write_all(header.as_bytes())
        .map_err(|e| Error::io("writing the dump", e))?;
    written += header.len() as u64;
    let mut id: u64 = 0;
    let mut line = String::with_capacity(160);
    while written < size {
        id += 1;
        let r = next();
        line.clear();
        use std::fmt::Write as _;
        let _ = writeln!(
            line,
            "{id}\t{} {}\t{}.{}{}@example.com\t{}.{:02}\t2026-{:02}-{:02} {:02}:{:02}:{:02}+00",
            WORDS[(r & 15) as usize],
            WORDS[((r >> 4) & 15) as usize],
            WORDS[((r >> 8) & 15) as usize],
            WORDS[((r >> 12) & 15) as usize],
            (r >> 16) % 1000,
            (r >> 26) % 100_000,
            (r >> 43) % 100,
            1 + (r >> 50) % 12,
            1 + (r >> 54) % 28,
            (r >> 20) % 24,
            (r >> 30) % 60,
            (r >> 36) % 60,
        );
        let take = (size - written).min(line.len() as u64) as usize;
        out.write_all(&line.as_bytes()[..take])
            .map_err(|e| Error::io("writing the dump", e))?;
        written += take as u64;
    }
    out.flush().map_err(|e| Error::io("writing the dump", e))
}

/// The OpenSSH client's arguments to reach the sandbox sshd.
fn ssh_args(sshd: &LocalSshd, host: &str) -> Vec<String> {
    vec![
        "-i".into(),
        sshd.ed25519_key().display().to_string(),
        "-p".into(),
        sshd.port().to_string(),
        "-o".into(),
        "BatchMode=yes".into(),
        "-o".into(),
        "StrictHostKeyChecking=no".into(),
        "-o".into(),
        "UserKnownHostsFile=/dev/null".into(),
        "-o".into(),
        "LogLevel=ERROR".into(),
        format!("{}@{host}", sshd.user()),
    ]
}

/// Times `ssh host REMOTE` with stdin from `input` and stdout to `output`.
pub(crate) fn openssh(
    sshd: &LocalSshd,
    remote: &str,
    input: Option<&Path>,
    output: Option<&Path>,
) -> Result<Duration> {
    openssh_at(sshd, sshd.host(), remote, input, output)
}

/// [`openssh`] to `host` (the same daemon's keys and user, reached at
/// another address: the shaped link's).
pub(crate) fn openssh_at(
    sshd: &LocalSshd,
    host: &str,
    remote: &str,
    input: Option<&Path>,
    output: Option<&Path>,
) -> Result<Duration> {
    let mut command = Command::new("ssh");
    command.args(ssh_args(sshd, host)).arg(remote);
    command.stdin(match input {
        Some(p) => Stdio::from(fs::File::open(p).map_err(|e| Error::io("opening input", e))?),
        None => Stdio::null(),
    });
    command.stdout(match output {
        Some(p) => Stdio::from(fs::File::create(p).map_err(|e| Error::io("creating output", e))?),
        None => Stdio::null(),
    });
    command.stderr(Stdio::piped());
    let started = Instant::now();
    let out = command
        .output()
        .map_err(|e| Error::io("running ssh (apt-get install openssh-client)", e))?;
    let took = started.elapsed();
    if !out.status.success() {
        return Err(Error::unexpected(format!(
            "ssh {remote} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(took)
}

/// A directory both this process and the sandbox login can write.
pub(crate) fn shared_dir(prefix: &str) -> Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|e| Error::io("creating a directory", e))?;
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777))
        .map_err(|e| Error::io("opening a directory", e))?;
    Ok(dir)
}

/// Runs the raw dump benchmarks with `size` bytes, each measurement
/// `runs` times.
pub(crate) async fn run(size: u64, runs: usize) -> Result<Vec<Section>> {
    let sshd = tokio::task::spawn_blocking(LocalSshd::start)
        .await
        .map_err(|e| Error::unexpected(format!("sshd start: {e}")))??;
    let remote = shared_dir("kastell-bench-remote-")?;
    let local = tempfile::tempdir().map_err(|e| Error::io("creating a directory", e))?;
    let dump = remote.path().join("dump.sql");
    let restored = remote.path().join("restored.sql");
    write_dump(&dump, size)?;
    fs::set_permissions(&dump, fs::Permissions::from_mode(0o644))
        .map_err(|e| Error::io("opening the dump", e))?;
    let transport: Arc<dyn Transport> = Arc::new(SshTransport::new(sshd.ssh_config()));
    let transport_for_wire = transport.clone();
    let platform: Arc<dyn Platform> = Arc::new(DumpFile {
        transport,
        source: dump.display().to_string(),
        restore_to: restored.display().to_string(),
    });
    let record = ServerRecord::new("bench-1", "bench", "127.0.0.1");
    let local_copy = local.path().join("copy.sql");
    let dump_arg = dump.display().to_string();
    let restored_arg = restored.display().to_string();

    let mut wire = Vec::new();
    let mut ssh_down = Vec::new();
    let mut ssh_down_durable = Vec::new();
    let mut plain_down = Vec::new();
    let mut zstd_down = Vec::new();
    let mut ssh_up = Vec::new();
    let mut plain_up = Vec::new();
    let mut zstd_size = 0;
    let mut restore_steps = String::new();
    let cat = RemoteCommand::template("cat {}", &[&dump_arg])?;
    for run in 0..runs {
        let started = Instant::now();
        let out = transport_for_wire
            .exec_streaming(&cat, None, Box::new(std::io::sink()), LONG)
            .await?;
        check_status(&cat, out.status, &out.stderr)?;
        wire.push(started.elapsed());
        let took = openssh(&sshd, &format!("cat {dump_arg}"), None, Some(&local_copy))?;
        ssh_down.push(took);
        let started = Instant::now();
        fs::File::open(&local_copy)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io("syncing the copy", e))?;
        ssh_down_durable.push(took + started.elapsed());
        ssh_up.push(openssh(
            &sshd,
            &format!("cat > {restored_arg}"),
            Some(&local_copy),
            None,
        )?);
        for compression in [Compression::None, Compression::Zstd] {
            let store = tempfile::tempdir().map_err(|e| Error::io("creating a store", e))?;
            // Raw on the wire, as this platform has always sent it: the
            // bench measures the engine's own path, not a probe.
            let engine = BackupEngine::new(store.path()).with_compress_mode(match compression {
                Compression::None => CompressMode::None,
                _ => CompressMode::Local,
            });
            let started = Instant::now();
            let created = engine
                .create(&BackupRequest {
                    server: record.clone(),
                    platform: platform.clone(),
                    transport: transport_for_wire.clone(),
                    host_key: None,
                    transfer: TransferProgress::none(),
                })
                .await?;
            let took = started.elapsed();
            let stored: u64 = created.manifest.artifacts.iter().map(|a| a.size).sum();
            match compression {
                Compression::Zstd => {
                    zstd_down.push(took);
                    zstd_size = stored;
                }
                _ => {
                    plain_down.push(took);
                    let started = Instant::now();
                    restore_steps = restore(
                        &engine,
                        &record,
                        &platform,
                        &transport_for_wire,
                        &created.id,
                    )
                    .await?;
                    plain_up.push(started.elapsed());
                    if run == 0 {
                        check_same(&dump, &restored)?;
                    }
                }
            }
        }
    }
    let row = |what: &str, times: &[Duration], base: Duration| {
        let t = median(times);
        vec![
            what.to_owned(),
            secs(t),
            format!("{:.0}", mb_per_s(size, t)),
            format!("{:.2}", base.as_secs_f64() / t.as_secs_f64().max(1e-9)),
        ]
    };
    let down_base = median(&ssh_down);
    let up_base = median(&ssh_up);
    let mut backup = Section::new("2. Backup throughput (raw dump through the real sshd)");
    backup.para(format!(
        "A {:.0} MiB dump-shaped text file (COPY rows) on a sandbox host behind OpenSSH on loopback, \
         median of {runs} runs. The baseline is the OpenSSH client: `ssh host cat dump > local`. \
         kastell is the backup engine with the same bytes streamed over libssh2 into staging, hashed \
         (SHA-256), fsynced and published atomically. Ratio = baseline time / kastell time (higher is better).",
        size as f64 / 1048576.0
    ));
    backup.table(
        &["", "time", "MB/s", "ratio to ssh cat"],
        vec![
            row("ssh cat (baseline)", &ssh_down, down_base),
            row(
                "ssh cat, then fsync of the copy",
                &ssh_down_durable,
                down_base,
            ),
            row("kastell, compression off", &plain_down, down_base),
            row("kastell, zstd", &zstd_down, down_base),
            row("libssh2 alone: cat into nothing", &wire, down_base),
        ],
    );
    let plain_ratio = down_base.as_secs_f64() / median(&plain_down).as_secs_f64().max(1e-9);
    let durable_ratio =
        median(&ssh_down_durable).as_secs_f64() / median(&plain_down).as_secs_f64().max(1e-9);
    backup.para(format!(
        "Target 0.9 or better with compression off: {} ({plain_ratio:.2}; {durable_ratio:.2} against the \
         copy made durable, as kastell makes every backup before listing it). The last row is kastell's \
         SSH transport (libssh2) reading the same stream and discarding it: the ceiling the engine \
         works under on this machine. With zstd (level 1) the artifact is {:.1} MB ({:.1}% of the dump).",
        crate::mcp_start::verdict(plain_ratio >= 0.9),
        zstd_size as f64 / 1e6,
        100.0 * zstd_size as f64 / size as f64
    ));
    let mut restore_section =
        Section::new("3. Restore throughput (raw dump through the real sshd)");
    restore_section.para(
        "The same backup (compression off) restored by the engine: checksums verified, the \
         platform stopped, the dump streamed with `cat >` over libssh2, started again and its \
         health checked (no safety backup, so only the restore is timed). Baseline: \
         `ssh host 'cat > file' < local`.",
    );
    restore_section.table(
        &["", "time", "MB/s", "ratio to ssh cat >"],
        vec![
            row("ssh cat > (baseline)", &ssh_up, up_base),
            row("kastell restore", &plain_up, up_base),
        ],
    );
    let up_ratio = up_base.as_secs_f64() / median(&plain_up).as_secs_f64().max(1e-9);
    restore_section.para(format!(
        "Ratio {up_ratio:.2} ({} against 0.9). The engine's steps in the last run: {restore_steps}. \
         The restored file was compared byte for byte with the original.",
        crate::mcp_start::verdict(up_ratio >= 0.9)
    ));
    drop(sshd);
    Ok(vec![backup, restore_section])
}

async fn restore(
    engine: &BackupEngine,
    record: &ServerRecord,
    platform: &Arc<dyn Platform>,
    transport: &Arc<dyn Transport>,
    id: &BackupId,
) -> Result<String> {
    let outcome = engine
        .restore(RestoreRequest {
            server: record.clone(),
            platform: platform.clone(),
            transport: transport.clone(),
            backup_id: id.clone(),
            safety_backup: false,
            host_key: None,
            health_deadline: Duration::from_secs(60),
            transfer: TransferProgress::none(),
        })
        .await;
    match outcome.error {
        None => Ok(outcome
            .steps
            .iter()
            .map(|s| format!("{} {} ms", s.name, s.duration_ms))
            .collect::<Vec<_>>()
            .join(", ")),
        Some(e) => Err(e),
    }
}

/// Fails unless the two files hold the same bytes.
fn check_same(a: &Path, b: &PathBuf) -> Result<()> {
    let same = Command::new("cmp")
        .args(["-s"])
        .arg(a)
        .arg(b)
        .status()
        .map_err(|e| Error::io("running cmp", e))?
        .success();
    if same {
        Ok(())
    } else {
        Err(Error::unexpected(
            "the restored dump differs from the original",
        ))
    }
}
