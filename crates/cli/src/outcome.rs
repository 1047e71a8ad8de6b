//! What a step reports, written once by the step runner: the decision, the
//! exit code, the outputs, the job summary and the annotations, on every
//! exit code (a bad input and a provider failure too).
//!
//! Steps build an [`Outcome`] and return it; only [`Outcome::publish`]
//! writes `$GITHUB_OUTPUT`, `$GITHUB_STEP_SUMMARY` and annotations, so a
//! step that fails half-way still leaves its decision, the record's status
//! and weight, and why, where a workflow reads them.

use crate::summary;
use sluice_core::lifecycle::Refused;
use sluice_core::record::Record;
use sluice_core::{Exit, Failure, gha};
use std::path::Path;

/// One step's report.
#[derive(Debug)]
pub struct Outcome {
    pub exit: Exit,
    decision: String,
    outputs: Vec<(String, String)>,
    summary: String,
    error: Option<(String, String)>,
}

impl Outcome {
    /// A report with its exit code and decision (`allow`, `pass`, `promoted`, ...).
    pub fn new(exit: Exit, decision: impl Into<String>) -> Outcome {
        Outcome { exit, decision: decision.into(), outputs: Vec::new(), summary: String::new(), error: None }
    }

    /// Exit 0.
    pub fn ok(decision: impl Into<String>) -> Outcome {
        Outcome::new(Exit::OK, decision)
    }

    /// Exit 1: a decision said no.
    pub fn declined(decision: impl Into<String>) -> Outcome {
        Outcome::new(Exit::DECLINED, decision)
    }

    /// A refused lifecycle move: exit 1, `decision=refused`, the refusal in
    /// the summary and as an error annotation.
    pub fn refused(step: &str, record: &Record, refused: &Refused) -> Outcome {
        Outcome::declined("refused")
            .summary(format!(
                "{}{}\n",
                summary::heading(step, record, "refused"),
                gha::escape_markdown(&refused.to_string())
            ))
            .error(&format!("{step} refused"), &refused.to_string())
    }

    /// Another output (`decision`, `record`, `status`, `weight` and
    /// `exit-code` are always written).
    pub fn output(mut self, name: &str, value: impl Into<String>) -> Outcome {
        self.outputs.push((name.to_owned(), value.into()));
        self
    }

    /// Appends Markdown to the job summary.
    pub fn summary(mut self, markdown: impl AsRef<str>) -> Outcome {
        self.summary.push_str(markdown.as_ref());
        self
    }

    /// An error annotation (one per step).
    pub fn error(mut self, title: &str, message: &str) -> Outcome {
        self.error = Some((title.to_owned(), message.to_owned()));
        self
    }

    /// The same report with another exit code.
    pub fn with_exit(mut self, exit: Exit) -> Outcome {
        self.exit = exit;
        self
    }

    pub fn decision(&self) -> &str {
        &self.decision
    }

    /// The report of a step that failed: bad input (exit 2), a provider
    /// (exit 3) or a cancellation. Says where the deployment stands when the
    /// record can be read.
    pub fn from_failure(step: &str, failure: &Failure, record: Option<&Record>) -> Outcome {
        let (decision, kind) = match failure.exit {
            Exit::BAD_INPUT => ("invalid", "bad input"),
            Exit::PROVIDER => ("error", "provider failure"),
            Exit::INTERRUPTED | Exit::TERMINATED => ("cancelled", "cancelled"),
            Exit::DECLINED => ("refused", "refused"),
            _ => ("error", "failure"),
        };
        let message = format!("{:#}", failure.error);
        let mut markdown = match record {
            Some(record) => summary::heading(step, record, kind),
            None => format!("### sluice {step}: {kind}\n\n"),
        };
        markdown.push_str(&format!(
            "**{kind}** (exit {}): {}\n\n",
            failure.exit.code(),
            gha::escape_markdown(&message)
        ));
        if let Some(record) = record {
            let next = record.status().next(record.candidate_weight);
            markdown.push_str(&format!(
                "The deployment is {}; next: {}.\n",
                gha::escape_markdown(&record.describe()),
                gha::escape_markdown(next.text)
            ));
        }
        Outcome::new(failure.exit, decision).summary(markdown).error(&format!("{step}: {kind}"), &message)
    }

    /// Writes everything once: the annotation, the summary, and the outputs
    /// (with the record's status and weight as saved, when `record_path`
    /// names a record that loads).
    pub fn publish(self, record_path: Option<&Path>) -> std::process::ExitCode {
        if let Some((title, message)) = &self.error {
            gha::error(title, message);
        }
        if !self.summary.is_empty() {
            summary::write(&self.summary);
        }
        let mut outputs = gha::Outputs::default();
        outputs.set("decision", self.decision.clone());
        outputs.set("exit-code", self.exit.code().to_string());
        if let Some(path) = record_path {
            outputs.set("record", path.display().to_string());
            if let Ok(record) = Record::load(path, &Default::default()) {
                outputs.set("status", record.status().as_str());
                outputs.set("weight", record.candidate_weight.to_string());
            }
        }
        for (name, value) in self.outputs {
            outputs.set(&name, value);
        }
        if let Err(e) = outputs.flush() {
            gha::warning(&format!("could not write the step outputs: {e}"));
        }
        self.exit.into()
    }
}
