//! One operation, one definition.
//!
//! Every operation kastell runs is one type implementing [`Operation`]: its
//! [`Spec`] (id, policy row, where it appears in MCP and on the command
//! line), its arguments (one type that is clap's, serde's and the JSON
//! schema's), its result body, its plan (what `--dry-run` prints and what
//! an MCP `dryRun` shows) and its run. The surfaces are derived from the
//! list of operations ([`super::catalog`]): the MCP tools' actions, input
//! and output schemas, the CLI subcommands, the policy, the audit names and
//! the suggestions. Adding an operation is one type plus one line in that
//! list (or, outside this crate, one [`crate::register_operation!`]).
//!
//! The typed trait is for authors; [`Dyn`] and [`Invocation`] are the
//! object-safe faces the surfaces hold (an operation, and one call of it
//! with its arguments parsed).

use std::fmt::Debug;
use std::marker::PhantomData;
use std::sync::Arc;

use async_trait::async_trait;
use kastell_core::Error;
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::{Context, OpError, OpResult};
use crate::policy::{OpId, Rule};
use crate::state::store::ServerRecord;

/// Where an operation appears among the MCP tools: the tool it belongs to
/// (one of the four, multiplexed by `action`) and its action name there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct McpAction {
    /// The tool (`server_backup`, `server_maintain`, `server_info`,
    /// `server_logs`).
    pub tool: &'static str,
    /// The action's name in that tool (`snapshot-delete`).
    pub action: &'static str,
    /// One sentence for the tool's `action` description: what it does and
    /// which arguments it needs (`delete one (needs snapshotId).`).
    pub doc: &'static str,
}

/// How a command-line operation picks its servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CliTarget {
    /// One server or `--all`, with `--concurrency`, `--dry-run` and
    /// `--force`.
    Fleet,
    /// One server, with `--dry-run` and `--force` (what overwrites or
    /// deletes is never run fleet-wide).
    One,
    /// One server, read-only: no plan, nothing to confirm.
    Read,
}

/// Where an operation appears on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CliCommand {
    /// The words of its subcommand (`["snapshot", "delete"]`); a group word
    /// that does not exist yet is created.
    pub path: &'static [&'static str],
    /// Its one-line help.
    pub about: &'static str,
    /// How it picks servers.
    pub target: CliTarget,
}

/// Whether an operation works on one server or on the fleet store alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One server (named by `server`, or the only one).
    Server,
    /// The fleet store as a whole (a listing): no `server` argument.
    Fleet,
}

/// The static description of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// Its policy row; `rule.id` is the operation's id.
    pub rule: Rule,
    /// What it works on.
    pub scope: Scope,
    /// Its MCP action, if MCP offers it.
    pub mcp: Option<McpAction>,
    /// Its CLI subcommand, if the generic CLI runs it (operations with a
    /// command of their own, such as `server add`, have none).
    pub cli: Option<CliCommand>,
}

impl Spec {
    /// The operation's identity.
    pub const fn id(&'static self) -> OpId {
        OpId::new(&self.rule)
    }

    /// The command as typed (`snapshot delete`), else the id.
    pub fn title(&self) -> String {
        match &self.cli {
            Some(cli) => cli.path.join(" "),
            None => self.rule.id.to_owned(),
        }
    }
}

/// Arguments of an operation that takes none.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize, JsonSchema, clap::Args,
)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// One operation: everything every surface needs to offer, check, plan,
/// confirm, run and report it.
///
/// `Args` is parsed from MCP arguments (serde, camelCase; `server`,
/// `dryRun` and `planToken` are the surface's own and never reach it) and
/// from the command line (clap; the server, `--all`, `--dry-run` and
/// `--force` are the surface's). Fields only the CLI knows are
/// `#[serde(skip)]`. `Body` is the success payload: serialised as the MCP
/// structured content (tagged with `action`) and the CLI's `--json`.
#[async_trait]
pub trait Operation: Send + Sync + 'static {
    /// The operation's description.
    const SPEC: &'static Spec;
    /// Its identity, for the policy and the logs.
    const ID: OpId = OpId::new(&Self::SPEC.rule);
    /// Its arguments.
    type Args: clap::Args
        + clap::FromArgMatches
        + DeserializeOwned
        + Serialize
        + JsonSchema
        + Clone
        + Debug
        + Send
        + Sync
        + 'static;
    /// Its success payload.
    type Body: Serialize + JsonSchema + Send + 'static;

    /// Runs it on the server `query` names (none: the only one). Applies
    /// the policy itself ([`Context::admit`]) on every run.
    async fn run(ctx: &Context, query: Option<&str>, args: &Self::Args) -> OpResult<Self::Body>;

    /// The steps it would take on `server`, with the commands and API
    /// calls: what `--dry-run` prints. Reads only.
    fn plan(ctx: &Context, server: &ServerRecord, args: &Self::Args) -> Vec<String>;

    /// The yes/no question a person answers before it runs on `server`.
    fn question(server: &ServerRecord, args: &Self::Args) -> String {
        let _ = args;
        format!(
            "Run {} on \"{}\" ({})?",
            Self::SPEC.title(),
            server.name,
            server.ip
        )
    }

    /// The backup or snapshot it overwrites or deletes with, for the
    /// confirmation (none: it needs no target).
    fn target(args: &Self::Args) -> Option<&str> {
        let _ = args;
        None
    }

    /// The repository it reads a backup from, for the confirmation.
    fn repo(args: &Self::Args) -> Option<&str> {
        let _ = args;
        None
    }

    /// Fills in what a person must see decided before being asked (the
    /// newest backup a restore picks), for `server`.
    fn pin(ctx: &Context, server: &ServerRecord, args: &mut Self::Args) {
        let _ = (ctx, server, args);
    }

    /// Lines a person reads under the CLI's summary of a success (the
    /// summary already shows the usual fields: message, backup, snapshot,
    /// steps, ...); none by default.
    fn render(body: &Self::Body) -> Vec<String> {
        let _ = body;
        Vec::new()
    }
}

/// A success: the body as JSON and the lines [`Operation::render`] made of
/// it.
#[derive(Debug, Clone, PartialEq)]
pub struct Done {
    /// The body, serialised.
    pub body: Value,
    /// The lines for a person.
    pub lines: Vec<String>,
}

/// An operation as the surfaces hold it.
pub trait Dyn: Send + Sync {
    /// Its description.
    fn spec(&self) -> &'static Spec;
    /// Its identity.
    fn id(&self) -> OpId {
        OpId::new(&self.spec().rule)
    }
    /// The JSON schema of its MCP arguments (an object schema whose
    /// properties are the arguments), from `generator`.
    fn args_schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema;
    /// The JSON schema of its body: a `$ref` into `generator`'s
    /// definitions.
    fn body_schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema;
    /// `command` with its arguments added.
    fn augment(&self, command: clap::Command) -> clap::Command;
    /// A call with the MCP arguments `args` (the surface's own removed);
    /// refuses arguments of the wrong type, saying what was wrong.
    fn call_from_json(&self, args: Map<String, Value>) -> Result<Arc<dyn Invocation>, String>;
    /// A call with the command line's `matches`.
    fn call_from_matches(
        &self,
        matches: &clap::ArgMatches,
    ) -> Result<Arc<dyn Invocation>, clap::Error>;
}

/// One call of an operation, its arguments parsed.
#[async_trait]
pub trait Invocation: Send + Sync + Debug {
    /// The operation's description.
    fn spec(&self) -> &'static Spec;
    /// Its identity.
    fn id(&self) -> OpId {
        OpId::new(&self.spec().rule)
    }
    /// Runs it; the body serialised and rendered.
    async fn run(&self, ctx: &Context, query: Option<&str>) -> Result<Done, OpError>;
    /// Its plan on `server` ([`Operation::plan`]).
    fn plan(&self, ctx: &Context, server: &ServerRecord) -> Vec<String>;
    /// Its question on `server` ([`Operation::question`]).
    fn question(&self, server: &ServerRecord) -> String;
    /// Its target ([`Operation::target`]).
    fn target(&self) -> Option<&str>;
    /// Its repository ([`Operation::repo`]).
    fn repo(&self) -> Option<&str>;
    /// The arguments as the audit log records them.
    fn args(&self) -> Value;
    /// This call with what a person must see decided filled in for
    /// `server` ([`Operation::pin`]).
    fn pinned(&self, ctx: &Context, server: &ServerRecord) -> Arc<dyn Invocation>;
}

/// The [`Dyn`] of operation `O`. `&Typed::<O>::NEW` is what the list of
/// operations holds.
pub struct Typed<O>(PhantomData<fn() -> O>);

impl<O: Operation> Typed<O> {
    /// The handle.
    pub const NEW: Self = Self(PhantomData);
}

/// A call of `O`.
struct Called<O: Operation> {
    args: O::Args,
}

impl<O: Operation> Debug for Called<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(O::SPEC.rule.id)
            .field("args", &self.args)
            .finish()
    }
}

impl<O: Operation> Dyn for Typed<O> {
    fn spec(&self) -> &'static Spec {
        O::SPEC
    }

    fn args_schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.root_schema_for::<O::Args>()
    }

    fn body_schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<O::Body>()
    }

    fn augment(&self, command: clap::Command) -> clap::Command {
        <O::Args as clap::Args>::augment_args(command)
    }

    fn call_from_json(&self, args: Map<String, Value>) -> Result<Arc<dyn Invocation>, String> {
        let args: O::Args =
            serde_json::from_value(Value::Object(args)).map_err(|e| e.to_string())?;
        Ok(Arc::new(Called::<O> { args }))
    }

    fn call_from_matches(
        &self,
        matches: &clap::ArgMatches,
    ) -> Result<Arc<dyn Invocation>, clap::Error> {
        let args = <O::Args as clap::FromArgMatches>::from_arg_matches(matches)?;
        Ok(Arc::new(Called::<O> { args }))
    }
}

#[async_trait]
impl<O: Operation> Invocation for Called<O> {
    fn spec(&self) -> &'static Spec {
        O::SPEC
    }

    async fn run(&self, ctx: &Context, query: Option<&str>) -> Result<Done, OpError> {
        let body = O::run(ctx, query, &self.args).await?;
        let lines = O::render(&body);
        let body = serde_json::to_value(body)
            .map_err(|e| OpError::from(Error::unexpected(format!("encoding the result: {e}"))))?;
        Ok(Done { body, lines })
    }

    fn plan(&self, ctx: &Context, server: &ServerRecord) -> Vec<String> {
        O::plan(ctx, server, &self.args)
    }

    fn question(&self, server: &ServerRecord) -> String {
        O::question(server, &self.args)
    }

    fn target(&self) -> Option<&str> {
        O::target(&self.args).filter(|t| !t.trim().is_empty())
    }

    fn repo(&self) -> Option<&str> {
        O::repo(&self.args).filter(|r| !r.trim().is_empty())
    }

    fn args(&self) -> Value {
        serde_json::to_value(&self.args).unwrap_or(Value::Null)
    }

    fn pinned(&self, ctx: &Context, server: &ServerRecord) -> Arc<dyn Invocation> {
        let mut args = self.args.clone();
        O::pin(ctx, server, &mut args);
        Arc::new(Called::<O> { args })
    }
}

/// An operation the policy knows whose surface is a command of its own
/// (`server add`, `doctor`, `backup prune`): it has a row and an id, and
/// no generic MCP or CLI entry.
pub struct RuleOnly(pub &'static Spec);

impl Dyn for RuleOnly {
    fn spec(&self) -> &'static Spec {
        self.0
    }

    fn args_schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.root_schema_for::<NoArgs>()
    }

    fn body_schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<()>()
    }

    fn augment(&self, command: clap::Command) -> clap::Command {
        command
    }

    fn call_from_json(&self, _: Map<String, Value>) -> Result<Arc<dyn Invocation>, String> {
        Err(format!("{} has no generic surface", self.0.rule.id))
    }

    fn call_from_matches(&self, _: &clap::ArgMatches) -> Result<Arc<dyn Invocation>, clap::Error> {
        Err(clap::Error::raw(
            clap::error::ErrorKind::InvalidSubcommand,
            format!("{} has no generic command", self.0.rule.id),
        ))
    }
}

/// Registers an operation defined outside kastell, at link time: it then
/// appears in the CLI, the MCP schemas (in the tool its
/// [`Spec::mcp`] names), the policy and `--dry-run`, like kastell's own.
///
/// ```ignore
/// kastell::register_operation!(Uptime);
/// ```
#[macro_export]
macro_rules! register_operation {
    ($op:ty) => {
        $crate::__inventory::submit! {
            $crate::ops::Registered(&$crate::ops::Typed::<$op>::NEW)
        }
    };
}

/// An operation registered by [`crate::register_operation!`].
pub struct Registered(pub &'static dyn Dyn);

inventory::collect!(Registered);
