//! Step reports: what each stage of a workflow did and how long it took.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    /// It did what it should.
    Success,
    /// It failed; `error` says why.
    Failure,
    /// It did not run; `detail` says why.
    Skipped,
}

/// One step of a workflow, as shown to the user and serialised to MCP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepReport {
    /// Step name (`Stop Coolify`, `Restore database`).
    pub name: String,
    /// Outcome.
    pub status: StepStatus,
    /// What happened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
}

impl StepReport {
    /// A step that did not run.
    pub fn skipped(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            status: StepStatus::Skipped,
            detail: Some(detail.into()),
            error: None,
            hint: None,
            duration_ms: 0,
        }
    }
}

/// Times a step from creation to [`StepTimer::success`] or
/// [`StepTimer::failure`].
#[derive(Debug)]
pub struct StepTimer {
    name: String,
    started: Instant,
}

impl StepTimer {
    /// Starts timing the step `name`.
    pub fn start(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            started: Instant::now(),
        }
    }

    fn finish(self, status: StepStatus) -> StepReport {
        StepReport {
            name: self.name,
            status,
            detail: None,
            error: None,
            hint: None,
            duration_ms: self.started.elapsed().as_millis() as u64,
        }
    }

    /// Ends the step successfully with `detail`.
    pub fn success(self, detail: impl Into<String>) -> StepReport {
        let mut report = self.finish(StepStatus::Success);
        report.detail = Some(detail.into());
        report
    }

    /// Ends the step with `error`, keeping its message and hint.
    pub fn failure(self, error: &Error) -> StepReport {
        let mut report = self.finish(StepStatus::Failure);
        report.error = Some(error.to_string());
        report.hint = error.hint().map(str::to_owned);
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_serialise_in_camel_case_without_empty_fields() {
        let ok = StepTimer::start("Stop Coolify").success("stopped");
        let json = serde_json::to_value(&ok).unwrap();
        assert_eq!(json["status"], "success");
        assert!(json.get("error").is_none());
        assert!(json.get("durationMs").is_some());

        let failed = StepTimer::start("Restore database")
            .failure(&Error::unexpected("boom").with_hint("look at the log"));
        assert_eq!(failed.status, StepStatus::Failure);
        assert_eq!(failed.hint.as_deref(), Some("look at the log"));
        let skipped = StepReport::skipped("Reboot", "Skipped by user");
        assert_eq!(skipped.status, StepStatus::Skipped);
    }
}
