//! Benchmark 2f: recovery time. A Coolify-shaped sandbox host with app
//! data (the platform's database, a PostgreSQL app, a MySQL app and an
//! app's volume: the sandbox's PaaS model, filled to a stated size with
//! data that compresses as applications' does) is backed up, then
//! `kastell recover` (the release binary) brings it back onto a new
//! DigitalOcean server created through the provider's simulator, whose
//! fake host sits behind the shaped link of [`crate::netns`] at
//! 100 Mbit/s and 1 Gbit/s. Each phase `recover` reports is timed; the
//! floor is the backup's stored bytes over the link plus the simulator's
//! server-creation wait (run in real time here, so the wait is real).

use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kastell::surfaces::sandbox::{Sandbox, SandboxPlan};
use kastell_core::{Error, Registry, Result};
use kastell_digitalocean::sim::{DigitalOceanSim, PROVISIONING};
use kastell_sim::{SimOptions, Simulator};
use kastell_ssh::sandbox::paas::{DEMO_DATABASE, DEMO_MYSQL_APP, DEMO_VOLUME};
use serde_json::Value;

use crate::adapt::local;
use crate::fleet::command;
use crate::measure::{ChildRun, check, run_child, secs};
use crate::paas::{Rows, fill_table_with};
use crate::report::Section;

/// The server recovered: the sandbox's Coolify server at Hetzner.
const SOURCE: &str = "hetzner-web";

/// Where it is recovered to.
const TARGET: &str = "digitalocean";

/// The platform's own database on a sandbox Coolify host.
const PLATFORM_DATABASE: &str = "coolify";

/// Virtual seconds per real second of the target's simulator: real time,
/// so its creation wait is a real wait, as at the provider.
const TARGET_SPEED: f64 = 1.0;

/// A one-minute load average above this share of the cores marks the
/// figures "to re-measure".
const BUSY_LOAD: f64 = 0.5;

/// What the host holds, in bytes written (before compression).
#[derive(Debug, Clone, Copy)]
struct Mix {
    platform: u64,
    blog: u64,
    shop: u64,
    images: u64,
    texts: u64,
}

impl Mix {
    /// About `mib` MiB split as a small Coolify host's: the platform's
    /// database 1/32, the PostgreSQL app 9/16, the MySQL app 3/16, the
    /// volume the rest (half photos, which do not compress, half text).
    fn of(mib: u64) -> Self {
        let total = mib.max(4) << 20;
        let platform = (total / 32).max(1 << 20);
        let blog = total * 9 / 16;
        let shop = total * 3 / 16;
        let volume = total.saturating_sub(platform + blog + shop);
        Self {
            platform,
            blog,
            shop,
            images: volume / 2,
            texts: volume - volume / 2,
        }
    }
}

/// A deterministic byte source standing for photos (xorshift64*: as
/// incompressible as JPEG data).
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Gives `path` the owner of `like` (the fake host's files belong to its
/// login, which this process may not be).
fn same_owner(path: &Path, like: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(like).map_err(|e| Error::io("reading an owner", e))?;
    std::os::unix::fs::chown(path, Some(meta.uid()), Some(meta.gid()))
        .map_err(|e| Error::io(format!("giving {} its owner", path.display()), e))
}

/// Fills the source host at `address` as `mix` says: rows in the
/// platform's database and the PostgreSQL app's (application-like rows),
/// text appended to the MySQL app's data, photos and text files in the
/// app's volume.
fn fill(sandbox: &Sandbox, address: Ipv4Addr, mix: Mix, scratch: &Path) -> Result<()> {
    let hosts = sandbox.hosts();
    let mib = |bytes: u64| (bytes >> 20).max(1);
    for (db, table, bytes) in [
        (PLATFORM_DATABASE, "bench_activity", mix.platform),
        (DEMO_DATABASE, "bench_orders", mix.blog),
    ] {
        fill_table_with(
            |sql| hosts.psql(address, db, sql).map(drop),
            table,
            mib(bytes),
            Rows::App,
        )?;
        // The app reads its tables as the database's owner.
        let owner = hosts.psql(
            address,
            db,
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()",
        )?;
        hosts.psql(
            address,
            db,
            &format!(
                "ALTER TABLE {table} OWNER TO \"{}\"",
                owner.replace('"', "\"\"")
            ),
        )?;
    }
    let text = scratch.join("text");
    crate::textdump::write(&text, mix.shop + mix.texts)?;
    let text = std::fs::read(&text).map_err(|e| Error::io("reading the text", e))?;
    let shop = hosts
        .app_data_file(address, DEMO_MYSQL_APP, "mysql.sql")
        .ok_or_else(|| Error::unexpected("the sandbox host has no MySQL app"))?;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&shop)
        .map_err(|e| Error::io("opening the MySQL app's data", e))?;
    let take = usize::try_from(mix.shop)
        .unwrap_or(usize::MAX)
        .min(text.len());
    file.write_all(&text[..take])
        .map_err(|e| Error::io("writing the MySQL app's data", e))?;
    let volume = hosts
        .root(address)?
        .join(format!("var/lib/docker/volumes/{DEMO_VOLUME}/_data"));
    let dir = volume.join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating the volume's files", e))?;
    same_owner(&dir, &volume)?;
    const PHOTO: usize = 512 << 10;
    const PAGE: usize = 64 << 10;
    let mut written = 0u64;
    for n in 0.. {
        if written >= mix.images {
            break;
        }
        let path = dir.join(format!("photo-{n:05}.jpg"));
        let len = PHOTO.min(usize::try_from(mix.images - written).unwrap_or(PHOTO));
        std::fs::write(&path, noise(n + 1, len)).map_err(|e| Error::io("writing a photo", e))?;
        same_owner(&path, &volume)?;
        written += len as u64;
    }
    // The pages are the text after the shop's part (the machine may have
    // less text than asked: then less of both).
    let pages = text.get(take..).unwrap_or_default();
    let pages = &pages[..usize::try_from(mix.texts)
        .unwrap_or(usize::MAX)
        .min(pages.len())];
    for (n, chunk) in pages.chunks(PAGE).enumerate() {
        let path = dir.join(format!("page-{n:05}.html"));
        std::fs::write(&path, chunk).map_err(|e| Error::io("writing a page", e))?;
        same_owner(&path, &volume)?;
    }
    Ok(())
}

/// The backup's stored files (every file of its directory but the
/// manifest) and their sizes.
fn stored_files(backup: &Path) -> Result<Vec<(PathBuf, u64)>> {
    let mut files = Vec::new();
    let entries = std::fs::read_dir(backup).map_err(|e| Error::io("reading the backup", e))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        let name = entry.file_name().to_string_lossy().into_owned();
        if meta.is_file() && !name.starts_with("manifest") {
            files.push((path, meta.len()));
        }
    }
    files.sort();
    Ok(files)
}

/// (raw, zstd -1, zstd -3) bytes of the backup's data: each stored file
/// decompressed (zstd ones) and compressed again on this machine.
fn ratios(files: &[(PathBuf, u64)]) -> Result<(u64, u64, u64)> {
    let (mut raw, mut one, mut three) = (0, 0, 0);
    for (path, _) in files {
        let path = path.display();
        let source = if path.to_string().ends_with(".zst") {
            format!("zstd -dcq '{path}'")
        } else {
            format!("cat '{path}'")
        };
        raw += local(&source)?.0;
        one += local(&format!("{source} | zstd -1 -T0 -q -c"))?.0;
        three += local(&format!("{source} | zstd -3 -T0 -q -c"))?.0;
    }
    Ok((raw, one, three))
}

/// The one-minute load average and the cores.
fn load() -> (f64, usize) {
    let one = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (one, cores)
}

/// One recovery: its wall time, what `recover` answered and the bytes the
/// link carried to the new host.
struct Recovery {
    wall: Duration,
    body: Value,
    sent: u64,
}

impl Recovery {
    /// Each phase `recover` reported: (name, duration).
    fn phases(&self) -> Vec<(String, Duration)> {
        self.body["steps"]
            .as_array()
            .map(|steps| {
                steps
                    .iter()
                    .map(|s| {
                        (
                            s["name"].as_str().unwrap_or("?").to_owned(),
                            Duration::from_millis(s["durationMs"].as_u64().unwrap_or(0)),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// What `recover` reports as the recovery time.
    fn reported(&self) -> Duration {
        Duration::from_millis(self.body["recoveryMs"].as_u64().unwrap_or(0))
    }
}

/// The environment and state a recovery runs in.
struct Bench<'a> {
    bin: &'a Path,
    sandbox: &'a Sandbox,
    dir: &'a Path,
}

impl Bench<'_> {
    /// `kastell args` against the sandbox, with `target` standing for
    /// DigitalOcean (its token and endpoint), which must succeed; the
    /// answer parsed.
    fn kastell(
        &self,
        args: &[&str],
        target: Option<&DigitalOceanSim>,
    ) -> Result<(ChildRun, Value)> {
        let mut cmd = command(self.bin, self.sandbox, self.dir, args);
        if let Some(sim) = target {
            let entry = Registry::global().provider(TARGET)?;
            cmd.env(entry.token_env, sim.read_write_token())
                .env("KASTELL_DIGITALOCEAN_ENDPOINT", sim.endpoint());
        }
        let run = run_child(cmd)?;
        check(&run, &format!("kastell {}", args.join(" ")))?;
        let body = serde_json::from_slice(&run.stdout)
            .map_err(|e| Error::unexpected(format!("kastell {} printed no JSON: {e}", args[0])))?;
        Ok((run, body))
    }

    /// Recovers [`SOURCE`] as `name` onto a new server at a fresh
    /// simulator whose first created server gets the host behind `link`.
    async fn recover(&self, link: &crate::netns::ShapedLink, name: &str) -> Result<Recovery> {
        let target = link.ns_addr();
        let hosts = self.sandbox.hosts();
        hosts.destroy(target)?;
        // A fresh server's first boot.
        hosts.reboot(
            target,
            &format!("00000000-0000-4000-8000-{:012x}", name.len()),
        )?;
        let sim = DigitalOceanSim::start(SimOptions {
            servers: 3,
            scale: TARGET_SPEED,
        })
        .await
        .map_err(|e| Error::io("starting the DigitalOcean simulator", e))?;
        sim.addresses().add([target]);
        let before = link.sent_bytes()?;
        let args = [
            "--json", "recover", SOURCE, "--to", TARGET, "--name", name, "--force",
        ];
        let (run, body) = tokio::task::block_in_place(|| self.kastell(&args, Some(&sim)))?;
        let sent = link.sent_bytes()?.saturating_sub(before);
        if !hosts.platform_running(target) {
            return Err(Error::unexpected(format!(
                "after the recovery {name}, Coolify does not run on {target}"
            )));
        }
        // The next recovery's server gets the same address.
        self.sandbox.store().remove(name)?;
        Ok(Recovery {
            wall: run.wall,
            body,
            sent,
        })
    }
}

/// The floor at `mbit` Mbit/s: `bytes` over the link plus the creation
/// wait.
fn floor(bytes: u64, mbit: u32, wait: Duration) -> Duration {
    Duration::from_secs_f64(bytes as f64 * 8.0 / (f64::from(mbit) * 1e6)) + wait
}

/// Runs the benchmark on a host of about `mib` MiB of app data, with the
/// `kastell` binary at `bin`.
pub(crate) async fn run(bin: &Path, mib: u64) -> Result<Section> {
    let (load_before, cores) = load();
    let dir = tempfile::tempdir().map_err(|e| Error::io("creating a directory", e))?;
    let plan = SandboxPlan {
        providers: Some(vec!["hetzner".into()]),
        servers_per_provider: 1,
        manual_server: false,
        platform: Some("coolify".into()),
        spare_hosts_per_provider: 0,
    };
    let sandbox = Sandbox::start_with(dir.path(), &plan).await?;
    let source = sandbox
        .server(SOURCE)
        .ok_or_else(|| Error::unexpected("the sandbox has no Coolify server"))?
        .address;
    let mix = Mix::of(mib);
    let scratch = tempfile::tempdir().map_err(|e| Error::io("creating a directory", e))?;
    tokio::task::block_in_place(|| fill(&sandbox, source, mix, scratch.path()))?;
    let bench = Bench {
        bin,
        sandbox: &sandbox,
        dir: dir.path(),
    };
    let (backup_run, backup) = tokio::task::block_in_place(|| {
        bench.kastell(&["--json", "backup", "create", SOURCE, "--force"], None)
    })?;
    let backup_dir = PathBuf::from(backup["backupPath"].as_str().unwrap_or_default());
    let files = stored_files(&backup_dir)?;
    let stored: u64 = files.iter().map(|(_, size)| size).sum();
    let (raw, one, three) = tokio::task::block_in_place(|| ratios(&files))?;

    let wait = Duration::from_secs_f64(PROVISIONING / TARGET_SPEED);
    let link = crate::netns::shaped(sandbox.sshd(), 100)?;
    let mut runs = Vec::new();
    for mbit in [100, 1000] {
        link.set_rate(mbit)?;
        let recovery = bench.recover(&link, &format!("bench-{mbit}")).await?;
        runs.push((mbit, recovery));
    }
    drop(link);
    let (load_after, _) = load();

    let build = if bin.parent().and_then(Path::file_name) == Some("release".as_ref()) {
        "the release binary"
    } else {
        "a build that is not the release one: its figures are not comparable"
    };
    let mut section = Section::new("2f. Recovery onto a new server behind a shaped link");
    let busy = load_before.max(load_after) > BUSY_LOAD * cores as f64;
    section.para(format!(
        "Measured {} under a one-minute load average of {load_before:.2} before and \
         {load_after:.2} after on {cores} cores{}.",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        if busy {
            ": the machine was busy with other work, so these figures are **to re-measure** \
             on a quiet machine"
        } else {
            " (quiet)"
        }
    ));
    section.para(format!(
        "A sandbox Coolify server at Hetzner (the fake Docker over a real PostgreSQL, behind a \
         real sshd) holding {:.0} MB of app data: the platform's database {:.0} MB and the blog's \
         PostgreSQL {:.0} MB of application-like rows (words, amounts, dates, JSON), the shop's \
         MySQL {:.0} MB and the site's volume {:.0} MB ({:.0} MB of photos, incompressible, and {:.0} MB \
         of pages in text: package lists and manuals), plus the seeded apps. The backup (`kastell \
         backup create`, {build}) stores {:.1} MB; its data decompressed is {:.1} MB, which \
         zstd -1 keeps {:.1}% of and zstd -3 {:.1}% (this machine's `zstd -T0`). The backup took \
         {}. Then `kastell recover {SOURCE} --to {TARGET}` (the same binary) creates a droplet \
         through the DigitalOcean simulator running in real time, so its creation wait (the \
         droplet `new` for {:.0} s, then `active`) is a real {:.0} s; the simulator hands it the \
         address of a fake host behind a link this benchmark makes (a network namespace and a \
         veth pair with `tc tbf` on both ends, a second sshd inside), at the rate shown. \
         kastell polls the provider as in production. The floor is the stored bytes over the \
         link plus the creation wait; the target is a recovery within 1.3× of it.",
        (mix.platform + mix.blog + mix.shop + mix.images + mix.texts) as f64 / 1e6,
        mix.platform as f64 / 1e6,
        mix.blog as f64 / 1e6,
        mix.shop as f64 / 1e6,
        (mix.images + mix.texts) as f64 / 1e6,
        mix.images as f64 / 1e6,
        mix.texts as f64 / 1e6,
        stored as f64 / 1e6,
        raw as f64 / 1e6,
        100.0 * one as f64 / raw.max(1) as f64,
        100.0 * three as f64 / raw.max(1) as f64,
        secs(backup_run.wall),
        PROVISIONING,
        wait.as_secs_f64(),
    ));
    let mut names: Vec<String> = Vec::new();
    for (_, recovery) in &runs {
        for (name, _) in recovery.phases() {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    let mut rows: Vec<Vec<String>> = names
        .iter()
        .map(|name| {
            let mut row = vec![name.clone()];
            for (_, recovery) in &runs {
                let took = recovery
                    .phases()
                    .iter()
                    .filter(|(n, _)| n == name)
                    .map(|(_, d)| *d)
                    .sum::<Duration>();
                row.push(secs(took));
            }
            row
        })
        .collect();
    let total = |f: &dyn Fn(&Recovery) -> String| -> Vec<String> {
        runs.iter().map(|(_, r)| f(r)).collect()
    };
    rows.push(
        [
            vec!["**recovery (as `recover` reports it)**".to_owned()],
            total(&|r| secs(r.reported())),
        ]
        .concat(),
    );
    rows.push(
        [
            vec!["the command's wall time".to_owned()],
            total(&|r| secs(r.wall)),
        ]
        .concat(),
    );
    rows.push(
        [
            vec!["bytes the link carried to the new host".to_owned()],
            total(&|r| format!("{:.1} MB", r.sent as f64 / 1e6)),
        ]
        .concat(),
    );
    let floors: Vec<Duration> = runs
        .iter()
        .map(|(mbit, _)| floor(stored, *mbit, wait))
        .collect();
    rows.push(
        [
            vec!["floor: stored bytes over the link + creation wait".to_owned()],
            floors.iter().map(|f| secs(*f)).collect(),
        ]
        .concat(),
    );
    let header: Vec<String> = std::iter::once("phase".to_owned())
        .chain(runs.iter().map(|(mbit, _)| link_label(*mbit)))
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    section.table(&header, rows);
    let targets = runs
        .iter()
        .zip(&floors)
        .map(|((mbit, r), floor)| {
            let ratio = r.reported().as_secs_f64() / floor.as_secs_f64().max(1e-9);
            vec![
                format!("{}: recovery ≤ 1.3× the floor", link_label(*mbit)),
                format!("{ratio:.2}×"),
                crate::mcp_start::verdict(ratio <= 1.3).to_owned(),
            ]
        })
        .collect();
    section.table(&["target", "measured", "verdict"], targets);
    let late: Vec<String> = runs
        .iter()
        .map(|(mbit, r)| {
            let create = r
                .phases()
                .iter()
                .filter(|(n, _)| n.starts_with("Create server"))
                .map(|(_, d)| *d)
                .sum::<Duration>();
            format!(
                "{}: {}",
                link_label(*mbit),
                secs(create.saturating_sub(wait))
            )
        })
        .collect();
    section.para(format!(
        "The creation phase past the {:.0} s wait is how late kastell's polling of the provider \
         saw the droplet active ({}); the rest past the floor is the platform's install, the \
         restores' work on both ends and the checks.",
        wait.as_secs_f64(),
        late.join(", ")
    ));
    Ok(section)
}

/// A rate as the report names it.
fn link_label(mbit: u32) -> String {
    if mbit >= 1000 {
        format!("{} Gbit/s", mbit / 1000)
    } else {
        format!("{mbit} Mbit/s")
    }
}
