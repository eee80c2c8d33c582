//! The serialisable results of operations: the success payloads' shared
//! parts (steps, snapshots, suggestions) and [`OpError`], the one failure
//! shape both surfaces print.
//!
//! Every type here derives `JsonSchema` (core's step reports too, with its
//! `schemars` feature), so an output schema is generated from the very type
//! that is serialised (the original's schemas were written by hand and did
//! not match its payloads).

use kastell_core::Error;
use kastell_core::types::{Snapshot, SnapshotStatus, StepReport};
use schemars::JsonSchema;
use serde::Serialize;

use super::suggest::Suggestion;

/// How a step ended, as serialised (`success`, `failure`, `skipped`):
/// core's [`StepStatus`](kastell_core::types::StepStatus), whose schema is
/// named `StepOutcome`.
pub use kastell_core::types::StepStatus as StepOutcome;

// Core's [`StepReport`] numbered for display: serialised as the report's
// fields beside `step`. (The doc line below is the schema's description.)
/// One step of an operation, with its 1-based position and duration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Step {
    /// Position in the list, from 1.
    pub step: usize,
    /// What the step did, how it ended and how long it took.
    #[serde(flatten)]
    pub report: StepReport,
}

impl Step {
    /// `report` as step `step` (1-based).
    pub fn numbered(step: usize, report: &StepReport) -> Self {
        Self {
            step,
            report: report.clone(),
        }
    }
}

impl std::ops::Deref for Step {
    type Target = StepReport;

    /// The step's report, so its name, status and detail read as fields of
    /// the step.
    fn deref(&self) -> &StepReport {
        &self.report
    }
}

/// Numbers `reports` from 1.
pub fn steps(reports: &[StepReport]) -> Vec<Step> {
    reports
        .iter()
        .enumerate()
        .map(|(i, r)| Step::numbered(i + 1, r))
        .collect()
}

/// Counts of steps by outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, JsonSchema)]
pub struct StepSummary {
    /// All steps.
    pub total: usize,
    /// Steps that succeeded.
    pub success: usize,
    /// Steps that failed.
    pub failure: usize,
    /// Steps that did not run.
    pub skipped: usize,
}

impl StepSummary {
    /// Counts `steps`.
    pub fn of(steps: &[Step]) -> Self {
        let count = |o: StepOutcome| steps.iter().filter(|s| s.status == o).count();
        Self {
            total: steps.len(),
            success: count(StepOutcome::Success),
            failure: count(StepOutcome::Failure),
            skipped: count(StepOutcome::Skipped),
        }
    }
}

/// A provider snapshot as shown to users.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotInfo {
    /// The provider's snapshot id (always the real one, never `pending`).
    pub id: String,
    /// The provider server id it was taken from, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_id: Option<String>,
    /// Name or description.
    pub name: String,
    /// `creating`, `available`, `deleting`, `failed` or `unknown`.
    pub status: String,
    /// Size in GB once known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_gb: Option<f64>,
    /// Creation time (ISO-8601), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

/// `gb` rounded to two decimals, as sizes are shown: provider APIs and
/// unit conversions yield float noise such as `0.5200000000000001`.
/// `None` for values that are not finite numbers.
pub(crate) fn round_gb(gb: f64) -> Option<f64> {
    let rounded = (gb * 100.0).round() / 100.0;
    rounded.is_finite().then_some(rounded)
}

impl From<&Snapshot> for SnapshotInfo {
    /// The snapshot as shown, whichever provider it came from: its size
    /// rounded to two decimals (see [`round_gb`]).
    fn from(s: &Snapshot) -> Self {
        let status = match s.status {
            SnapshotStatus::Creating => "creating",
            SnapshotStatus::Available => "available",
            SnapshotStatus::Deleting => "deleting",
            SnapshotStatus::Failed => "failed",
            SnapshotStatus::Unknown => "unknown",
        };
        Self {
            id: s.id.to_string(),
            server_id: s.server_id.as_ref().map(ToString::to_string),
            name: s.name.clone(),
            status: status.to_owned(),
            size_gb: s.size_gb.and_then(round_gb),
            created_at: s.created_at.clone(),
        }
    }
}

/// A failed operation: the error, a hint, the error kind, the steps that
/// ran and what to do next. Serialises as
/// `{error, hint?, kind, server?, ip?, steps?, suggested_actions}`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct OpError {
    /// What went wrong.
    pub error: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The error kind (`permission_denied`, `not_found`, `timeout`, ...).
    pub kind: String,
    /// The server's name, when it was resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The server's IP, when it was resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The steps that ran before the failure (and the ones skipped).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    /// Next steps, each naming a tool and action the policy allows.
    pub suggested_actions: Vec<Suggestion>,
}

impl OpError {
    /// The error kind as it was before serialisation.
    pub fn is_kind(&self, kind: kastell_core::ErrorKind) -> bool {
        self.kind == kind.as_str()
    }

    /// Adds the server it happened on.
    pub fn on(mut self, server: &crate::state::store::ServerRecord) -> Self {
        self.server = Some(server.name.clone());
        self.ip = Some(server.ip.clone());
        self
    }

    /// Adds the steps that ran.
    pub fn with_steps(mut self, reports: &[StepReport]) -> Self {
        self.steps = steps(reports);
        self
    }

    /// Adds suggestions.
    pub fn with_suggestions(mut self, suggestions: Vec<Suggestion>) -> Self {
        self.suggested_actions = suggestions;
        self
    }
}

impl From<Error> for OpError {
    fn from(err: Error) -> Self {
        Self {
            error: err.to_string(),
            hint: crate::advice::hint(&err),
            kind: err.kind().as_str().to_owned(),
            server: None,
            ip: None,
            steps: Vec::new(),
            suggested_actions: Vec::new(),
        }
    }
}

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.error)?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

impl std::error::Error for OpError {}

/// What every operation returns.
pub type OpResult<T> = Result<T, OpError>;
