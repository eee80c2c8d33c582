//! How hard zstd works on an artifact: one level, or a range that zstd's
//! own `--adapt` moves in while the stream runs.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::shell::RemoteCommand;

/// The highest level kastell asks of zstd. Above 9 zstd slows several
/// times over for a few percent fewer bytes, and needs more memory on the
/// host than a dump should take.
pub const MAX_ZSTD_LEVEL: u8 = 9;

/// `zstd -N -T0 -q -c` for N in 1..=9 (index N-1): every command is a
/// constant, so no runtime value ever reaches the remote shell.
const FIXED: [&str; MAX_ZSTD_LEVEL as usize] = [
    "zstd -1 -T0 -q -c",
    "zstd -2 -T0 -q -c",
    "zstd -3 -T0 -q -c",
    "zstd -4 -T0 -q -c",
    "zstd -5 -T0 -q -c",
    "zstd -6 -T0 -q -c",
    "zstd -7 -T0 -q -c",
    "zstd -8 -T0 -q -c",
    "zstd -9 -T0 -q -c",
];

/// `zstd --adapt=min=1,max=N` for N in 1..=9 (index N-1), with 1 MiB jobs:
/// zstd changes its level only between jobs, so small ones let it follow
/// the link within a fraction of a second (its default job at level 3 is
/// 8 MiB, several seconds of a slow link).
const ADAPT: [&str; MAX_ZSTD_LEVEL as usize] = [
    "zstd -T0 -B1MiB --adapt=min=1,max=1 -q -c",
    "zstd -T0 -B1MiB --adapt=min=1,max=2 -q -c",
    "zstd -T0 -B1MiB --adapt=min=1,max=3 -q -c",
    "zstd -T0 -B1MiB --adapt=min=1,max=4 -q -c",
    "zstd -T0 -B1MiB --adapt=min=1,max=5 -q -c",
    "zstd -T0 -B1MiB --adapt=min=1,max=6 -q -c",
    "zstd -T0 -B1MiB --adapt=min=1,max=7 -q -c",
    "zstd -T0 -B1MiB --adapt=min=1,max=8 -q -c",
    "zstd -T0 -B1MiB --adapt=min=1,max=9 -q -c",
];

/// The level zstd runs at on the server: fixed, or adapted by zstd itself
/// between level 1 and `max` as its output (the SSH channel) blocks or
/// keeps up. Levels outside 1..=[`MAX_ZSTD_LEVEL`] are clamped into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum WireLevel {
    /// One level for the whole stream (`zstd -N`).
    Fixed {
        /// The level.
        level: u8,
    },
    /// `zstd --adapt=min=1,max=N`: zstd starts at 3 (or `max` when lower),
    /// raises the level while the link is the bottleneck and lowers it
    /// while compression is.
    Adapt {
        /// The highest level zstd may reach.
        max: u8,
    },
}

impl WireLevel {
    /// Level 1, fixed: the fastest (what kastell ran before it adapted).
    pub const FASTEST: WireLevel = WireLevel::Fixed { level: 1 };

    /// `level` fixed, clamped into 1..=[`MAX_ZSTD_LEVEL`].
    pub fn fixed(level: u8) -> Self {
        Self::Fixed {
            level: clamp(level),
        }
    }

    /// Adapting between 1 and `max`, clamped into 1..=[`MAX_ZSTD_LEVEL`].
    pub fn adapt(max: u8) -> Self {
        Self::Adapt { max: clamp(max) }
    }

    /// The highest level the stream may run at.
    pub fn max(self) -> u8 {
        match self {
            Self::Fixed { level } => clamp(level),
            Self::Adapt { max } => clamp(max),
        }
    }

    /// The server command that compresses stdin to stdout at this level on
    /// every core.
    pub fn zstd_command(self) -> RemoteCommand {
        let index = usize::from(self.max() - 1);
        match self {
            Self::Fixed { .. } => RemoteCommand::fixed(FIXED[index]),
            Self::Adapt { .. } => RemoteCommand::fixed(ADAPT[index]),
        }
    }
}

impl Default for WireLevel {
    fn default() -> Self {
        Self::FASTEST
    }
}

impl fmt::Display for WireLevel {
    /// `-3`, or `--adapt=min=1,max=6`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fixed { .. } => write!(f, "-{}", self.max()),
            Self::Adapt { .. } => write!(f, "--adapt=min=1,max={}", self.max()),
        }
    }
}

fn clamp(level: u8) -> u8 {
    level.clamp(1, MAX_ZSTD_LEVEL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_has_its_own_command_and_out_of_range_is_clamped() {
        for level in 1..=MAX_ZSTD_LEVEL {
            let fixed = WireLevel::fixed(level).zstd_command();
            assert_eq!(fixed.as_str(), format!("zstd -{level} -T0 -q -c"));
            let adapt = WireLevel::adapt(level).zstd_command();
            assert!(
                adapt
                    .as_str()
                    .contains(&format!("--adapt=min=1,max={level} ")),
                "{adapt}"
            );
        }
        assert_eq!(WireLevel::fixed(0), WireLevel::FASTEST);
        assert_eq!(WireLevel::adapt(40).max(), MAX_ZSTD_LEVEL);
        assert_eq!(WireLevel::Fixed { level: 200 }.max(), MAX_ZSTD_LEVEL);
        assert_eq!(WireLevel::adapt(6).to_string(), "--adapt=min=1,max=6");
        assert_eq!(WireLevel::fixed(3).to_string(), "-3");
    }

    #[test]
    fn the_commands_run_in_a_real_zstd_and_round_trip() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("row {i} status paid\n").into_bytes())
            .collect();
        for level in [WireLevel::fixed(3), WireLevel::adapt(6)] {
            let packed = sh(level.zstd_command().as_str(), &data);
            assert!(packed.len() < data.len() / 4, "{level}");
            assert!(sh("zstd -d -q -c", &packed) == data, "{level}");
        }
    }

    /// `script`'s stdout when `input` is its stdin; panics when it fails.
    fn sh(script: &str, input: &[u8]) -> Vec<u8> {
        use std::process::{Command, Stdio};
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let feeder = std::thread::spawn(move || {
            std::io::Write::write_all(&mut stdin, &input).unwrap();
        });
        let out = child.wait_with_output().unwrap();
        feeder.join().unwrap();
        assert!(out.status.success(), "{script}");
        out.stdout
    }
}
