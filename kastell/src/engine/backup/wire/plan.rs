//! The decision: which codec runs on the server for one backup, and why.

use std::time::Duration;

use kastell_core::Transport;
use kastell_core::wire::{CompressMode, WireCodec, WirePlan};

use super::probe::{HostTools, LinkSample, measure_link, probe_tools};

/// What one core compresses per second at level 1, as assumed when
/// comparing with the link: zstd about 250 MB/s (used only when zstd's
/// own benchmark did not run on the host), gzip and pigz about 40 MB/s of
/// dump text (conservative figures; BENCHMARKS.md has this machine's). The choice is "compress on the server when the host would
/// compress faster than the link carries raw bytes".
const ZSTD_PER_CORE: f64 = 250e6;
const GZIP_PER_CORE: f64 = 40e6;

fn mb(bytes_per_sec: f64) -> String {
    format!("{:.1} MB/s", bytes_per_sec / 1e6)
}

/// zstd's speed on the host while a dump runs: what its benchmark measured
/// on every core, less the core `pg_dump` (or `tar`) keeps busy meanwhile
/// (half of it on a one-core host); the assumed per-core figure when the
/// benchmark did not run.
fn zstd_speed(tools: &HostTools) -> f64 {
    let cores = f64::from(tools.cores.max(1));
    match tools.zstd_bytes_per_sec {
        Some(measured) => measured as f64 * (cores - 1.0).max(0.5) / cores,
        None => ZSTD_PER_CORE * cores,
    }
}

/// The compressors `tools` has, best first, with their estimated speed.
fn candidates(tools: &HostTools) -> Vec<(WireCodec, f64)> {
    let cores = f64::from(tools.cores.max(1));
    let mut found = Vec::new();
    if tools.zstd {
        found.push((WireCodec::Zstd, zstd_speed(tools)));
    }
    if tools.pigz {
        found.push((WireCodec::Pigz, GZIP_PER_CORE * cores));
    }
    if tools.gzip {
        found.push((WireCodec::Gzip, GZIP_PER_CORE));
    }
    found
}

/// Decides for `mode` from what the host has and (for `auto`) the link.
///
/// - `local`, `none`: raw on the wire.
/// - `server`: the best compressor the host has (zstd, else pigz, else
///   gzip), else raw with a warning.
/// - `auto`: the best compressor whose estimated speed on the host's cores
///   beats the measured link; raw when none does (a fast LAN, loopback) or
///   the host has none. Without a link sample, as `server`.
pub fn choose(mode: CompressMode, tools: &HostTools, link: Option<LinkSample>) -> WirePlan {
    let mut plan = decide(mode, tools, link);
    plan.link_bytes_per_sec = link.map(|sample| sample.bytes_per_sec());
    plan
}

/// [`choose`], before the link's rate is written into the plan.
fn decide(mode: CompressMode, tools: &HostTools, link: Option<LinkSample>) -> WirePlan {
    if matches!(mode, CompressMode::Local | CompressMode::None) {
        return WirePlan::raw(format!("--compress {mode}: nothing runs on the server"));
    }
    let found = candidates(tools);
    let no_zstd = (!tools.zstd).then(|| {
        format!(
            "zstd is not on the host (found: {}); install zstd there for smaller, faster backups",
            tools.summary()
        )
    });
    let Some(&(best, _)) = found.first() else {
        let mut plan = WirePlan::raw("the host has no zstd, pigz or gzip: sent uncompressed");
        plan.warning = no_zstd;
        return plan;
    };
    let pick = match (mode, link) {
        (CompressMode::Auto, Some(sample)) => {
            let rate = sample.bytes_per_sec();
            match found.iter().find(|(_, speed)| *speed > rate) {
                Some(&(codec, speed)) => (
                    codec,
                    format!(
                        "the link measured {}, slower than {codec} on {} core(s) (about {}{})",
                        mb(rate),
                        tools.cores,
                        mb(speed),
                        if codec == WireCodec::Zstd && tools.zstd_bytes_per_sec.is_some() {
                            ", measured on the host"
                        } else {
                            ", assumed"
                        }
                    ),
                ),
                None => {
                    let mut plan = WirePlan::raw(format!(
                        "the link measured {}, faster than {best} on the host: compressed locally",
                        mb(rate)
                    ));
                    plan.warning = no_zstd;
                    return plan;
                }
            }
        }
        _ => (best, format!("--compress {mode}: {best} on the host")),
    };
    WirePlan {
        codec: pick.0,
        reason: pick.1,
        warning: no_zstd,
        link_bytes_per_sec: None,
    }
}

/// Plans one backup in `mode` over `transport`: nothing runs for `local`
/// and `none`; `server` probes the host's tools (one command); `auto` also
/// samples the link when the host has a compressor. A probe that fails
/// (a restricted shell) plans raw bytes with a warning instead of failing
/// the backup; a failed link sample plans as `server` would.
pub async fn plan(transport: &dyn Transport, mode: CompressMode) -> WirePlan {
    if matches!(mode, CompressMode::Local | CompressMode::None) {
        return choose(mode, &HostTools::default(), None);
    }
    let tools = match probe_tools(transport).await {
        Ok(tools) => tools,
        Err(e) => {
            let mut plan = WirePlan::raw(format!(
                "the host's compressors could not be probed ({}): sent uncompressed",
                e.message()
            ));
            plan.warning = Some(format!(
                "kastell could not check the host for zstd, so the backup went uncompressed over SSH: {}",
                e.message()
            ));
            return plan;
        }
    };
    let link = if mode == CompressMode::Auto && !candidates(&tools).is_empty() {
        let round_trip = Duration::from_micros(tools.round_trip_micros);
        measure_link(transport, round_trip).await.ok()
    } else {
        None
    };
    choose(mode, &tools, link)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tools(zstd: bool, pigz: bool, gzip: bool, cores: u32) -> HostTools {
        HostTools {
            zstd,
            pigz,
            gzip,
            cores,
            zstd_bytes_per_sec: None,
            round_trip_micros: 0,
        }
    }

    fn link(mb_per_sec: f64) -> Option<LinkSample> {
        Some(LinkSample {
            bytes: (mb_per_sec * 1e6) as u64,
            seconds: 1.0,
        })
    }

    #[test]
    fn local_and_none_never_compress_on_the_server() {
        for mode in [CompressMode::Local, CompressMode::None] {
            let plan = choose(mode, &tools(true, true, true, 8), link(1.0));
            assert_eq!(plan.codec, WireCodec::Raw);
            assert!(plan.warning.is_none());
        }
    }

    #[test]
    fn server_takes_the_best_the_host_has_and_warns_without_zstd() {
        let all = tools(true, true, true, 2);
        assert_eq!(
            choose(CompressMode::Server, &all, None).codec,
            WireCodec::Zstd
        );
        let plan = choose(CompressMode::Server, &tools(false, true, true, 2), None);
        assert_eq!(plan.codec, WireCodec::Pigz);
        assert!(plan.warning.unwrap().contains("zstd is not on the host"));
        let plan = choose(CompressMode::Server, &tools(false, false, true, 2), None);
        assert_eq!(plan.codec, WireCodec::Gzip);
        let plan = choose(CompressMode::Server, &tools(false, false, false, 2), None);
        assert_eq!(plan.codec, WireCodec::Raw);
        assert!(plan.reason.contains("no zstd, pigz or gzip"));
        assert!(plan.warning.is_some());
    }

    #[test]
    fn auto_compresses_on_the_server_only_when_the_link_is_slower() {
        let host = tools(true, false, true, 2);
        let slow = choose(CompressMode::Auto, &host, link(12.0));
        assert_eq!(slow.codec, WireCodec::Zstd);
        assert!(slow.reason.contains("12.0 MB/s"), "{}", slow.reason);
        let fast = choose(CompressMode::Auto, &host, link(900.0));
        assert_eq!(fast.codec, WireCodec::Raw);
        assert!(fast.reason.contains("faster than zstd"), "{}", fast.reason);
        // Without zstd, gzip only pays on a slow link.
        let gzip_only = tools(false, false, true, 2);
        assert_eq!(
            choose(CompressMode::Auto, &gzip_only, link(12.0)).codec,
            WireCodec::Gzip
        );
        let lan = choose(CompressMode::Auto, &gzip_only, link(110.0));
        assert_eq!(lan.codec, WireCodec::Raw);
        assert!(lan.warning.unwrap().contains("zstd is not on the host"));
    }

    #[test]
    fn auto_weighs_the_link_against_the_speed_zstd_measured_on_the_host() {
        // 300 MB/s measured on 2 cores: about 150 MB/s beside pg_dump.
        let measured = HostTools {
            zstd_bytes_per_sec: Some(300_000_000),
            ..tools(true, false, true, 2)
        };
        let gbit = choose(CompressMode::Auto, &measured, link(110.0));
        assert_eq!(gbit.codec, WireCodec::Zstd);
        assert!(
            gbit.reason
                .contains("about 150.0 MB/s, measured on the host"),
            "{}",
            gbit.reason
        );
        let faster = choose(CompressMode::Auto, &measured, link(200.0));
        assert_eq!(faster.codec, WireCodec::Raw, "{}", faster.reason);
        // A slow host: 80 MB/s on one core is 40 MB/s beside pg_dump, so a
        // LAN at 60 MB/s is better served raw.
        let slow_host = HostTools {
            zstd_bytes_per_sec: Some(80_000_000),
            ..tools(true, false, false, 1)
        };
        assert_eq!(
            choose(CompressMode::Auto, &slow_host, link(60.0)).codec,
            WireCodec::Raw
        );
        assert_eq!(
            choose(CompressMode::Auto, &slow_host, link(12.0)).codec,
            WireCodec::Zstd
        );
        // Unmeasured, the assumption says so.
        let assumed = choose(
            CompressMode::Auto,
            &tools(true, false, false, 2),
            link(12.0),
        );
        assert!(assumed.reason.contains("assumed"), "{}", assumed.reason);
    }
}
