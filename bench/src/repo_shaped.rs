//! Benchmark 7b: the backup repository over SFTP behind a shaped link
//! (the network namespace of [`crate::netns`] at 100 Mbit/s, then
//! 1 Gbit/s), against what a user without a repository does to get the
//! same dump off-site: the local store's zstd into a file, synced, then
//! `scp` of that file to the same server. Reported per link: time, the
//! bytes that crossed the link (the veth's counter) and the bytes each
//! stored off-site; the unchanged second backup should add almost
//! nothing.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use kastell_core::{Error, Result};
use kastell_repo::backend::{BackendCredentials, SftpCredentials};
use kastell_repo::{BackupRepository, RepoLocation};
use kastell_ssh::sandbox::LocalSshd;

use crate::measure::{check, mb_per_s, median, run_child, secs};
use crate::netns::{NS_ADDR, ShapedLink};
use crate::report::Section;
use crate::repository::{PASSWORD, entry, local_store, timed, write_dump};

const TITLE: &str = "7b. Repository over a shaped link (SFTP)";

/// Section 7's target for a repository backup against the local store,
/// applied here to the local store plus its copy off-site.
const TARGET: f64 = 1.3;

/// The rates measured, in Mbit/s, with their labels.
const RATES: [(u32, &str); 2] = [(100, "100 Mbit/s"), (1000, "1 Gbit/s")];

/// What the benchmark left in the sandbox user's home: removed on drop
/// (this process runs as root, on the same file system as the server).
struct Remote(Vec<PathBuf>);

impl Remote {
    fn add(&mut self, path: PathBuf) -> PathBuf {
        self.0.push(path.clone());
        path
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = fs::remove_dir_all(path).or_else(|_| fs::remove_file(path));
        }
    }
}

/// Pins the namespaced sshd's host key: `ssh-keyscan -p PORT NS_ADDR`
/// into `known_hosts` (`[10.213.77.2]:PORT ssh-ed25519 ...`).
fn keyscan(port: u16, known_hosts: &Path) -> Result<()> {
    let mut command = Command::new("ssh-keyscan");
    command
        .args(["-p", &port.to_string()])
        .arg(NS_ADDR.to_string());
    let run = run_child(command)?;
    check(&run, "ssh-keyscan")?;
    let text = String::from_utf8_lossy(&run.stdout).into_owned();
    if !text
        .lines()
        .any(|l| l.starts_with(&format!("[{NS_ADDR}]:{port} ")))
    {
        return Err(Error::unexpected(format!(
            "ssh-keyscan found no host key at {NS_ADDR}:{port}: {}",
            String::from_utf8_lossy(&run.stderr).trim()
        )));
    }
    fs::write(known_hosts, text).map_err(|e| Error::io("writing known_hosts", e))
}

/// Times `scp` of `file` to `dest` on the namespaced sshd, the host key
/// checked against `known_hosts`.
fn scp(sshd: &LocalSshd, known_hosts: &Path, file: &Path, dest: &Path) -> Result<Duration> {
    let mut command = Command::new("scp");
    command
        .arg("-q")
        .arg("-i")
        .arg(sshd.ed25519_key())
        .args(["-P", &sshd.port().to_string()])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
        .arg(file)
        .arg(format!("{}@{NS_ADDR}:{}", sshd.user(), dest.display()));
    let run = run_child(command)?;
    check(&run, "scp")?;
    Ok(run.wall)
}

/// One run on one link.
struct Sample {
    zstd: Duration,
    scp: Duration,
    scp_sent: u64,
    zst_size: u64,
    init: Duration,
    first: Duration,
    first_sent: u64,
    first_added: u64,
    second: Duration,
    second_sent: u64,
    second_added: u64,
}

struct Setup<'a> {
    sshd: &'a LocalSshd,
    link: &'a ShapedLink,
    known_hosts: &'a Path,
    dump: &'a Path,
    scratch: &'a Path,
}

fn sample(setup: &Setup<'_>, remote: &mut Remote, name: &str) -> Result<Sample> {
    let Setup {
        sshd,
        link,
        known_hosts,
        dump,
        scratch,
    } = *setup;
    // (a) the local store, then its file copied off-site.
    let local = scratch.join("db.dump.zst");
    let zstd = local_store(dump, &local)?;
    let zst_size = fs::metadata(&local).map_or(0, |m| m.len());
    let dest = remote.add(sshd.home().join(format!("{name}.dump.zst")));
    let before = link.sent_bytes()?;
    let scp_took = scp(sshd, known_hosts, &local, &dest)?;
    let scp_sent = link.sent_bytes()?.saturating_sub(before);
    let _ = fs::remove_file(&dest);
    let _ = fs::remove_file(&local);

    // (b) and (c): a new repository over SFTP, the dump stored twice.
    let path = remote.add(sshd.home().join(name));
    let location = RepoLocation::Sftp {
        user: sshd.user().to_owned(),
        host: NS_ADDR.to_string(),
        port: sshd.port(),
        path: path.clone(),
    };
    let credentials = BackendCredentials {
        s3: None,
        sftp: Some(SftpCredentials {
            identity_file: sshd.ed25519_key(),
            known_hosts: known_hosts.to_path_buf(),
        }),
    };
    let (repo, init) = timed(|| BackupRepository::init_with(&location, PASSWORD, &credentials))?;
    let before = link.sent_bytes()?;
    let (first, first_took) = timed(|| repo.store("bench", &[], vec![entry(dump)?]))?;
    let middle = link.sent_bytes()?;
    let (second, second_took) = timed(|| repo.store("bench", &[], vec![entry(dump)?]))?;
    let after = link.sent_bytes()?;
    drop(repo);
    let _ = fs::remove_dir_all(&path);
    Ok(Sample {
        zstd,
        scp: scp_took,
        scp_sent,
        zst_size,
        init,
        first: first_took,
        first_sent: middle.saturating_sub(before),
        first_added: first.added_bytes,
        second: second_took,
        second_sent: after.saturating_sub(middle),
        second_added: second.added_bytes,
    })
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

/// Runs the benchmark `runs` times per link on a `mib` MiB dump. Needs
/// root (the network namespace); says "skipped" when the link cannot be
/// made. Blocking.
pub(crate) fn run(mib: u64, runs: usize) -> Result<Section> {
    let mut section = Section::new(TITLE);
    let scratch = tempfile::tempdir().map_err(|e| Error::io("a temporary directory", e))?;
    let dump = scratch.path().join("db.dump");
    let size = mib << 20;
    write_dump(&dump, size)?;
    let sshd = LocalSshd::start()?;
    let link = match crate::netns::shaped(&sshd, RATES[0].0) {
        Ok(link) => link,
        Err(e) => {
            section.para(format!(
                "skipped: the shaped link could not be made ({e}); it needs root, iproute2 and tc."
            ));
            return Ok(section);
        }
    };
    let known_hosts = scratch.path().join("known_hosts");
    keyscan(sshd.port(), &known_hosts)?;
    let setup = Setup {
        sshd: &sshd,
        link: &link,
        known_hosts: &known_hosts,
        dump: &dump,
        scratch: scratch.path(),
    };
    let mut remote = Remote(Vec::new());

    // For scale: the repository's own pipeline without a network, a new
    // local-directory repository per run.
    let mut local_runs = Vec::new();
    for n in 0..runs {
        let path = scratch.path().join(format!("local-repo-{n}"));
        let repo = BackupRepository::init(&RepoLocation::Local(path.clone()), PASSWORD, None)?;
        let (_, took) = timed(|| repo.store("bench", &[], vec![entry(&dump)?]))?;
        local_runs.push(took);
        drop(repo);
        let _ = fs::remove_dir_all(&path);
    }
    let local_repo = median(&local_runs);

    let mut rows = Vec::new();
    let mut targets = Vec::new();
    let mut notes = Vec::new();
    for (mbit, label) in RATES {
        if mbit != RATES[0].0 {
            link.set_rate(mbit)?;
        }
        let mut samples = Vec::new();
        for n in 0..runs {
            let name = format!("bench-repo-{}-{mbit}-{n}", std::process::id());
            samples.push(sample(&setup, &mut remote, &name)?);
        }
        let pick = |f: fn(&Sample) -> Duration| median(&samples.iter().map(f).collect::<Vec<_>>());
        let last = samples.last().ok_or_else(|| Error::unexpected("no run"))?;
        let (zstd, scp_t) = (pick(|s| s.zstd), pick(|s| s.scp));
        let baseline = pick(|s| s.zstd + s.scp);
        let (first, second) = (pick(|s| s.first), pick(|s| s.second));
        let row = |what: &str, took: Duration, sent: String, stored: String, vs: String| {
            vec![
                format!("{label}: {what}"),
                secs(took),
                format!("{:.0}", mb_per_s(size, took)),
                sent,
                stored,
                vs,
            ]
        };
        rows.push(row(
            "zstd -3 -T0 into a local file, synced",
            zstd,
            "-".into(),
            "-".into(),
            "-".into(),
        ));
        rows.push(row(
            "scp of that file off-site",
            scp_t,
            mb(last.scp_sent),
            "-".into(),
            "-".into(),
        ));
        rows.push(row(
            "local store + copy off-site (baseline: the sum)",
            baseline,
            mb(last.scp_sent),
            mb(last.zst_size),
            "1.00×".into(),
        ));
        rows.push(row(
            "kastell repository in a local directory instead, first (no link, for scale)",
            local_repo,
            "-".into(),
            "-".into(),
            format!("{:.2}×", ratio(local_repo, baseline)),
        ));
        rows.push(row(
            "kastell repository over SFTP, first backup",
            first,
            mb(last.first_sent),
            mb(last.first_added),
            format!("{:.2}×", ratio(first, baseline)),
        ));
        rows.push(row(
            "kastell repository over SFTP, unchanged second",
            second,
            mb(last.second_sent),
            mb(last.second_added),
            format!("{:.2}×", ratio(second, baseline)),
        ));
        let first_ratio = ratio(first, baseline);
        targets.push(vec![
            format!("{label}: first backup ≤ {TARGET}× local store + copy off-site"),
            format!("{first_ratio:.2}×"),
            crate::mcp_start::verdict(first_ratio <= TARGET).into(),
        ]);
        let share = last.second_added as f64 * 100.0 / size as f64;
        targets.push(vec![
            format!("{label}: unchanged second backup adds < 5% of the dump"),
            format!("{share:.2}%"),
            crate::mcp_start::verdict(share < 5.0).into(),
        ]);
        notes.push(format!(
            "{label}: repository init {}, the first backup's wire at {:.1} MB/s",
            secs(pick(|s| s.init)),
            last.first_sent as f64 / 1e6 / first.as_secs_f64().max(1e-9)
        ));
    }
    drop(link);

    section.para(format!(
        "The dump-like file of 7 ({mib} MiB of text rows) sent to the sandbox sshd behind the \
         shaped link of 2c (a network namespace, a veth pair with `tc tbf` on both ends at the \
         rate shown, a second sshd inside on {NS_ADDR}), its host key pinned with `ssh-keyscan` \
         into a known_hosts file that both clients check. Baseline, what it takes without a \
         repository to have the dump stored locally and off-site: `zstd -3 -T0` into a local file, \
         synced (7's local store), then `scp` of that file to the server (OpenSSH; its scp speaks \
         SFTP), the two times summed. kastell: a new restic-format repository over SFTP on the \
         same server (`sftp:{}@{NS_ADDR}:{}/<dir>`, libssh2, one session; each file written under \
         a temporary name, fsynced and renamed) storing the file as one snapshot, then the \
         unchanged file again; for scale, the same first backup into a repository in a local \
         directory (no link and no SSH: the repository's own pipeline; measured before the links, \
         the same figure under both). \"Sent\" is what crossed the link towards the server (the veth's \
         byte counter, frames included); \"stored\" is the compressed file for the baseline and \
         what the repository grew by (after dedup and compression) for kastell. Median of {runs} \
         run(s), each on a new repository; repository creation is not in the times.",
        sshd.user(),
        sshd.home().display(),
    ));
    section.table(
        &[
            "",
            "time",
            "MB/s of dump",
            "sent",
            "stored",
            "vs local store + copy",
        ],
        rows,
    );
    section.table(&["target", "measured", "verdict"], targets);
    section.para(format!("{}.", notes.join("; ")));
    Ok(section)
}
