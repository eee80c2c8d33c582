//! Colour for human output: statuses (ok, failed, skipped, warning), error
//! blocks and headings.
//!
//! Whether a stream gets colour is anstream's decision, the one clap makes
//! for its help: `NO_COLOR` turns it off, `CLICOLOR_FORCE` on, and
//! otherwise only a terminal gets it (never a pipe or a file, never
//! `TERM=dumb`). `--json` never has colour.

use anstream::ColorChoice;
use anstyle::{AnsiColor, Effects, Style};

/// What a piece of text is, for its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tone {
    /// Succeeded (`ok`, `success`, `OK`).
    Ok,
    /// Failed (`FAILED`, `failure`, `error:`).
    Failed,
    /// Did not run (`skipped`).
    Skipped,
    /// Worth a look (`warning:`, a safety backup's mark).
    Warning,
    /// A heading (a report's first line, a table's header row).
    Heading,
}

impl Tone {
    fn style(self) -> Style {
        match self {
            Self::Ok => AnsiColor::Green.on_default(),
            Self::Failed => AnsiColor::Red.on_default().effects(Effects::BOLD),
            Self::Skipped => Style::new().effects(Effects::DIMMED),
            Self::Warning => AnsiColor::Yellow.on_default(),
            Self::Heading => Style::new().effects(Effects::BOLD),
        }
    }

    /// The tone of a status word as the payloads and tables write it
    /// (`success`, `failure`, `skipped`, `ok`, `FAILED`, `never`), if it
    /// is one.
    pub(crate) fn of_status(word: &str) -> Option<Self> {
        match word.trim().to_ascii_lowercase().as_str() {
            "ok" | "success" | "complete" | "passed" | "yes" => Some(Self::Ok),
            "failed" | "failure" | "corrupt" | "error" => Some(Self::Failed),
            "skipped" | "skip" => Some(Self::Skipped),
            "warning" | "unverified_legacy" => Some(Self::Warning),
            _ => None,
        }
    }
}

/// Whether to colour one stream's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Paint {
    on: bool,
}

impl Paint {
    /// No colour.
    #[cfg(test)]
    pub(crate) const fn none() -> Self {
        Self { on: false }
    }

    /// Colour for stdout, unless `json`.
    pub(crate) fn stdout(json: bool) -> Self {
        Self {
            on: !json && wants_colour(anstream::AutoStream::choice(&std::io::stdout())),
        }
    }

    /// Colour for stderr.
    pub(crate) fn stderr() -> Self {
        Self {
            on: wants_colour(anstream::AutoStream::choice(&std::io::stderr())),
        }
    }

    /// `text` in `tone`'s colour, or as it is without colour.
    pub(crate) fn tone(self, tone: Tone, text: &str) -> String {
        if !self.on || text.is_empty() {
            return text.to_owned();
        }
        let style = tone.style();
        format!("{style}{text}{style:#}")
    }

    /// A status word in its colour (as it is when it is no status word).
    pub(crate) fn status(self, word: &str) -> String {
        match Tone::of_status(word) {
            Some(tone) => self.tone(tone, word),
            None => word.to_owned(),
        }
    }
}

fn wants_colour(choice: ColorChoice) -> bool {
    matches!(choice, ColorChoice::Always | ColorChoice::AlwaysAnsi)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Colour on, whatever the stream.
    pub(crate) fn forced() -> Paint {
        Paint { on: true }
    }

    #[test]
    fn statuses_get_their_colour_only_when_on() {
        let on = Paint { on: true };
        assert_eq!(on.status("failure"), "\u{1b}[1m\u{1b}[31mfailure\u{1b}[0m");
        assert!(on.status("success").starts_with("\u{1b}[32m"));
        assert_eq!(on.status("12 ms"), "12 ms");
        assert_eq!(Paint::none().status("failure"), "failure");
        assert_eq!(Paint::none().tone(Tone::Heading, "x"), "x");
    }
}
