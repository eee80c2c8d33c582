//! Step reports: what each stage of a workflow did and how long it took.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// How a step ended, as serialised (`success`, `failure`, `skipped`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schemars", schemars(rename = "StepOutcome"))]
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
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct StepReport {
    /// Step name (`Status Check`, `Coolify Update`, ...).
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
    /// Wall time in milliseconds (0 for skipped steps).
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

/// What a platform's restore did: every step that ran, in order, and the
/// error that stopped it, if one did. Steps and error travel together so a
/// failed restore still shows what ran (`Unpack backup` ok, `Validate
/// sshd_config` failed) without the steps being packed into the error.
#[derive(Debug, Default)]
#[must_use = "a restore report carries the restore's error"]
pub struct RestoreReport {
    /// The steps that ran, the failed one (if any) last.
    pub steps: Vec<StepReport>,
    /// Why the restore stopped before finishing; `None` when it finished.
    pub error: Option<Error>,
}

impl RestoreReport {
    /// A restore whose every step ran.
    pub fn finished(steps: Vec<StepReport>) -> Self {
        Self { steps, error: None }
    }

    /// A restore that `error` stopped after `steps`.
    pub fn stopped(steps: Vec<StepReport>, error: Error) -> Self {
        Self {
            steps,
            error: Some(error),
        }
    }

    /// A restore refused before any step ran.
    pub fn refused(error: Error) -> Self {
        Self::stopped(Vec::new(), error)
    }

    /// Runs the step `name` and records it: on success the step's detail is
    /// the second half of what `work` returns and the first half comes back;
    /// on failure the step records the error, which comes back for `?`.
    /// Finish with [`RestoreReport::conclude`].
    pub async fn step<T>(
        &mut self,
        name: impl Into<String>,
        work: impl std::future::Future<Output = crate::Result<(T, String)>>,
    ) -> crate::Result<T> {
        let timer = StepTimer::start(name);
        match work.await {
            Ok((value, detail)) => {
                self.steps.push(timer.success(detail));
                Ok(value)
            }
            Err(e) => {
                self.steps.push(timer.failure(&e));
                Err(e)
            }
        }
    }

    /// This report, stopped by the error of `outcome` if it failed.
    pub fn conclude(mut self, outcome: crate::Result<()>) -> Self {
        if let Err(e) = outcome {
            self.error = Some(e);
        }
        self
    }

    /// The steps when the restore finished, else its error (the steps are
    /// dropped: callers that show them read [`RestoreReport::steps`]).
    pub fn into_result(self) -> crate::Result<Vec<StepReport>> {
        match self.error {
            None => Ok(self.steps),
            Some(e) => Err(e),
        }
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

    #[tokio::test]
    async fn a_report_records_each_step_and_stops_at_the_first_failure() {
        let mut report = RestoreReport::default();
        let outcome = async {
            let n = report
                .step("Start database", async { Ok((7, "started".to_owned())) })
                .await?;
            assert_eq!(n, 7);
            report
                .step("Restore database", async {
                    Err::<((), String), _>(Error::unexpected("pg_restore exited 1"))
                })
                .await?;
            report
                .step("Restore config", async { Ok(((), "never".to_owned())) })
                .await
        }
        .await;
        let report = report.conclude(outcome);
        assert!(report.error.is_some());
        let names: Vec<_> = report.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["Start database", "Restore database"]);
        assert_eq!(report.steps[1].status, StepStatus::Failure);
        let err = report.into_result().unwrap_err();
        assert!(err.message().contains("pg_restore exited 1"));

        let done = RestoreReport::finished(vec![StepTimer::start("Unpack").success("3 files")]);
        assert!(done.error.is_none());
        assert_eq!(done.into_result().unwrap().len(), 1);
        let refused = RestoreReport::refused(Error::invalid_input("no dump"));
        assert!(refused.steps.is_empty() && refused.error.is_some());
    }
}
