//! What a host can compress with, whether its zstd can adapt its level,
//! how fast it is and how many cores it has: one cheap command.

use std::time::{Duration, Instant};

use serde::Serialize;

use kastell_core::{RemoteCommand, Result, Transport, TransportExt};

/// The probe's script (a macro so [`PROBE_MEASURED`] can extend it): the
/// name of each compressor that runs (`-V` exits 0), then, with zstd,
/// `zstd-adapt` when it compresses with the very flags an adaptive backup
/// uses (`--adapt` needs zstd 1.3.6 or later built with threads), then
/// the number of cores. A compressor that is installed but broken counts
/// as missing. A few milliseconds.
macro_rules! tools_script {
    () => {
        "for t in zstd pigz gzip; do \"$t\" -V >/dev/null 2>&1 && echo \"$t\"; done; \
         if zstd -V >/dev/null 2>&1; then \
         echo kastell | zstd -T0 -B1MiB --adapt=min=1,max=2 -q -c >/dev/null 2>&1 \
         && echo zstd-adapt; fi; \
         nproc 2>/dev/null || echo 1"
    };
}

/// What [`probe_tools`] runs.
const PROBE: &str = tools_script!();

/// What [`probe_tools_measured`] runs: with zstd, first `zstd-speed <MB/s>`
/// from zstd's own benchmark (level 1 on every core, one pass over 10 MB of
/// its synthetic data: about a tenth of a second on an idle host, more on a
/// busy one), then [`PROBE`]'s lines.
const PROBE_MEASURED: &str = concat!(
    "if zstd -V >/dev/null 2>&1; then zstd -q -b1 -e1 -i0 -T0 2>&1 \
     | sed -n 's/^-1 .*) *\\([0-9.]*\\) MB\\/s.*/zstd-speed \\1/p'; fi; ",
    tools_script!()
);

/// How long the probe (and each link sample) may take.
pub(super) const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// What one probe found on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostTools {
    /// `zstd` runs.
    pub zstd: bool,
    /// `pigz` runs.
    pub pigz: bool,
    /// `gzip` runs.
    pub gzip: bool,
    /// zstd compresses with `--adapt=min=..,max=..` (and 1 MiB jobs).
    pub zstd_adapt: bool,
    /// Cores (`nproc`), at least 1.
    pub cores: u32,
    /// What zstd's benchmark measured on the host at level 1 on every
    /// core, in bytes per second; `None` when it did not run or say.
    pub zstd_bytes_per_sec: Option<u64>,
    /// How long the probe's round trip took, in microseconds (the cost of
    /// one command on this connection, subtracted from the link sample).
    #[serde(skip)]
    pub round_trip_micros: u64,
}

impl HostTools {
    /// Parses the probe's output.
    pub fn parse(output: &str) -> Self {
        let lines: Vec<&str> = output.lines().map(str::trim).collect();
        Self {
            zstd: lines.contains(&"zstd"),
            pigz: lines.contains(&"pigz"),
            gzip: lines.contains(&"gzip"),
            zstd_adapt: lines.contains(&"zstd-adapt"),
            cores: lines
                .iter()
                .rev()
                .find_map(|l| l.parse::<u32>().ok())
                .unwrap_or(1)
                .max(1),
            zstd_bytes_per_sec: lines
                .iter()
                .find_map(|l| l.strip_prefix("zstd-speed "))
                .and_then(|mb| mb.trim().parse::<f64>().ok())
                .filter(|mb| mb.is_finite() && *mb > 0.0)
                .map(|mb| (mb * 1e6) as u64),
            round_trip_micros: 0,
        }
    }

    /// The compressors found, by name (`zstd, gzip`), or `none`.
    pub fn summary(&self) -> String {
        let found: Vec<&str> = [
            (self.zstd, "zstd"),
            (self.pigz, "pigz"),
            (self.gzip, "gzip"),
        ]
        .into_iter()
        .filter_map(|(present, name)| present.then_some(name))
        .collect();
        if found.is_empty() {
            "none".to_owned()
        } else {
            found.join(", ")
        }
    }
}

/// Runs the probe: one command, a few milliseconds plus a round trip.
/// `zstd_bytes_per_sec` stays `None`: see [`probe_tools_measured`].
pub async fn probe_tools(transport: &dyn Transport) -> Result<HostTools> {
    run_probe(transport, PROBE).await
}

/// [`probe_tools`] with zstd's own benchmark on the host (about a tenth of
/// a second more), for when where to compress depends on how fast the
/// host compresses.
pub async fn probe_tools_measured(transport: &dyn Transport) -> Result<HostTools> {
    run_probe(transport, PROBE_MEASURED).await
}

async fn run_probe(transport: &dyn Transport, probe: &'static str) -> Result<HostTools> {
    let started = Instant::now();
    let out = transport
        .exec_checked(&RemoteCommand::fixed(probe), PROBE_TIMEOUT)
        .await
        .map_err(|e| e.or_hint("kastell could not check which compressors the host has"))?;
    let mut tools = HostTools::parse(&out.stdout_text());
    tools.round_trip_micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    Ok(tools)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_probe_prints() {
        let all = HostTools::parse("zstd\npigz\ngzip\nzstd-speed 364.78\nzstd-adapt\n8\n");
        assert!(all.zstd && all.pigz && all.gzip && all.zstd_adapt);
        assert_eq!(all.cores, 8);
        assert_eq!(all.zstd_bytes_per_sec, Some(364_780_000));
        assert_eq!(
            HostTools::parse("zstd\nzstd-speed nan\n2").zstd_bytes_per_sec,
            None
        );
        assert_eq!(HostTools::parse("zstd\n2").zstd_bytes_per_sec, None);
        assert_eq!(all.summary(), "zstd, pigz, gzip");
        let bare = HostTools::parse("gzip\n1");
        assert!(!bare.zstd && !bare.pigz && bare.gzip && !bare.zstd_adapt);
        assert_eq!(bare.summary(), "gzip");
        let nothing = HostTools::parse("");
        assert_eq!(nothing.cores, 1);
        assert_eq!(nothing.summary(), "none");
    }

    #[test]
    fn the_probe_runs_in_a_real_shell() {
        let run = |script: &str| {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(script)
                .output()
                .unwrap();
            assert!(out.status.success());
            HostTools::parse(&String::from_utf8_lossy(&out.stdout))
        };
        let tools = run(PROBE_MEASURED);
        let has = |name: &str| {
            std::process::Command::new(name)
                .arg("-V")
                .output()
                .is_ok_and(|o| o.status.success())
        };
        assert_eq!(tools.zstd, has("zstd"));
        assert_eq!(tools.gzip, has("gzip"));
        // zstd's benchmark ran and said how fast it is here, and this
        // machine's zstd (1.5 from .ci/setup) adapts.
        assert_eq!(tools.zstd_bytes_per_sec.is_some(), tools.zstd, "{tools:?}");
        assert_eq!(tools.zstd_adapt, tools.zstd, "{tools:?}");
        assert!(tools.cores >= 1);
        // The quick probe finds the same, without the benchmark.
        let quick = run(PROBE);
        assert_eq!(
            quick,
            HostTools {
                zstd_bytes_per_sec: None,
                ..tools
            }
        );
    }
}
