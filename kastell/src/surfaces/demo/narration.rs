//! How the demo tells what it does: numbered steps with their detail
//! lines, either as text while they run or, with `--json`, as one
//! document at the end ([`DemoReport`]: the steps, their outcome and the
//! failure that stopped the demo, if one did).

use std::io::Write;

use kastell_core::{Error, Result};
use serde::Serialize;

/// Where the demo's story goes: text written as it happens, or steps
/// collected for one JSON document.
pub(crate) struct Narration<'a> {
    text: Option<&'a mut dyn Write>,
    steps: Vec<DemoStep>,
}

/// How a step of the demo ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StepOutcome {
    /// It ran to its end (a refusal it shows is its result).
    Done,
    /// This build lacks what it needs (no cloud provider compiled in).
    Skipped,
    /// It failed, and the demo stopped there.
    Failed,
    /// A signal stopped the demo during it.
    Stopped,
}

/// One numbered step of the demo.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DemoStep {
    /// Its number, from 1.
    step: u32,
    /// What it shows.
    title: String,
    /// How it ended.
    outcome: StepOutcome,
    /// What it found, one line each.
    details: Vec<String>,
}

/// The failure that stopped the demo, as `--json` reports one.
#[derive(Debug, Clone, Serialize)]
struct Failure {
    kind: &'static str,
    message: String,
    hint: Option<String>,
}

/// The demo's JSON result: whether it ran to its end, each step with its
/// outcome, and what stopped it otherwise (a failure, or a signal).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DemoReport {
    success: bool,
    steps: Vec<DemoStep>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Failure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stopped_by: Option<&'static str>,
}

impl<'a> Narration<'a> {
    /// Narration as text on `out`, each line as it happens.
    pub(crate) fn text(out: &'a mut dyn Write) -> Self {
        Self {
            text: Some(out),
            steps: Vec::new(),
        }
    }

    /// Narration collected for [`Narration::finish`]'s JSON document.
    pub(crate) fn json() -> Self {
        Self {
            text: None,
            steps: Vec::new(),
        }
    }

    /// Starts step `number`, `title` (`3. kastell doctor web-1:` in text).
    pub(crate) fn step(&mut self, number: u32, title: impl AsRef<str>) -> Result<()> {
        self.begin(number, title.as_ref(), StepOutcome::Done)
    }

    /// A step this build cannot show, and why (in `title`).
    pub(crate) fn skip(&mut self, number: u32, title: impl AsRef<str>) -> Result<()> {
        self.begin(number, title.as_ref(), StepOutcome::Skipped)
    }

    /// A detail line of the current step (as written, indented, in text;
    /// trimmed in JSON).
    pub(crate) fn say(&mut self, line: impl AsRef<str>) -> Result<()> {
        let line = line.as_ref();
        if let Some(step) = self.steps.last_mut() {
            step.details.push(line.trim().to_owned());
        }
        self.write(line)
    }

    /// A line for a person only (the preface and the closing words):
    /// written in text, left out of JSON.
    pub(crate) fn note(&mut self, line: impl AsRef<str>) -> Result<()> {
        self.write(line.as_ref())
    }

    /// The JSON result: `outcome` is how the demo ended (`Ok` when it ran
    /// to its end), `stopped_by` the signal that stopped it, if one did.
    /// The step under way then is marked failed or stopped.
    pub(crate) fn finish(
        mut self,
        outcome: &Result<()>,
        stopped_by: Option<&'static str>,
    ) -> DemoReport {
        let error = outcome.as_ref().err().map(|e| Failure {
            kind: e.kind().as_str(),
            message: e.to_string(),
            hint: crate::advice::hint(e),
        });
        let ended = if stopped_by.is_some() {
            Some(StepOutcome::Stopped)
        } else {
            error.as_ref().map(|_| StepOutcome::Failed)
        };
        if let (Some(ended), Some(step)) = (ended, self.steps.last_mut()) {
            step.outcome = ended;
        }
        DemoReport {
            success: ended.is_none(),
            steps: self.steps,
            error,
            stopped_by,
        }
    }

    fn begin(&mut self, number: u32, title: &str, outcome: StepOutcome) -> Result<()> {
        self.steps.push(DemoStep {
            step: number,
            title: title.trim_end_matches(':').to_owned(),
            outcome,
            details: Vec::new(),
        });
        self.write(&format!("{number}. {title}"))
    }

    fn write(&mut self, line: &str) -> Result<()> {
        match &mut self.text {
            Some(out) => {
                writeln!(out, "{line}").map_err(|e| Error::io("writing the demo output", e))
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn text_is_written_as_it_happens_and_json_collects_the_steps() {
        let mut written = Vec::new();
        let mut text = Narration::text(&mut written);
        text.note("kastell demo: ...").unwrap();
        text.step(3, "kastell doctor web-1:").unwrap();
        text.say("   reachable").unwrap();
        drop(text);
        assert_eq!(
            String::from_utf8(written).unwrap(),
            "kastell demo: ...\n3. kastell doctor web-1:\n   reachable\n"
        );

        let mut json = Narration::json();
        json.note("kastell demo: ...").unwrap();
        json.step(3, "kastell doctor web-1:").unwrap();
        json.say("   reachable").unwrap();
        json.skip(7, "Snapshots: no cloud provider compiled in, skipped")
            .unwrap();
        let report = serde_json::to_value(json.finish(&Ok(()), None)).unwrap();
        assert_eq!(
            report,
            serde_json::json!({
                "success": true,
                "steps": [
                    {"step": 3, "title": "kastell doctor web-1", "outcome": "done",
                     "details": ["reachable"]},
                    {"step": 7, "title": "Snapshots: no cloud provider compiled in, skipped",
                     "outcome": "skipped", "details": []},
                ],
            })
        );
    }

    #[test]
    fn a_failure_or_a_signal_marks_the_step_under_way() {
        let mut json = Narration::json();
        json.step(1, "Sandbox").unwrap();
        json.step(2, "Fleet store").unwrap();
        let failed: Result<()> = Err(Error::unavailable("docker: not found").with_hint("x"));
        let report = serde_json::to_value(json.finish(&failed, None)).unwrap();
        assert_eq!(report["success"], false);
        assert_eq!(report["steps"][0]["outcome"], "done");
        assert_eq!(report["steps"][1]["outcome"], "failed");
        assert_eq!(report["error"]["kind"], "unavailable");
        assert!(
            report["error"]["message"]
                .as_str()
                .unwrap()
                .contains("docker: not found")
        );

        let mut json = Narration::json();
        json.step(1, "Sandbox").unwrap();
        let report = serde_json::to_value(json.finish(&Ok(()), Some("SIGINT"))).unwrap();
        assert_eq!(report["success"], false);
        assert_eq!(report["stoppedBy"], "SIGINT");
        assert_eq!(report["steps"][0]["outcome"], "stopped");
    }
}
