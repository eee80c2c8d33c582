//! Read-only diagnostics for `server_logs`: the last lines of the system
//! journal or the platform's container log, and CPU, memory and disk use.

use super::HealthOp;
#[allow(unused_imports)]
use super::Operation as _;
use super::reply::Reply;
use std::sync::Arc;
use std::time::Duration;

use kastell_core::{Error, ErrorKind, RemoteCommand, Transport, TransportExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::context::Context;
use super::operation::{CliCommand, CliTarget, McpAction, NoArgs, Operation, Scope, Spec};
use super::plan;
use super::result::{OpError, OpResult};
use super::suggest::Candidate;
use crate::policy::{Category, Rule};
use crate::state::store::ServerRecord;

/// Lines returned when none are asked for.
pub const DEFAULT_LOG_LINES: u32 = 100;
/// The most lines one call returns.
pub const MAX_LOG_LINES: u32 = 2000;
const TIMEOUT: Duration = Duration::from_secs(30);

/// Which log to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogSource {
    /// The system journal (`journalctl`).
    System,
    /// The platform's container (`docker logs`; Dokploy's Swarm service:
    /// `docker service logs`); not on bare servers.
    Platform,
    /// The Docker daemon's journal (`journalctl -u docker`).
    Docker,
}

impl LogSource {
    /// Its name in replies: `system`, `platform` or `docker`.
    fn name(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::Platform => "platform",
            Self::Docker => "docker",
        }
    }
}

/// How long a followed log may stream before it is cut (a day; Ctrl-C
/// stops it at any time).
pub const FOLLOW_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// The last lines of a log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Logs {
    /// `system`, `platform` or `docker`.
    pub source: String,
    /// The command that ran.
    pub command: String,
    /// The lines, oldest first.
    pub lines: Vec<String>,
}

/// The reply carrying a [`Logs`].
pub type LogsResult = Reply<Logs>;

/// Load averages.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, JsonSchema)]
pub struct LoadAverage {
    /// Over 1 minute.
    pub one: f64,
    /// Over 5 minutes.
    pub five: f64,
    /// Over 15 minutes.
    pub fifteen: f64,
}

/// Memory use in bytes (`free -b`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// Total.
    pub total_bytes: u64,
    /// Used.
    pub used_bytes: u64,
    /// Available.
    pub available_bytes: u64,
}

/// CPU load, memory and root-disk use.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Monitor {
    /// Load averages (`/proc/loadavg`).
    pub load: LoadAverage,
    /// Memory (`free -b`).
    pub memory: Usage,
    /// The root file system (`df -P /`, 1 KiB blocks turned into bytes).
    pub disk: Usage,
}

/// The reply carrying a [`Monitor`].
pub type MonitorResult = Reply<Monitor>;

/// The command for `source`: the system journal, the Docker daemon's, or
/// the log the server's platform says is its own
/// ([`kastell_core::Platform::log_command`]; a platform without one, such
/// as bare, refuses with a hint). With `follow`, the command keeps printing
/// new lines ([`kastell_core::Platform::follow_log_command`]).
fn log_command(
    ctx: &Context,
    server: &ServerRecord,
    transport: Arc<dyn Transport>,
    source: LogSource,
    lines: u32,
    follow: bool,
) -> Result<RemoteCommand, Error> {
    let n = lines.to_string();
    match (source, follow) {
        (LogSource::System, false) => {
            RemoteCommand::template("journalctl -n {} --no-pager 2>&1", &[&n])
        }
        (LogSource::System, true) => {
            RemoteCommand::template("journalctl -n {} -f --no-pager 2>&1", &[&n])
        }
        (LogSource::Docker, false) => {
            RemoteCommand::template("journalctl -u docker -n {} --no-pager 2>&1", &[&n])
        }
        (LogSource::Docker, true) => {
            RemoteCommand::template("journalctl -u docker -n {} -f --no-pager 2>&1", &[&n])
        }
        (LogSource::Platform, false) => ctx.platform_for(server, transport)?.log_command(lines),
        (LogSource::Platform, true) => ctx
            .platform_for(server, transport)?
            .follow_log_command(lines),
    }
}

/// `command` (one simple command) run in the background beside a watchdog
/// reading stdin, which kastell holds open and never writes to: when it
/// ends (Ctrl-C, a broken connection), the command is stopped, so a
/// followed log never outlives the one reading it.
fn stopped_with_stdin(command: &RemoteCommand) -> Result<RemoteCommand, Error> {
    let script = format!(
        "exec 3<&0; {} 3<&- </dev/null & p=$!; \
         {{ while IFS= read -r _ <&3; do :; done; kill -TERM \"$p\"; }} >/dev/null 2>&1 & w=$!; \
         wait \"$p\"; s=$?; kill \"$w\" 2>/dev/null; exit \"$s\"",
        command.as_str()
    );
    RemoteCommand::template("sh -c {}", &[&script])
}

/// Checks `lines` (1 to [`MAX_LOG_LINES`]; default [`DEFAULT_LOG_LINES`]).
fn line_count(lines: Option<u32>) -> Result<u32, Error> {
    let n = lines.unwrap_or(DEFAULT_LOG_LINES);
    if n == 0 || n > MAX_LOG_LINES {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("lines must be 1 to {MAX_LOG_LINES}"),
        )
        .with_hint("Ask for fewer lines, e.g. 100"));
    }
    Ok(n)
}

/// What reading a server's log needs: the server, admitted, the transport
/// to it and the command that prints the log.
struct Reading {
    server: ServerRecord,
    transport: Arc<dyn Transport>,
    command: RemoteCommand,
}

/// Admits the `logs` operation on `query` and makes the command that
/// prints `lines` lines of `source` (and, with `follow`, every new one).
/// Refuses what admission refuses, a line count out of range and a
/// source the server does not have.
fn reading(
    ctx: &Context,
    query: Option<&str>,
    source: LogSource,
    lines: Option<u32>,
    follow: bool,
) -> OpResult<Reading> {
    let server = ctx.admit(LogsOp::ID, query)?.server;
    let fail = |e: Error| OpError::from(e).on(&server);
    let n = line_count(lines).map_err(fail)?;
    let transport = ctx.transport_for(&server);
    let command = log_command(ctx, &server, transport.clone(), source, n, follow).map_err(fail)?;
    Ok(Reading {
        server,
        transport,
        command,
    })
}

/// The last `lines` lines (default 100, at most 2000) of `source`.
pub async fn logs(
    ctx: &Context,
    query: Option<&str>,
    source: LogSource,
    lines: Option<u32>,
) -> OpResult<LogsResult> {
    let Reading {
        server,
        transport,
        command,
    } = reading(ctx, query, source, lines, false)?;
    let server = &server;
    let fail = |e: Error| OpError::from(e).on(server);
    let output = transport
        .exec_checked(&command, TIMEOUT)
        .await
        .map_err(fail)?;

    Ok(Reply::on(
        server,
        Logs {
            source: source.name().to_owned(),
            command: command.as_str().to_owned(),
            lines: String::from_utf8_lossy(&output.stdout)
                .lines()
                .map(str::to_owned)
                .collect(),
        },
        ctx.suggest(
            server,
            vec![Candidate::new(HealthOp::ID, "Check platform health")],
        ),
    ))
}

/// The last `lines` lines of `source` written to `out` as they arrive,
/// then every new line until the remote command ends, [`FOLLOW_TIMEOUT`]
/// passes, or this process goes away (Ctrl-C): the command stops with it
/// ([`stopped_with_stdin`]). The reply carries the command and no lines
/// (they went to `out`).
pub async fn follow_logs(
    ctx: &Context,
    query: Option<&str>,
    source: LogSource,
    lines: Option<u32>,
    out: kastell_core::BoxWrite,
) -> OpResult<LogsResult> {
    let Reading {
        server,
        transport,
        command,
    } = reading(ctx, query, source, lines, true)?;
    let server = &server;
    let fail = |e: Error| OpError::from(e).on(server);
    let streamed = stopped_with_stdin(&command).map_err(fail)?;
    let ended = transport
        .exec_streaming(
            &streamed,
            Some(kastell_core::held_open_stdin()),
            out,
            FOLLOW_TIMEOUT,
        )
        .await
        .map_err(fail)?;
    kastell_core::transport::check_status(&streamed, ended.status, &ended.stderr).map_err(fail)?;
    Ok(Reply::on(
        server,
        Logs {
            source: source.name().to_owned(),
            command: command.as_str().to_owned(),
            lines: Vec::new(),
        },
        Vec::new(),
    ))
}

/// A writer that passes the server's bytes on with every control
/// character but the line break and the tab written as an escape
/// (`\x1b`, `\r`, and the two-byte UTF-8 forms of U+0080–U+009F as
/// `\u{9b}`), so a followed log cannot drive the operator's terminal:
/// move the cursor, retitle the window, write the clipboard.
struct ControlsEscaped<W> {
    inner: W,
    /// A 0xC2 lead byte whose second byte is still to come.
    lead: bool,
}

impl<W: std::io::Write> ControlsEscaped<W> {
    fn new(inner: W) -> Self {
        Self { inner, lead: false }
    }

    fn escape(bytes: &[u8], lead: &mut bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len());
        for &b in bytes {
            if std::mem::take(lead) {
                if (0x80..=0x9f).contains(&b) {
                    out.extend_from_slice(format!("\\u{{{b:x}}}").as_bytes());
                    continue;
                }
                out.push(0xc2);
            }
            match b {
                b'\n' | b'\t' => out.push(b),
                0xc2 => *lead = true,
                0x00..=0x1f | 0x7f => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
                _ => out.push(b),
            }
        }
        out
    }
}

impl<W: std::io::Write> std::io::Write for ControlsEscaped<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let escaped = Self::escape(buf, &mut self.lead);
        self.inner.write_all(&escaped)?;
        Ok(buf.len())
    }

    /// Flushes what was passed on; a 0xC2 lead byte waits for the byte
    /// after it (a stream that ends on one ends on broken UTF-8, which is
    /// dropped).
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

const MONITOR: &str = "cat /proc/loadavg && echo --- && free -b && echo --- && df -P /";

/// Parses the output of [`MONITOR`]; `None` when it is not recognisable.
fn parse_monitor(text: &str) -> Option<(LoadAverage, Usage, Usage)> {
    let mut parts = text.split("---");
    let load: Vec<f64> = parts
        .next()?
        .split_whitespace()
        .take(3)
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    let mem_line = parts.next()?.lines().find(|l| l.starts_with("Mem:"))?;
    let mem: Vec<u64> = mem_line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    let disk_line = parts
        .next()?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .nth(1)?;
    let disk: Vec<u64> = disk_line
        .split_whitespace()
        .skip(1)
        .take(3)
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    Some((
        LoadAverage {
            one: *load.first()?,
            five: *load.get(1)?,
            fifteen: *load.get(2)?,
        },
        Usage {
            total_bytes: *mem.first()?,
            used_bytes: *mem.get(1)?,
            available_bytes: *mem.get(5).or(mem.get(2))?,
        },
        Usage {
            total_bytes: disk.first()? * 1024,
            used_bytes: disk.get(1)? * 1024,
            available_bytes: disk.get(2)? * 1024,
        },
    ))
}

/// CPU load, memory and root-disk use over SSH.
pub async fn monitor(ctx: &Context, query: Option<&str>) -> OpResult<MonitorResult> {
    let admitted = ctx.admit(MonitorOp::ID, query)?;
    let server = &admitted.server;
    let fail = |e: Error| OpError::from(e).on(server);
    let output = ctx
        .transport_for(server)
        .exec_checked(&RemoteCommand::fixed(MONITOR), TIMEOUT)
        .await
        .map_err(fail)?;
    let (load, memory, disk) = parse_monitor(&output.stdout_text()).ok_or_else(|| {
        fail(
            Error::unexpected("could not read /proc/loadavg, free -b or df -P /")
                .with_hint("The server needs procps and coreutils"),
        )
    })?;

    Ok(Reply::on(
        server,
        Monitor { load, memory, disk },
        ctx.suggest(
            server,
            vec![Candidate::new(LogsOp::ID, "Read the system journal")],
        ),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_followed_log_cannot_drive_the_terminal() {
        use std::io::Write as _;
        let mut out = super::ControlsEscaped::new(Vec::new());
        // OSC 52 (write the clipboard), a title change, a carriage return
        // that overwrites the line, 8-bit CSI split across two writes, and
        // text that must pass as it is (a tab, accents, the line breaks).
        out.write_all(b"a\x1b]52;c;ZXZpbA==\x07b\x1b]0;owned\x07\r\tdone \xc3\xa9\xc2")
            .unwrap();
        out.write_all(b"\x9b2J \xc2\xa9\n").unwrap();
        out.flush().unwrap();
        let shown = String::from_utf8(out.inner).unwrap();
        assert!(
            !shown.contains('\u{1b}') && !shown.contains('\u{7}'),
            "{shown:?}"
        );
        assert!(
            !shown.contains('\r') && !shown.contains('\u{9b}'),
            "{shown:?}"
        );
        assert_eq!(
            shown,
            "a\\x1b]52;c;ZXZpbA==\\x07b\\x1b]0;owned\\x07\\x0d\tdone \u{e9}\\u{9b}2J \u{a9}\n"
        );
    }

    use super::*;

    #[test]
    fn parses_monitor_output() {
        let text = "0.10 0.20 0.30 1/100 42\n---\n               total        used        free      shared  buff/cache   available\nMem:      1000  400  100  0  500  600\nSwap: 0 0 0\n---\nFilesystem 1024-blocks Used Available Capacity Mounted on\n/dev/root 100 40 60 40% /\n";
        let (load, mem, disk) = parse_monitor(text).unwrap();
        assert_eq!(load.five, 0.20);
        assert_eq!(mem.available_bytes, 600);
        assert_eq!(disk.total_bytes, 102_400);
        assert!(parse_monitor("garbage").is_none());
    }

    /// The platform `id` of this build over a transport that runs nothing.
    #[cfg(all(feature = "bare", feature = "coolify", feature = "dokploy"))]
    fn platform(id: &str) -> Arc<dyn kastell_core::Platform> {
        let entry = kastell_core::Registry::global().platform(id).unwrap();
        (entry.build)(kastell_core::PlatformContext {
            transport: Arc::new(kastell_core::memory::MemoryTransport::new()),
            target: kastell_core::PlatformTarget {
                name: "web-1".into(),
                ip: "203.0.113.10".into(),
                domain: None,
                backup_paths: Vec::new(),
            },
            root: Default::default(),
            privilege: Default::default(),
            options: Default::default(),
        })
        .unwrap()
    }

    #[test]
    #[cfg(all(feature = "bare", feature = "coolify", feature = "dokploy"))]
    fn each_platform_names_its_own_log_and_bare_has_none() {
        let cmd = platform("coolify").log_command(7).unwrap();
        assert_eq!(cmd.as_str(), "docker logs --tail '7' 'coolify' 2>&1");
        let cmd = platform("dokploy").log_command(7).unwrap();
        assert_eq!(
            cmd.as_str(),
            "docker service logs --tail '7' 'dokploy' 2>&1"
        );
        let err = platform("bare").log_command(7).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert!(err.hint().unwrap().contains("source: system"), "{err}");
    }
}

/// Which log `logs` reads, as an argument.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
#[schemars(inline)]
// Doc comments on the variants would turn the schema's `enum` into a
// `oneOf` of described constants, which some clients render poorly.
#[allow(missing_docs)]
pub enum LogsSource {
    // The system journal.
    #[default]
    System,
    // The platform's container log (not on bare servers).
    Platform,
    // The Docker daemon's journal (journalctl -u docker).
    Docker,
}

/// Arguments of `logs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, clap::Args)]
#[serde(rename_all = "camelCase")]
pub struct LogsArgs {
    /// logs only: `system` (default), `platform` (not on bare servers) or
    /// `docker`.
    #[serde(default)]
    #[arg(
        long,
        value_enum,
        default_value = "system",
        help = "Which log: the system journal, the platform's container log (not on bare servers) or the Docker daemon's journal"
    )]
    pub source: LogsSource,
    /// logs only: how many lines (default 100, at most 2000).
    #[serde(default)]
    #[schemars(range(min = 1, max = 2000))]
    #[arg(
        long,
        value_name = "N",
        help = "How many lines (default 100, at most 2000)"
    )]
    pub lines: Option<u32>,
    /// Command line only: keep printing new lines until Ctrl-C.
    #[serde(skip)]
    #[schemars(skip)]
    #[arg(
        short = 'f',
        long,
        help = "Keep printing new lines until Ctrl-C (journalctl -f, docker logs -f)"
    )]
    pub follow: bool,
}

/// `logs`: the last lines of a log.
pub struct LogsOp;

#[async_trait::async_trait]
impl Operation for LogsOp {
    const SPEC: &'static Spec = &Spec {
        rule: Rule::new("logs", Category::Read),
        scope: Scope::Server,
        mcp: Some(McpAction {
            tool: "server_logs",
            action: "logs",
            doc: "the last lines of the system journal (`journalctl`) or of the platform's container (`docker logs`).",
        }),
        cli: Some(CliCommand {
            path: &["logs"],
            about: "The last lines of the system journal or the platform's container log.",
            target: CliTarget::Read,
        }),
    };
    type Args = LogsArgs;
    type Body = LogsResult;

    async fn run(ctx: &Context, query: Option<&str>, args: &LogsArgs) -> OpResult<Self::Body> {
        let source = match args.source {
            LogsSource::System => LogSource::System,
            LogsSource::Platform => LogSource::Platform,
            LogsSource::Docker => LogSource::Docker,
        };
        if args.follow {
            let out = Box::new(ControlsEscaped::new(std::io::stdout()));
            return follow_logs(ctx, query, source, args.lines, out).await;
        }
        logs(ctx, query, source, args.lines).await
    }

    fn render(body: &LogsResult) -> Vec<String> {
        body.body.lines.iter().map(|l| format!("  | {l}")).collect()
    }

    fn plan(_: &Context, server: &ServerRecord, args: &LogsArgs) -> Vec<String> {
        let what = match args.source {
            LogsSource::System => "the system journal (journalctl)",
            LogsSource::Platform => "the platform's container log (docker logs)",
            LogsSource::Docker => "the Docker daemon's journal (journalctl -u docker)",
        };
        vec![format!(
            "Read the last {} lines of {what} over SSH ({}; read-only)",
            args.lines.unwrap_or(DEFAULT_LOG_LINES),
            plan::ssh_target(server)
        )]
    }
}

/// `monitor`: load, memory and disk use.
pub struct MonitorOp;

#[async_trait::async_trait]
impl Operation for MonitorOp {
    const SPEC: &'static Spec = &Spec {
        rule: Rule::new("monitor", Category::Read),
        scope: Scope::Server,
        mcp: Some(McpAction {
            tool: "server_logs",
            action: "monitor",
            doc: "load averages (/proc/loadavg), memory (free -b) and root-disk use (df -P /).",
        }),
        cli: Some(CliCommand {
            path: &["monitor"],
            about: "Load averages, memory and root-disk use.",
            target: CliTarget::Fleet,
        }),
    };
    type Args = NoArgs;
    type Body = MonitorResult;

    async fn run(ctx: &Context, query: Option<&str>, _: &NoArgs) -> OpResult<Self::Body> {
        monitor(ctx, query).await
    }

    fn render(body: &MonitorResult) -> Vec<String> {
        let m = &body.body;
        let usage = |what: &str, u: &Usage| {
            format!(
                "  {what}: {} used of {} ({} available)",
                super::human_bytes(u.used_bytes),
                super::human_bytes(u.total_bytes),
                super::human_bytes(u.available_bytes)
            )
        };
        vec![
            format!(
                "  load: {:.2} {:.2} {:.2} (1, 5, 15 minutes)",
                m.load.one, m.load.five, m.load.fifteen
            ),
            usage("memory", &m.memory),
            usage("disk /", &m.disk),
        ]
    }

    fn plan(_: &Context, server: &ServerRecord, _: &NoArgs) -> Vec<String> {
        vec![format!(
            "Read /proc/loadavg, free -b and df -P / over SSH ({}; read-only)",
            plan::ssh_target(server)
        )]
    }
}
