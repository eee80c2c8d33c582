//! A shaped link: a network namespace joined to this one by a veth pair
//! with a `tc` token bucket filter (`tbf`) on both ends, and a second sshd
//! (same keys, same sandbox user) listening inside it. Only the two
//! private addresses of the pair (`10.213.N.1` here, `10.213.N.2` in the
//! namespace) are used; the namespace, the pair and the daemon go when the
//! [`ShapedLink`] drops. Needs root, `ip` and `tc` (iproute2).
//!
//! The shaped-link benchmarks and the link-measurement tests use it; a test
//! that needs one fails with [`ShapedLink::create`]'s error when the
//! machine cannot make it (not root, no iproute2), never passing silently.

use std::fs;
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use kastell_core::{Error, Result};
use kastell_ssh::sandbox::LocalSshd;

/// The subnets [`ShapedLink::create`] picks from: `10.213.N.0/30` for N in
/// this range, the first one no interface of this machine uses.
const SUBNETS: std::ops::Range<u8> = 100..250;

fn ip(args: &[&str]) -> Result<()> {
    run("ip", args)
}

fn run(program: &str, args: &[&str]) -> Result<()> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            Error::io(format!("running {program}",), e)
                .with_hint("Install iproute2 (bash .ci/setup does) and run as root")
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::unexpected(format!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
        .with_hint("A shaped link needs root (network namespaces and tc)"))
    }
}

/// The namespace, the veth pair, the shaping and the sshd inside.
pub struct ShapedLink {
    ns: String,
    host_if: String,
    ns_if: String,
    ns_addr: Ipv4Addr,
    sshd: Option<Child>,
    config: PathBuf,
    pid_file: PathBuf,
    port: u16,
}

impl ShapedLink {
    /// Creates a namespace and a pair on the first free subnet of
    /// `10.213.100-249.0/30`, shaped to `mbit` Mbit/s, and starts a copy of
    /// `sshd` inside.
    ///
    /// Fails, saying why, when not root, without `ip`/`tc`, when every
    /// subnet is taken, or when the sshd inside does not answer in 10 s.
    pub fn create(sshd: &LocalSshd, mbit: u32) -> Result<Self> {
        let used = used_addresses()?;
        let subnet = SUBNETS
            .clone()
            .find(|n| !used.contains(&format!("10.213.{n}.")))
            .ok_or_else(|| Error::unexpected("every 10.213.100-249.0/30 subnet is in use"))?;
        Self::create_at(sshd, mbit, subnet)
    }

    /// [`create`](Self::create) on `10.213.{subnet}.0/30`.
    pub fn create_at(sshd: &LocalSshd, mbit: u32, subnet: u8) -> Result<Self> {
        static SEQUENCE: AtomicU32 = AtomicU32::new(0);
        let id =
            (std::process::id() % 100_000) * 10 + SEQUENCE.fetch_add(1, Ordering::Relaxed) % 10;
        let host_addr = Ipv4Addr::new(10, 213, subnet, 1);
        let mut link = Self {
            ns: format!("kastell-link-{id}"),
            host_if: format!("kbh{id}"),
            ns_if: format!("kbn{id}"),
            ns_addr: Ipv4Addr::new(10, 213, subnet, 2),
            sshd: None,
            config: sshd.dir().join(format!("sshd_config_netns_{id}")),
            pid_file: sshd.dir().join(format!("sshd-netns-{id}.pid")),
            port: sshd.port(),
        };
        ip(&["netns", "add", &link.ns])?;
        ip(&[
            "link",
            "add",
            &link.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &link.ns_if,
        ])?;
        ip(&["link", "set", &link.ns_if, "netns", &link.ns])?;
        ip(&[
            "addr",
            "add",
            &format!("{host_addr}/30"),
            "dev",
            &link.host_if,
        ])?;
        ip(&["link", "set", &link.host_if, "up"])?;
        let ns = link.ns.clone();
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{}/30", link.ns_addr),
            "dev",
            &link.ns_if,
        ])?;
        ip(&["-n", &ns, "link", "set", &link.ns_if, "up"])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        link.set_rate(mbit)?;
        link.start_sshd(sshd)?;
        Ok(link)
    }

    /// Sets both ends to `mbit` Mbit/s, while streams run or not. The
    /// bucket holds 2 ms of the rate, at least 128 KiB (a veth hands tc
    /// segments of up to 64 KiB): a larger bucket lets a short sample
    /// through at more than the rate.
    pub fn set_rate(&self, mbit: u32) -> Result<()> {
        let burst = (u64::from(mbit) * 1_000_000 / 8 / 500).max(128 * 1024);
        let rate = format!("{mbit}mbit");
        let burst = burst.to_string();
        let tbf = [
            "replace", "dev", "", "root", "tbf", "rate", &rate, "burst", &burst, "latency", "50ms",
        ];
        let mut host = tbf;
        host[2] = &self.host_if;
        run("tc", &[&["qdisc"][..], &host].concat())?;
        let mut inner = tbf;
        inner[2] = &self.ns_if;
        run("tc", &[&["-n", &self.ns, "qdisc"][..], &inner].concat())
    }

    /// Removes the shaping from both ends: the veth then carries what the
    /// CPUs (and SSH) can push.
    pub fn unshape(&self) -> Result<()> {
        run("tc", &["qdisc", "del", "dev", &self.host_if, "root"])?;
        run(
            "tc",
            &["-n", &self.ns, "qdisc", "del", "dev", &self.ns_if, "root"],
        )
    }

    fn start_sshd(&mut self, sshd: &LocalSshd) -> Result<()> {
        let original = fs::read_to_string(sshd.dir().join("sshd_config"))
            .map_err(|e| Error::io("reading the sandbox sshd_config", e))?;
        let config: String = original
            .lines()
            .filter(|l| !l.starts_with("ListenAddress") && !l.starts_with("PidFile"))
            .map(|l| format!("{l}\n"))
            .collect();
        let config = format!(
            "ListenAddress {}:{}\nPidFile {}\n{config}",
            self.ns_addr,
            self.port,
            self.pid_file.display()
        );
        fs::write(&self.config, config).map_err(|e| Error::io("writing sshd_config", e))?;
        let config = self.config.to_string_lossy().into_owned();
        let log = fs::File::create(sshd.dir().join(format!("{}.log", self.ns)))
            .map_err(|e| Error::io("creating the sshd log", e))?;
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns,
                "/usr/sbin/sshd",
                "-D",
                "-e",
                "-f",
                &config,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| Error::io("starting sshd in the namespace", e))?;
        self.sshd = Some(child);
        let started = Instant::now();
        let addr = SocketAddrV4::new(self.ns_addr, self.port);
        while started.elapsed() < Duration::from_secs(10) {
            if TcpStream::connect_timeout(&addr.into(), Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(Error::unexpected(format!(
            "sshd in {} did not answer on {addr}",
            self.ns
        )))
    }

    /// The address of the sshd behind the link.
    pub fn host(&self) -> String {
        self.ns_addr.to_string()
    }

    /// The address of the sshd behind the link.
    pub fn ns_addr(&self) -> Ipv4Addr {
        self.ns_addr
    }

    /// Bytes this side has sent into the link so far (the veth's
    /// `tx_bytes`: frames with their Ethernet, IP, TCP and SSH overhead).
    pub fn sent_bytes(&self) -> Result<u64> {
        self.counter("tx_bytes")
    }

    /// Bytes this side has received from the link so far (the veth's
    /// `rx_bytes`, overhead included).
    pub fn received_bytes(&self) -> Result<u64> {
        self.counter("rx_bytes")
    }

    fn counter(&self, name: &str) -> Result<u64> {
        let path = format!("/sys/class/net/{}/statistics/{name}", self.host_if);
        let text =
            fs::read_to_string(&path).map_err(|e| Error::io(format!("reading {path}"), e))?;
        text.trim()
            .parse()
            .map_err(|_| Error::unexpected(format!("{path} holds {text:?}")))
    }
}

/// Every IPv4 address on this machine's interfaces, as `ip -4 -o addr`
/// prints them.
fn used_addresses() -> Result<String> {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            Error::io("running ip", e)
                .with_hint("Install iproute2 (bash .ci/setup does) and run as root")
        })?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Drop for ShapedLink {
    fn drop(&mut self) {
        if let Some(mut child) = self.sshd.take() {
            // Its sessions first: once the namespace is gone their
            // connections never close, and they would wait forever.
            kastell_ssh::sandbox::end_sessions_of(child.id());
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_file(&self.config);
        // Deleting one end of the pair deletes both.
        let _ = ip(&["link", "del", &self.host_if]);
        let _ = ip(&["netns", "del", &self.ns]);
    }
}
