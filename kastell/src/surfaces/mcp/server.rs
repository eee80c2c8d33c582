//! The MCP server: tools, tasks, the fleet resource, prompts and
//! operation logs over one [`Context`].
//!
//! Each tool call is parsed strictly ([`super::strict`]), then run as the
//! operation it names; the policy (SAFE_MODE first) is applied inside the
//! operations. Long work reports progress to the request, or runs as a task
//! when the client declared the tasks extension ([`super::task`]).

use kastell_core::{Error, ErrorKind};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, CreateTaskResult,
    GetPromptRequestParams, GetPromptResponse, GetTaskParams, GetTaskResult, Implementation,
    ListPromptsResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig, Tool,
    UpdateTaskParams,
};
// Logging is deprecated from 2026-07-28 on (SEP-2577); kastell still
// serves it to clients of the earlier versions (see `super::logging`).
#[allow(deprecated)]
use rmcp::model::SetLevelRequestParams;
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};

use super::audit::Audit;
use super::call::Call;
use super::logging::{ClientLog, SessionLevel};
use super::progress::Progress;
use super::render::{bad_input, failure};
use super::task::Tasks;
use super::{confirm, prompts, resources, tools};
use crate::ops::{Context, OpError};
use crate::policy::SafetyLevel;

/// The kastell MCP server. Clones share the context and the tasks; each
/// session (over HTTP, each client) has its own log level. The tool
/// definitions are built once per process, at the first `tools/list` or
/// call ([`tools::shared`]), not when a session starts: `initialize` does
/// not pay for them.
#[derive(Debug, Clone)]
pub struct KastellMcp {
    ctx: Context,
    tasks: Tasks,
    level: SessionLevel,
}

/// Refuses to start long work once the client cancelled the request.
fn cancelled(rc: &RequestContext<RoleServer>) -> Option<CallToolResult> {
    rc.ct.is_cancelled().then(|| {
        failure(OpError::from(
            Error::new(
                ErrorKind::Cancelled,
                "Cancelled before anything was changed",
            )
            .with_hint("Nothing ran; call the tool again to retry"),
        ))
    })
}

impl KastellMcp {
    /// A server running operations in `ctx` (whose surface should be
    /// [`crate::Surface::Mcp`]) with tasks of its own.
    pub fn new(ctx: Context) -> Self {
        Self::sharing(ctx, Tasks::default())
    }

    /// A server for one more session that shares `tasks` (the process's
    /// long work) with the others.
    pub fn sharing(ctx: Context, tasks: Tasks) -> Self {
        Self {
            ctx,
            tasks,
            level: SessionLevel::default(),
        }
    }

    async fn call(
        &self,
        request: CallToolRequestParams,
        rc: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.as_ref();
        let arguments = request.arguments.clone().unwrap_or_default();
        let call = match Call::parse(name, arguments.clone()) {
            None => {
                let tools = tools::shared();
                let known: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
                return Err(ErrorData::invalid_params(
                    format!("unknown tool {name}; kastell has {}", known.join(", ")),
                    None,
                ));
            }
            Some(Err(e)) => {
                let refused = bad_input(&self.ctx, e);
                Audit::start(&rc, name, &arguments).finish(&self.ctx, &refused);
                return Ok(refused.into());
            }
            Some(Ok(call)) => call,
        };
        let audit = Audit::start(&rc, call.label(), &arguments);
        let retry = confirm::Retry {
            input_responses: request.input_responses.as_ref(),
            request_state: request.request_state.as_deref(),
        };
        let audit = match confirm::gate(&self.ctx, &call, &arguments, retry, &rc).await {
            confirm::Gate::Go { confirmed } => audit.confirmed(confirmed),
            confirm::Gate::Answer(answer, note) => {
                // An input-required result is a question, not an outcome:
                // the retry that answers it is recorded.
                if let CallToolResponse::Complete(result) = &answer {
                    let audit = match note {
                        Some(note) => audit.confirmed(note),
                        None => audit,
                    };
                    audit.finish(&self.ctx, result);
                }
                return Ok(answer);
            }
        };
        if let Err(refused) = audit.begin(&self.ctx, call.id()) {
            audit.finish(&self.ctx, &refused);
            return Ok(refused.into());
        }
        let log = ClientLog::for_request(&rc, &self.level);
        if !call.is_long() {
            let result = call.run(&self.ctx).await;
            audit.finish(&self.ctx, &result);
            return Ok(result.into());
        }
        if let Some(stop) = cancelled(&rc) {
            audit.finish(&self.ctx, &stop);
            return Ok(stop.into());
        }
        let takes_tasks = rc
            .client_capabilities()
            .is_some_and(|caps| caps.supports_tasks());
        if takes_tasks {
            let task = self.tasks.spawn(self.ctx.clone(), call, log, audit);
            return Ok(CallToolResponse::Task(CreateTaskResult::new(task)));
        }
        let label = call.label();
        let _counted = self.tasks.in_flight();
        let tasks = self.tasks.clone();
        let result = Progress::new(&rc, log, move || tasks.stopping())
            .around(label, &self.ctx, |c| async move { call.run(&c).await })
            .await;
        audit.finish(&self.ctx, &result);
        Ok(result.into())
    }
}

/// How often a session checks whether the safety levels changed.
const LEVEL_POLL: std::time::Duration = std::time::Duration::from_secs(2);

impl KastellMcp {
    /// The highest safety level any server may have now, when levels are
    /// configured (`None`: they are not, and every action is offered; an
    /// unreadable configuration offers reads only).
    fn highest_level(&self) -> Option<SafetyLevel> {
        let surface = self.ctx.surface;
        match self.ctx.policy.safety() {
            Ok(config) if config.configured() => {
                let servers = self.ctx.store.servers().unwrap_or_default();
                Some(config.highest(surface, &servers))
            }
            Ok(_) => None,
            Err(_) => Some(SafetyLevel::ReadOnly),
        }
    }

    /// The tools as offered now: only the actions that can run under the
    /// levels configured (some server may run them) and SAFE_MODE
    /// ([`tools::offered`]).
    fn offered_tools(&self) -> Vec<Tool> {
        let safe_mode = self.ctx.policy.safe_mode(self.ctx.surface);
        tools::offered(&tools::shared(), self.highest_level(), safe_mode)
    }

    /// Sends `notifications/tools/list_changed` whenever what is offered
    /// changes (safety.json or the fleet edited), until the client goes.
    async fn announce_level_changes(self, peer: rmcp::Peer<RoleServer>) {
        let mut offered = self.highest_level();
        while !peer.is_transport_closed() {
            tokio::time::sleep(LEVEL_POLL).await;
            let now = self.highest_level();
            if now != offered {
                offered = now;
                if peer.notify_tool_list_changed().await.is_err() {
                    return;
                }
            }
        }
    }
}

impl ServerHandler for KastellMcp {
    #[allow(deprecated)]
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .enable_resources()
                .enable_prompts()
                .enable_logging()
                .enable_tasks()
                .build(),
        )
        .with_server_info(
            Implementation::new("kastell-mcp", env!("CARGO_PKG_VERSION"))
                .with_title("kastell: backups, snapshots and maintenance for your servers"),
        )
        .with_instructions(
            "kastell keeps self-hosted servers safe. Start with server_info {action: 'list'} or \
the kastell://fleet resource; use server_backup before risky work; SAFE_MODE blocks destructive \
actions unless KASTELL_SAFE_MODE=false, safety levels may allow less, and restores and snapshot \
deletions are confirmed by a person: the user, or the operator approving the request the call \
names (kastell approve ID); the user's no is final. Every call is recorded in a \
tamper-evident audit log (kastell://audit/recent). Arguments are checked strictly: a misspelt or \
inapplicable argument is refused and nothing runs.",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _rc: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.offered_tools()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.offered_tools().into_iter().find(|t| t.name == name)
    }

    async fn on_initialized(&self, context: rmcp::service::NotificationContext<RoleServer>) {
        let server = self.clone();
        tokio::spawn(async move { server.announce_level_changes(context.peer).await });
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        rc: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.call(request, rc).await
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        _rc: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        match self.tasks.manager().get_task(&request.task_id) {
            Ok(task) => Ok(GetTaskResult::new(task)),
            // Not in this process: an earlier (or another) kastell-mcp's,
            // answered from the task journal.
            Err(unknown) => super::journal::recall(self.ctx.store.dir(), &request.task_id)
                .map(GetTaskResult::new)
                .ok_or(unknown),
        }
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        _rc: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.tasks
            .manager()
            .update_task(&request.task_id, request.input_responses)
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        _rc: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        match self.tasks.manager().cancel_task(&request.task_id) {
            Ok(()) => Ok(()),
            Err(unknown) => match super::journal::recall(self.ctx.store.dir(), &request.task_id) {
                Some(task) => super::journal::cancel_recalled(&task),
                None => Err(unknown),
            },
        }
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _rc: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(resources::list())
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _rc: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        resources::read(&self.ctx, &request.uri)
            .await
            .map(ReadResourceResponse::Complete)
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _rc: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(prompts::list())
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _rc: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        prompts::get(&request.name, request.arguments.as_ref()).map(GetPromptResponse::Complete)
    }

    #[allow(deprecated)]
    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _rc: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.level.set(request.level);
        Ok(())
    }
}
