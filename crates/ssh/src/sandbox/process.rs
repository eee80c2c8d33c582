//! What the sandbox asks the process table: a process's children, whether
//! it still runs, when it started, `SIGSTOP` and `SIGKILL`.
//!
//! Linux only: the state and start time come from `/proc/<pid>/stat`, the
//! children from `pgrep -P`.

use std::process::Stdio;

use kastell_core::env::scrubbed_command;

/// The ids of the child processes of `pid` (none when it has none or
/// `pgrep` cannot run).
pub(super) fn children_of(pid: u32) -> Vec<u32> {
    scrubbed_command("pgrep")
        .args(["-P", &pid.to_string()])
        .stdin(Stdio::null())
        .output()
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|line| line.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Sends `SIGKILL` to process `pid`; whether it was delivered.
pub(super) fn kill(pid: u32) -> bool {
    send(pid, rustix::process::Signal::KILL)
}

/// Sends `SIGSTOP` to process `pid`, so it forks no child until it is
/// killed (a stopped process runs nothing, and `SIGKILL` still ends it);
/// whether it was delivered.
pub(super) fn freeze(pid: u32) -> bool {
    send(pid, rustix::process::Signal::STOP)
}

fn send(pid: u32, signal: rustix::process::Signal) -> bool {
    i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .is_some_and(|pid| rustix::process::kill_process(pid, signal).is_ok())
}

/// The fields of `/proc/<pid>/stat` after the command name (the state
/// first), or `None` when there is no such process.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself contain ") ".
    let (_, rest) = stat.rsplit_once(") ")?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// Whether process `pid` has ended: gone from the process table, or a
/// zombie its parent has not reaped yet.
pub(super) fn has_ended(pid: u32) -> bool {
    stat_fields(pid)
        .and_then(|fields| fields.first().cloned())
        .is_none_or(|state| state == "Z" || state == "X")
}

/// When process `pid` started, in clock ticks since boot (field 22 of
/// `/proc/<pid>/stat`): with the pid it names one process for the life of
/// the machine, since pids are reused. `None` when there is no such
/// process or `/proc` cannot be read.
pub(super) fn start_time(pid: u32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// The command line of process `pid`, its arguments joined by spaces
/// (empty when it cannot be read).
pub(super) fn command_line(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', " "))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn this_process_runs_and_a_reaped_child_has_ended() {
        let me = std::process::id();
        assert!(!has_ended(me));
        assert!(start_time(me).is_some());
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(has_ended(pid));
        assert_eq!(start_time(pid), None);
    }

    #[test]
    fn an_unreaped_child_that_exited_has_ended() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !has_ended(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // Still a zombie: not reaped until wait.
        assert!(has_ended(pid));
        assert!(start_time(pid).is_some());
        child.wait().unwrap();
    }
}
