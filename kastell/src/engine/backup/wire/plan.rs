//! The decision: where compression runs for one backup, at which level,
//! and why.
//!
//! Link-bound (the host compresses faster than the link carries raw
//! bytes, and faster than kastell's cores could): zstd on the server at
//! the highest level the host's spare cores sustain at the link's rate,
//! as `zstd --adapt` where the host's zstd can, so the level follows the
//! link during the stream. CPU-bound (a fast link): raw bytes on the wire
//! and zstd locally, at the highest level kastell's cores keep up with the
//! link at, so the link and the cores both stay busy.

use std::time::Duration;

use kastell_core::Transport;
use kastell_core::wire::{CompressMode, MAX_ZSTD_LEVEL, WireCodec, WireLevel, WirePlan};

use super::link::{LinkSample, measure_link};
use super::probe::{HostTools, probe_tools, probe_tools_measured};
use crate::engine::human_bytes;

/// What one core compresses per second at level 1, as assumed when
/// comparing with the link: zstd about 250 MB/s (used only when zstd's
/// own benchmark did not run on the host), gzip and pigz about 40 MB/s of
/// dump text (conservative figures; BENCHMARKS.md has this machine's).
const ZSTD_PER_CORE: f64 = 250e6;
const GZIP_PER_CORE: f64 = 40e6;

/// What one of kastell's own cores compresses per second with zstd at
/// level 1 (conservative for dump text on a current x86 or ARM core).
const LOCAL_ZSTD_PER_CORE: f64 = 300e6;

/// zstd's speed at levels 1..=9 as a share of level 1's (its published
/// figures on mixed text: 3 keeps about two thirds of 1's speed, 5 and
/// above fall off steeply).
const LEVEL_SPEED: [f64; MAX_ZSTD_LEVEL as usize] =
    [1.0, 0.8, 0.65, 0.55, 0.3, 0.22, 0.18, 0.15, 0.13];

/// How many times smaller zstd makes a database dump, as assumed when
/// asking what keeps the link busy: the compressor must read this many
/// bytes for each the link carries (dumps of application data compress
/// 3 to 5 times; assuming less keeps the level lower).
const ASSUMED_RATIO: f64 = 3.0;

/// Margin a fixed level keeps over the rate it must sustain: it cannot
/// back off during the stream as `--adapt` does.
const FIXED_MARGIN: f64 = 1.5;

/// Margin kastell's own level keeps over the raw link rate.
const LOCAL_MARGIN: f64 = 1.25;

fn mb(bytes_per_sec: f64) -> String {
    format!("{:.1} MB/s", bytes_per_sec / 1e6)
}

/// The cores kastell itself may use (at least 1).
pub fn local_cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX))
}

/// kastell's zstd workers on `local_cores`: every core but the one that
/// reads SSH, at least 1.
pub fn local_workers(local_cores: u32) -> u32 {
    local_cores.saturating_sub(1).max(1)
}

/// The highest level (1..=9) at which `level_one` bytes per second at
/// level 1 still compress `need` bytes per second; 1 when none does.
fn highest_level(level_one: f64, need: f64) -> u8 {
    (1..=MAX_ZSTD_LEVEL)
        .rev()
        .find(|&level| level_one * LEVEL_SPEED[usize::from(level - 1)] >= need)
        .unwrap_or(1)
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

/// What kastell's own cores compress per second at level 1.
fn local_speed(local_cores: u32) -> f64 {
    LOCAL_ZSTD_PER_CORE * f64::from(local_workers(local_cores))
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

/// The host's zstd level for a link of `rate` bytes per second: the
/// highest its spare cores sustain while the link is full, adapting
/// between 1 and that when the host's zstd can, else that level fixed
/// with a margin.
///
/// The cap matters even with `--adapt`: zstd raises its level whenever
/// its input waits, and a dump starved of CPU by zstd itself makes its
/// input wait, so without a cap it would climb to levels that slow the
/// dump. Below the cap, it lowers the level as soon as compression, not
/// the link, holds the stream back.
fn server_level(tools: &HostTools, rate: f64) -> WireLevel {
    let speed = zstd_speed(tools);
    let need = rate * ASSUMED_RATIO;
    if tools.zstd_adapt {
        match highest_level(speed, need) {
            1 => WireLevel::FASTEST,
            max => WireLevel::adapt(max),
        }
    } else {
        WireLevel::fixed(highest_level(speed, need * FIXED_MARGIN))
    }
}

/// Decides for `mode` from what the host has, kastell's own cores
/// (`local_cores`) and (for `auto`) the link.
///
/// - `local`, `none`: raw on the wire (`local` stores at level 1).
/// - `server`: the best compressor the host has (zstd, else pigz, else
///   gzip) at level 1, else raw with a warning.
/// - `auto`: on the server when the host's compressor (on its spare
///   cores) beats both the measured link and kastell's own zstd, with zstd
///   at the highest level it sustains at the link's rate (`--adapt` up to
///   it where the host's zstd can); else raw on the wire, stored at the
///   highest level kastell's cores keep up with the link at. Raw also when
///   the host has no compressor. Without a link sample, as `server`.
pub fn choose(
    mode: CompressMode,
    tools: &HostTools,
    link: Option<LinkSample>,
    local_cores: u32,
) -> WirePlan {
    let mut plan = decide(mode, tools, link, local_cores);
    plan.link_bytes_per_sec = link.map(|sample| sample.bytes_per_sec());
    plan
}

/// [`choose`], before the link's rate is written into the plan.
fn decide(
    mode: CompressMode,
    tools: &HostTools,
    link: Option<LinkSample>,
    local_cores: u32,
) -> WirePlan {
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
    let (CompressMode::Auto, Some(sample)) = (mode, link) else {
        return WirePlan {
            codec: best,
            reason: format!("--compress {mode}: {best} on the host"),
            warning: no_zstd,
            ..WirePlan::default()
        };
    };
    let rate = sample.bytes_per_sec();
    let local = local_speed(local_cores);
    let Some(&(codec, speed)) = found.iter().find(|(_, speed)| *speed > rate.min(local)) else {
        let level = highest_level(local, rate * LOCAL_MARGIN);
        return WirePlan {
            local_level: level,
            warning: no_zstd,
            ..WirePlan::raw(format!(
                "the link measured {}, faster than {best} on the host: compressed locally \
                 (zstd -{level} on {} core(s), which keeps up with the link)",
                mb(rate),
                local_workers(local_cores)
            ))
        };
    };
    let speed_note = format!(
        "{codec} on {} core(s) (about {}{})",
        tools.cores,
        mb(speed),
        if codec == WireCodec::Zstd && tools.zstd_bytes_per_sec.is_some() {
            " at level 1, measured on the host"
        } else {
            ", assumed"
        }
    );
    let mut plan = WirePlan {
        codec,
        warning: no_zstd,
        ..WirePlan::default()
    };
    plan.reason = if codec == WireCodec::Zstd {
        plan.level = server_level(tools, rate);
        let adapting = match plan.level {
            WireLevel::Adapt { max } => {
                format!("; zstd moves between levels 1 and {max} as the link changes")
            }
            WireLevel::Fixed { .. } if !tools.zstd_adapt && plan.level.max() > 1 => {
                "; the host's zstd cannot --adapt, so the level is fixed".to_owned()
            }
            WireLevel::Fixed { .. } => String::new(),
        };
        format!(
            "the link measured {}, slower than {speed_note}: {} on the server, the highest \
             level its spare cores sustain at the link's rate{adapting}",
            mb(rate),
            plan.server_side()
        )
    } else {
        // gzip's stream is re-encoded locally, at what kastell sustains.
        plan.local_level = highest_level(local, rate * ASSUMED_RATIO * LOCAL_MARGIN);
        format!("the link measured {}, slower than {speed_note}", mb(rate))
    };
    plan
}

/// Below this many bytes, the server's last backup was too small for the
/// link's speed to matter: 32 MiB cross even a 10 Mbit/s link in under
/// half a minute however they are compressed, while measuring the link
/// (2 MiB of random bytes, 32 MiB more on a fast link) and zstd's speed
/// on the host costs up to a second and a half of every backup.
pub const SMALL_BACKUP_BYTES: u64 = 32 * 1024 * 1024;

/// Plans one backup in `mode` over `transport`: nothing runs for `local`
/// and `none`; `server` probes the host's tools (one quick command);
/// `auto` also measures zstd's speed on the host and the link when the
/// host has a compressor, unless the server's last backup (`last_bytes`,
/// uncompressed; `None` when there is none) held less than
/// [`SMALL_BACKUP_BYTES`]: then it plans as `server` does and says why. A
/// probe that fails (a restricted shell) plans raw bytes with a warning
/// instead of failing the backup; a failed link measurement plans as
/// `server` would.
pub async fn plan(
    transport: &dyn Transport,
    mode: CompressMode,
    last_bytes: Option<u64>,
) -> WirePlan {
    let cores = local_cores();
    if matches!(mode, CompressMode::Local | CompressMode::None) {
        return choose(mode, &HostTools::default(), None, cores);
    }
    let small = last_bytes.filter(|&bytes| bytes < SMALL_BACKUP_BYTES);
    let measure = mode == CompressMode::Auto && small.is_none();
    let probed = if measure {
        probe_tools_measured(transport).await
    } else {
        probe_tools(transport).await
    };
    let tools = match probed {
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
    if let (CompressMode::Auto, Some(bytes)) = (mode, small) {
        let mut plan = choose(CompressMode::Server, &tools, None, cores);
        if plan.codec != WireCodec::Raw {
            plan.reason = format!(
                "the server's last backup held {}, too little for the link's speed to matter: \
                 {} on the host without measuring the link (a server whose backups pass {} \
                 measures it first)",
                human_bytes(bytes),
                plan.codec,
                human_bytes(SMALL_BACKUP_BYTES)
            );
        }
        return plan;
    }
    let link = if measure && !candidates(&tools).is_empty() {
        let round_trip = Duration::from_micros(tools.round_trip_micros);
        measure_link(transport, round_trip).await.ok()
    } else {
        None
    };
    choose(mode, &tools, link, cores)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tools(zstd: bool, pigz: bool, gzip: bool, cores: u32) -> HostTools {
        HostTools {
            zstd,
            pigz,
            gzip,
            zstd_adapt: zstd,
            cores,
            zstd_bytes_per_sec: None,
            round_trip_micros: 0,
        }
    }

    /// A host with zstd whose benchmark measured `mb` MB/s on `cores`.
    fn measured(cores: u32, mb: u64, adapt: bool) -> HostTools {
        HostTools {
            zstd_bytes_per_sec: Some(mb * 1_000_000),
            zstd_adapt: adapt,
            ..tools(true, false, true, cores)
        }
    }

    fn link(mb_per_sec: f64) -> Option<LinkSample> {
        Some(LinkSample {
            bytes: (mb_per_sec * 1e6) as u64,
            seconds: 1.0,
            sampled: 2 * 1024 * 1024,
        })
    }

    #[test]
    fn local_and_none_never_compress_on_the_server() {
        for mode in [CompressMode::Local, CompressMode::None] {
            let plan = choose(mode, &tools(true, true, true, 8), link(1.0), 8);
            assert_eq!(plan.codec, WireCodec::Raw);
            assert_eq!(plan.local_level, 1);
            assert!(plan.warning.is_none());
        }
    }

    #[test]
    fn server_takes_the_best_the_host_has_and_warns_without_zstd() {
        let all = tools(true, true, true, 2);
        let plan = choose(CompressMode::Server, &all, None, 2);
        assert_eq!(plan.codec, WireCodec::Zstd);
        assert_eq!(plan.level, WireLevel::FASTEST);
        let plan = choose(CompressMode::Server, &tools(false, true, true, 2), None, 2);
        assert_eq!(plan.codec, WireCodec::Pigz);
        assert!(plan.warning.unwrap().contains("zstd is not on the host"));
        let plan = choose(CompressMode::Server, &tools(false, false, true, 2), None, 2);
        assert_eq!(plan.codec, WireCodec::Gzip);
        let plan = choose(
            CompressMode::Server,
            &tools(false, false, false, 2),
            None,
            2,
        );
        assert_eq!(plan.codec, WireCodec::Raw);
        assert!(plan.reason.contains("no zstd, pigz or gzip"));
        assert!(plan.warning.is_some());
        // Auto without a link sample plans as server.
        let plan = choose(CompressMode::Auto, &all, None, 2);
        assert_eq!(
            (plan.codec, plan.level),
            (WireCodec::Zstd, WireLevel::FASTEST)
        );
    }

    /// Hosts and links to the plan: (what, host, link MB/s, kastell's
    /// cores) to (codec, server level, local level).
    #[test]
    fn auto_decides_codec_level_and_side_from_both_ends_cores_and_the_link() {
        use WireCodec::{Gzip, Raw, Zstd};
        let fixed = WireLevel::fixed;
        let adapt = WireLevel::adapt;
        // 300 MB/s measured on 2 cores: about 150 MB/s beside pg_dump.
        let small = measured(2, 300, true);
        let cases = [
            // 100 Mbit/s: the host reads 37.5 MB/s to fill it at 3x, which
            // level 5 sustains (45 MB/s) and 6 does not (33 MB/s).
            ("2 cores, 100 Mbit/s", small, 12.5, 8, Zstd, adapt(5), 1),
            (
                "no --adapt: fixed, with a margin",
                measured(2, 300, false),
                12.5,
                8,
                Zstd,
                fixed(4),
                1,
            ),
            // A big host on a slow link may go to the cap.
            (
                "8 cores, 100 Mbit/s",
                measured(8, 2000, true),
                12.5,
                8,
                Zstd,
                adapt(9),
                1,
            ),
            // One busy core only keeps level 1 going.
            (
                "1 core, 100 Mbit/s",
                measured(1, 80, true),
                12.5,
                2,
                Zstd,
                fixed(1),
                1,
            ),
            // 1 Gbit/s: 150 MB/s at level 1 still beats the link (and
            // kastell's one spare core is busier), but no higher level does.
            ("2 cores, 1 Gbit/s", small, 110.0, 2, Zstd, fixed(1), 1),
            // Links faster than the host's zstd: raw, kastell's cores at
            // the highest level that keeps up with the link.
            (
                "2 cores, 200 MB/s, 4 local",
                small,
                200.0,
                4,
                Raw,
                fixed(1),
                5,
            ),
            (
                "2 cores, 10 Gbit/s, 16 local",
                small,
                1000.0,
                16,
                Raw,
                fixed(1),
                5,
            ),
            (
                "2 cores, 10 Gbit/s, 2 local",
                small,
                1000.0,
                2,
                Raw,
                fixed(1),
                1,
            ),
            (
                "1 core, 60 MB/s",
                measured(1, 80, true),
                60.0,
                2,
                Raw,
                fixed(1),
                5,
            ),
            // gzip only: on a slow link, re-encoded at what kastell sustains.
            (
                "gzip, 80 Mbit/s",
                tools(false, false, true, 2),
                10.0,
                2,
                Gzip,
                fixed(1),
                9,
            ),
            (
                "gzip, 1 Gbit/s",
                tools(false, false, true, 2),
                110.0,
                2,
                Raw,
                fixed(1),
                4,
            ),
        ];
        for (what, host, mb, local, codec, level, local_level) in cases {
            let plan = choose(CompressMode::Auto, &host, link(mb), local);
            assert_eq!(
                (plan.codec, plan.level, plan.local_level),
                (codec, level, local_level),
                "{what}: {}",
                plan.reason
            );
            assert_eq!(plan.link_bytes_per_sec, Some(mb * 1e6), "{what}");
            assert_eq!(plan.warning.is_some(), !host.zstd, "{what}");
        }
    }

    #[test]
    fn the_reason_says_what_runs_where_and_why() {
        let slow = choose(CompressMode::Auto, &measured(2, 300, true), link(12.5), 8);
        for part in [
            "12.5 MB/s",
            "about 150.0 MB/s at level 1, measured on the host",
            "zstd --adapt=min=1,max=5 on the server",
            "between levels 1 and 5",
        ] {
            assert!(slow.reason.contains(part), "{part}: {}", slow.reason);
        }
        let fixed = choose(CompressMode::Auto, &measured(2, 300, false), link(12.5), 8);
        assert!(
            fixed.reason.contains("zstd -4 on the server"),
            "{}",
            fixed.reason
        );
        assert!(fixed.reason.contains("cannot --adapt"), "{}", fixed.reason);
        let fast = choose(CompressMode::Auto, &measured(2, 300, true), link(200.0), 4);
        assert!(
            fast.reason.contains("faster than zstd on the host")
                && fast.reason.contains("zstd -5 on 3 core(s)"),
            "{}",
            fast.reason
        );
        // Unmeasured, the assumption says so.
        let assumed = choose(
            CompressMode::Auto,
            &tools(true, false, false, 2),
            link(12.0),
            2,
        );
        assert!(assumed.reason.contains("assumed"), "{}", assumed.reason);
        // Without zstd, the warning says to install it.
        let lan = choose(
            CompressMode::Auto,
            &tools(false, false, true, 2),
            link(110.0),
            2,
        );
        assert!(lan.warning.unwrap().contains("zstd is not on the host"));
    }
}
