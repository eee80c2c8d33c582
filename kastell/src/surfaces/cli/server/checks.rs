//! `kastell server checks show|set|clear`: what a maintenance checks after
//! an update besides the platform's own health, and the rollback policy
//! when that fails (`checks.json`, [`crate::state::checks`]).

use clap::{ArgGroup, Args, Subcommand};
use kastell_core::{Error, Result};

use crate::state::checks::{CheckEntry, ChecksFile, HttpCheck, RollbackPolicy, Scope};
use crate::state::platform_health::PlatformHealth;
use crate::state::store::ServerRecord;
use crate::surfaces::cli::Context;

/// The `server checks` subcommands.
#[derive(Debug, Subcommand)]
pub enum ChecksCommand {
    /// Show what each server (or the one named) must pass after an update
    /// and its rollback policy, validating checks.json.
    Show {
        /// The server (name); every server when left out.
        server: Option<String>,
    },
    /// Set checks or the rollback policy of a server, a tag or the fleet
    /// (what is given replaces that part of the entry; the rest stays).
    Set(SetArgs),
    /// Remove the entry of a server, a tag or the fleet.
    Clear(ScopeArgs),
}

/// Whose entry.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("scope").required(true).args(["server", "tag", "fleet"])))]
pub struct ScopeArgs {
    /// A server of the fleet, by name.
    #[arg(long)]
    pub server: Option<String>,
    /// A tag (applies to every server carrying it).
    #[arg(long)]
    pub tag: Option<String>,
    /// Every server.
    #[arg(long)]
    pub fleet: bool,
}

/// `server checks set`'s arguments.
#[derive(Debug, Clone, Args)]
pub struct SetArgs {
    /// Whose entry.
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// An http:// or https:// URL that must answer --status (repeatable;
    /// replaces the entry's URLs; asked from this machine, no redirects).
    #[arg(long = "http", value_name = "URL")]
    pub http: Vec<String>,
    /// The status the --http URLs must answer.
    #[arg(long, default_value_t = 200, value_name = "CODE")]
    pub status: u16,
    /// A command run on the server that must exit 0 (repeatable; replaces
    /// the entry's commands).
    #[arg(long = "command", value_name = "CMD")]
    pub commands: Vec<String>,
    /// What a failed update leads to when a snapshot was taken before it.
    #[arg(long, value_enum)]
    pub rollback: Option<RollbackPolicy>,
    /// Seconds the checks may take to pass after an update (1-3600).
    #[arg(long, value_name = "SECONDS")]
    pub wait: Option<u64>,
    /// Remove the entry's URLs and commands.
    #[arg(long, conflicts_with_all = ["http", "commands"])]
    pub no_checks: bool,
    /// The URL the platform's own health check asks instead of its
    /// default (http:// or https://, from this machine).
    #[arg(long, value_name = "URL")]
    pub health_url: Option<String>,
    /// The port the platform's own health check asks on the server's
    /// address (when no --health-url).
    #[arg(long, value_name = "PORT")]
    pub health_port: Option<u16>,
    /// Seconds a restore waits for the platform to be healthy (1-3600).
    #[arg(long, value_name = "SECONDS")]
    pub health_deadline: Option<u64>,
    /// Seconds the health port may refuse connections (nothing
    /// listening) before the wait ends with an error (1-600; default 20).
    #[arg(long, value_name = "SECONDS")]
    pub refused_grace: Option<u64>,
    /// The server has no web UI: a restore skips the platform's HTTP
    /// check.
    #[arg(long, conflicts_with_all = ["health_url", "health_port", "web_ui"])]
    pub no_web_ui: bool,
    /// The server has a web UI again (undoes --no-web-ui).
    #[arg(long)]
    pub web_ui: bool,
}

impl SetArgs {
    /// Writes the platform health settings given into `entry`.
    fn apply_platform(&self, entry: &mut CheckEntry) {
        let p = &mut entry.platform;
        if self.health_url.is_some() {
            p.url.clone_from(&self.health_url);
        }
        p.port = self.health_port.or(p.port);
        p.deadline = self.health_deadline.or(p.deadline);
        p.refused_grace = self.refused_grace.or(p.refused_grace);
        if self.no_web_ui {
            p.web_ui = Some(false);
        } else if self.web_ui {
            p.web_ui = None;
        }
    }
}

/// Runs one `server checks` subcommand; `set` and `clear` return the
/// scope they changed, for the audit log.
pub(super) fn run(cmd: ChecksCommand, ctx: &Context) -> Result<Option<String>> {
    let dir = ctx.kastell_dir()?;
    match cmd {
        ChecksCommand::Show { server } => show(ctx, server.as_deref()).map(|()| None),
        ChecksCommand::Set(args) => {
            let scope = scope(ctx, &args.scope)?;
            let mut file = ChecksFile::load(&dir)?;
            let mut entry = file.entry(&scope).cloned().unwrap_or_default();
            if args.no_checks {
                entry.http.clear();
                entry.commands.clear();
            }
            if !args.http.is_empty() {
                entry.http = args
                    .http
                    .iter()
                    .map(|url| HttpCheck {
                        url: url.clone(),
                        status: args.status,
                    })
                    .collect();
            }
            if !args.commands.is_empty() {
                entry.commands = args.commands.clone();
            }
            if args.rollback.is_some() {
                entry.rollback = args.rollback;
            }
            if args.wait.is_some() {
                entry.wait = args.wait;
            }
            args.apply_platform(&mut entry);
            if entry == CheckEntry::default() {
                return Err(Error::invalid_input("nothing to set").with_hint(
                    "Give --http URL, --command CMD, --rollback auto|ask|never, --wait SECONDS, \
                     or the platform check's --health-url, --health-port, --health-deadline, \
                     --refused-grace or --no-web-ui",
                ));
            }
            file.set(&scope, entry);
            file.save(&dir)?;
            ctx.out
                .line(format!("Checks of the {} set", scope.describe()))?;
            Ok(Some(scope.describe()))
        }
        ChecksCommand::Clear(args) => {
            let scope = scope(ctx, &args)?;
            let mut file = ChecksFile::load(&dir)?;
            if file.entry(&scope).is_none() {
                return Err(Error::not_found(format!(
                    "checks.json has no entry for the {}",
                    scope.describe()
                ))
                .with_hint("See `kastell server checks show`"));
            }
            file.set(&scope, CheckEntry::default());
            file.save(&dir)?;
            ctx.out
                .line(format!("Checks of the {} removed", scope.describe()))?;
            Ok(Some(scope.describe()))
        }
    }
}

/// The entry `args` names. Refuses a server the fleet does not hold and a
/// tag the store's rule refuses.
fn scope(ctx: &Context, args: &ScopeArgs) -> Result<Scope> {
    if let Some(server) = &args.server {
        let record = ctx.store()?.resolve(Some(server.as_str()))?;
        return Ok(Scope::Server(record.name));
    }
    if let Some(tag) = &args.tag {
        crate::state::store::validate_tag(tag)?;
        return Ok(Scope::Tag(tag.clone()));
    }
    Ok(Scope::Fleet)
}

/// Prints each server's (or `server`'s) checks and policy, or with
/// `--json` an object of them by server name.
fn show(ctx: &Context, server: Option<&str>) -> Result<()> {
    let file = ChecksFile::load(&ctx.kastell_dir()?)?;
    let store = ctx.store()?;
    let servers = match server {
        Some(query) => vec![store.resolve(Some(query))?],
        None => store.servers()?,
    };
    if ctx.out.is_json() {
        let by_name: serde_json::Map<String, serde_json::Value> = servers
            .iter()
            .map(|s| {
                let declared = serde_json::to_value(file.for_server(s)).unwrap_or_default();
                (s.name.clone(), declared)
            })
            .collect();
        return ctx.out.json(&by_name);
    }
    let rows: Vec<Vec<String>> = servers
        .iter()
        .map(|s| {
            let d = file.for_server(s);
            let mut checks: Vec<String> = d
                .http
                .iter()
                .map(|h| format!("GET {} = {}", h.shown(), h.status))
                .collect();
            checks.extend(d.commands.iter().map(|c| format!("$ {c}")));
            vec![
                s.name.clone(),
                format!("{} ({})", d.rollback.word(), d.rollback_from),
                if checks.is_empty() {
                    "platform only".to_owned()
                } else {
                    checks.join("\n")
                },
                d.wait_secs
                    .map_or_else(|| "default".to_owned(), |w| format!("{w}s")),
                platform_health(&d.platform, s),
            ]
        })
        .collect();
    ctx.out.table(
        &["NAME", "ROLLBACK", "CHECKS", "WAIT", "PLATFORM HEALTH"],
        &rows,
    )
}

/// The platform check's settings in a few words (`default` when none).
fn platform_health(p: &PlatformHealth, server: &ServerRecord) -> String {
    if p.web_ui == Some(false) {
        return "no web UI (skipped)".to_owned();
    }
    let mut parts = Vec::new();
    if let Some(url) = p.health_url(server) {
        let shown = HttpCheck { url, status: 200 }.shown();
        parts.push(shown);
    }
    if let Some(d) = p.deadline {
        parts.push(format!("deadline {d}s"));
    }
    if let Some(g) = p.refused_grace {
        parts.push(format!("refused for {g}s ends it"));
    }
    if parts.is_empty() {
        "default".to_owned()
    } else {
        parts.join(", ")
    }
}
