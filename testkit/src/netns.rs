//! A shaped link made by the benchmark itself: a network namespace joined
//! to this one by a veth pair with a `tc` token bucket filter (`tbf`) on
//! both ends, and a second sshd (same keys, same sandbox user) listening
//! inside it. Only the two private addresses of the pair are used; the
//! namespace, the pair and the daemon go when the [`ShapedLink`] drops.

use std::fs;
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kastell_core::{Error, Result};
use kastell_ssh::sandbox::LocalSshd;

/// This side of the pair.
const HOST_ADDR: Ipv4Addr = Ipv4Addr::new(10, 213, 77, 1);
/// The namespace's side, where the second sshd listens.
pub(crate) const NS_ADDR: Ipv4Addr = Ipv4Addr::new(10, 213, 77, 2);

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
        .with_hint("The shaped-link benchmark needs root (network namespaces and tc)"))
    }
}

/// The namespace, the veth pair, the shaping and the sshd inside.
pub(crate) struct ShapedLink {
    ns: String,
    host_if: String,
    ns_if: String,
    sshd: Option<Child>,
    config: PathBuf,
    port: u16,
}

impl ShapedLink {
    /// Creates the namespace and the pair, shaped to `mbit` Mbit/s, and
    /// starts a copy of `sshd` inside, listening on [`NS_ADDR`].
    pub(crate) fn create(sshd: &LocalSshd, mbit: u32) -> Result<Self> {
        let id = std::process::id() % 100_000;
        let mut link = Self {
            ns: format!("kastell-bench-{id}"),
            host_if: format!("kbh{id}"),
            ns_if: format!("kbn{id}"),
            sshd: None,
            config: sshd.dir().join("sshd_config_netns"),
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
            &format!("{HOST_ADDR}/30"),
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
            &format!("{NS_ADDR}/30"),
            "dev",
            &link.ns_if,
        ])?;
        ip(&["-n", &ns, "link", "set", &link.ns_if, "up"])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        link.shape(mbit, "add")?;
        link.start_sshd(sshd)?;
        Ok(link)
    }

    /// Sets both ends to `mbit` Mbit/s (`verb`: `add` or `change`). The
    /// bucket holds 2 ms of the rate, at least 128 KiB (a veth hands tc
    /// segments of up to 64 KiB): a larger bucket lets kastell's 2 MiB
    /// link sample through at more than the rate.
    fn shape(&self, mbit: u32, verb: &str) -> Result<()> {
        let burst = (u64::from(mbit) * 1_000_000 / 8 / 500).max(128 * 1024);
        let rate = format!("{mbit}mbit");
        let burst = burst.to_string();
        let tbf = [
            verb, "dev", "", "root", "tbf", "rate", &rate, "burst", &burst, "latency", "50ms",
        ];
        let mut host = tbf;
        host[2] = &self.host_if;
        run("tc", &[&["qdisc"][..], &host].concat())?;
        let mut inner = tbf;
        inner[2] = &self.ns_if;
        run("tc", &[&["-n", &self.ns, "qdisc"][..], &inner].concat())
    }

    /// Reshapes both ends to `mbit` Mbit/s.
    pub(crate) fn set_rate(&self, mbit: u32) -> Result<()> {
        self.shape(mbit, "change")
    }

    fn start_sshd(&mut self, sshd: &LocalSshd) -> Result<()> {
        let original = fs::read_to_string(sshd.dir().join("sshd_config"))
            .map_err(|e| Error::io("reading the sandbox sshd_config", e))?;
        let pid = sshd.dir().join("sshd-netns.pid");
        let config: String = original
            .lines()
            .filter(|l| !l.starts_with("ListenAddress") && !l.starts_with("PidFile"))
            .map(|l| format!("{l}\n"))
            .collect();
        let config = format!(
            "ListenAddress {NS_ADDR}:{}\nPidFile {}\n{config}",
            self.port,
            pid.display()
        );
        fs::write(&self.config, config).map_err(|e| Error::io("writing sshd_config", e))?;
        let config = self.config.to_string_lossy().into_owned();
        let log = fs::File::create(sshd.dir().join("sshd-netns.log"))
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
        let addr = SocketAddrV4::new(NS_ADDR, self.port);
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
    pub(crate) fn host(&self) -> String {
        NS_ADDR.to_string()
    }

    /// Bytes this side has sent into the link so far (the veth's
    /// `tx_bytes`: frames with their Ethernet, IP, TCP and SSH overhead).
    pub(crate) fn sent_bytes(&self) -> Result<u64> {
        let path = format!("/sys/class/net/{}/statistics/tx_bytes", self.host_if);
        let text =
            fs::read_to_string(&path).map_err(|e| Error::io(format!("reading {path}"), e))?;
        text.trim()
            .parse()
            .map_err(|_| Error::unexpected(format!("{path} holds {text:?}")))
    }
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
