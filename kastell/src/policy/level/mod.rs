//! Safety levels: how much an operation may do, per fleet, tag and server.
//!
//! A level admits every operation whose [`Category`] is at or below it:
//! `read-only` (lists, status, logs, verification), `safe-writes`
//! (backups, snapshot creation, adding a server), `disruptive` (updates,
//! reboots, maintenance) and `destructive` (restores, snapshot deletion,
//! removing a server).
//!
//! Where a level comes from, for one server:
//! 1. `KASTELL_DIR/safety.json`: the server's own entry, else the lowest
//!    level among the entries of its tags, else the file's `level`, else
//!    the surface's default (`safe-writes` over MCP, `destructive` on the
//!    command line);
//! 2. `KASTELL_SAFETY_LEVEL`, when set, is a ceiling over all of that (an
//!    agent's MCP configuration can make it read-only whatever the file
//!    says).
//!
//! Entries may name maintenance windows (UTC). An entry is open when ANY
//! of its windows is open (`["Sat 02:00-04:00", "Sun 02:00-04:00"]` opens
//! on both nights); disruptive and destructive work on a server is
//! admitted only when EVERY entry that applies to it is open: the file's
//! own `windows`, each of the server's tags and the server's own entry
//! (the server's entry wins for the level, never over its tags' windows).
//! Levels are used only when configured
//! (the variable or the file exists); see [`super::Policy::check`] for how
//! they combine with SAFE_MODE.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, Duration, NaiveTime, Utc};
use kastell_core::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};

use super::{Category, Surface};
use crate::env::Env;
use crate::state::store::ServerRecord;

/// The variable that caps the level of every server (`read-only`,
/// `safe-writes`, `disruptive` or `destructive`).
pub const SAFETY_LEVEL_VAR: &str = "KASTELL_SAFETY_LEVEL";

/// The safety configuration's file name in `KASTELL_DIR`.
pub const SAFETY_FILE: &str = "safety.json";

/// How much an operation may do, in rising order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SafetyLevel {
    /// Reads only.
    ReadOnly,
    /// Adds without taking away: backups, snapshots, fleet records.
    SafeWrites,
    /// Also interrupts service: updates, reboots, maintenance.
    Disruptive,
    /// Also overwrites and deletes: restores, snapshot deletion.
    Destructive,
}

impl SafetyLevel {
    /// Every level, lowest first.
    pub const ALL: [SafetyLevel; 4] = [
        Self::ReadOnly,
        Self::SafeWrites,
        Self::Disruptive,
        Self::Destructive,
    ];

    /// `read-only`, `safe-writes`, `disruptive` or `destructive`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ReadOnly => "read-only",
            Self::SafeWrites => "safe-writes",
            Self::Disruptive => "disruptive",
            Self::Destructive => "destructive",
        }
    }

    /// The lowest level that admits `category`.
    pub const fn needed_for(category: Category) -> Self {
        match category {
            Category::Read => Self::ReadOnly,
            Category::SafeWrite => Self::SafeWrites,
            Category::Disruptive => Self::Disruptive,
            Category::Destructive => Self::Destructive,
        }
    }

    /// Whether this level admits work of `category`.
    pub fn admits(self, category: Category) -> bool {
        Self::needed_for(category) <= self
    }

    /// Parses a level name (case-insensitive, surrounding blanks ignored);
    /// refuses anything else, naming the four levels.
    pub fn parse(value: &str) -> Result<Self> {
        let wanted = value.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|l| l.as_str() == wanted)
            .ok_or_else(|| {
                Error::invalid_input(format!(
                    "Unknown safety level {}",
                    crate::state::store::display_safe(value)
                ))
                .with_hint("Use read-only, safe-writes, disruptive or destructive")
            })
    }

    /// The surface's level for servers the configuration does not name:
    /// `safe-writes` over MCP, `destructive` on the command line (the same
    /// split as SAFE_MODE's defaults).
    pub const fn default_for(surface: Surface) -> Self {
        match surface {
            Surface::Mcp => Self::SafeWrites,
            Surface::Cli => Self::Destructive,
        }
    }
}

impl std::fmt::Display for SafetyLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A weekly maintenance window in UTC: `Sat 02:00-04:00`, `Mon-Fri
/// 22:00-02:00` (ending the next day), `Sat,Sun 01:00-05:00`, `daily
/// 03:00-03:30`. The end may be `24:00`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    text: String,
    days: [bool; 7],
    start: u32,
    minutes: u32,
}

const DAY_NAMES: [(&str, &str); 7] = [
    ("mon", "monday"),
    ("tue", "tuesday"),
    ("wed", "wednesday"),
    ("thu", "thursday"),
    ("fri", "friday"),
    ("sat", "saturday"),
    ("sun", "sunday"),
];

/// Monday = 0 for a day's three-letter or full English name, any case.
fn day_index(name: &str) -> Option<usize> {
    let lower = name.trim().to_ascii_lowercase();
    DAY_NAMES
        .iter()
        .position(|(short, long)| lower == *short || lower == *long)
}

fn minute_of_day(value: &str) -> Option<u32> {
    let (h, m) = value.trim().split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 || h == 24 && m == 0).then_some(h * 60 + m)
}

impl Window {
    /// Parses a window; refuses a malformed one, saying what form is
    /// expected.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::invalid_input(format!(
                "Invalid maintenance window {}: {why}",
                crate::state::store::display_safe(text)
            ))
            .with_hint("Write DAYS HH:MM-HH:MM in UTC, e.g. \"Sat 02:00-04:00\", \"Mon-Fri 22:00-02:00\" or \"daily 03:00-03:30\"")
        };
        let (days_part, times) = text
            .trim()
            .split_once(char::is_whitespace)
            .ok_or_else(|| bad("expected days, then a time range"))?;
        let mut days = [false; 7];
        for part in days_part.split(',') {
            let part = part.trim();
            if part.eq_ignore_ascii_case("daily") || part == "*" {
                days = [true; 7];
            } else if let Some((from, to)) = part.split_once('-') {
                let (from, to) = (
                    day_index(from).ok_or_else(|| bad("unknown day"))?,
                    day_index(to).ok_or_else(|| bad("unknown day"))?,
                );
                let mut d = from;
                loop {
                    days[d] = true;
                    if d == to {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            } else {
                days[day_index(part).ok_or_else(|| bad("unknown day"))?] = true;
            }
        }
        let (start, end) = times
            .trim()
            .split_once('-')
            .ok_or_else(|| bad("expected a time range HH:MM-HH:MM"))?;
        let start = minute_of_day(start).ok_or_else(|| bad("the start is not HH:MM"))?;
        let end = minute_of_day(end).ok_or_else(|| bad("the end is not HH:MM"))?;
        if start == 24 * 60 {
            return Err(bad("a window cannot start at 24:00"));
        }
        let minutes = if end > start {
            end - start
        } else {
            end + 24 * 60 - start
        };
        Ok(Self {
            text: text.trim().to_owned(),
            days,
            start,
            minutes,
        })
    }

    /// The window as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The start of each opening of this window from the day before `now`
    /// for eight days (so one that began yesterday and is still open
    /// counts).
    fn openings(&self, now: DateTime<Utc>) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        let first = now.date_naive() - Duration::days(1);
        (0..9).filter_map(move |offset| {
            let day = first + Duration::days(offset);
            let index = day.weekday().num_days_from_monday() as usize;
            if !self.days[index] {
                return None;
            }
            let start = NaiveTime::from_hms_opt(self.start / 60, self.start % 60, 0)?;
            Some(day.and_time(start).and_utc())
        })
    }

    /// Whether `now` is inside the window.
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        let length = Duration::minutes(i64::from(self.minutes));
        self.openings(now)
            .any(|start| start <= now && now < start + length)
    }

    /// When the window next opens after `now` (within the coming week).
    pub fn next_opening(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.openings(now).find(|start| *start > now)
    }
}

impl Serialize for Window {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Window::parse(&text).map_err(|e| serde::de::Error::custom(e.to_string()))
    }
}

/// One entry of the safety file: a level, windows, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SafetyEntry {
    /// The most the entry's servers may do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<SafetyLevel>,
    /// When disruptive and destructive work is admitted (UTC); empty means
    /// at any time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<Window>,
    /// Who confirms destructive MCP calls on the entry's servers
    /// (`ask`, `approve`, `plan-token`, `off`; see [`super::ConfirmMode`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm: Option<super::ConfirmMode>,
}

/// `KASTELL_DIR/safety.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SafetyFile {
    /// The level of servers with no entry of their own or of a tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<SafetyLevel>,
    /// Windows for every server (combined with those of its entries).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<Window>,
    /// Who confirms destructive MCP calls on every server (the strictest
    /// of this and the server's entries wins; see [`super::ConfirmMode`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm: Option<super::ConfirmMode>,
    /// Whether a restore may skip its safety copy (`--safety none`):
    /// refused while levels are configured unless this is `true`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restore_without_safety_copy: bool,
    /// Entries by tag (`prod`, `staging`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, SafetyEntry>,
    /// Entries by server name; a server's own entry wins over its tags'.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub servers: BTreeMap<String, SafetyEntry>,
}

/// The safety configuration in force: the file (if any) and the ceiling
/// from the environment (if set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SafetyConfig {
    /// The file's content, when it exists.
    pub file: Option<SafetyFile>,
    /// Where the file is (or would be).
    pub path: Option<PathBuf>,
    /// `KASTELL_SAFETY_LEVEL`, when set.
    pub ceiling: Option<SafetyLevel>,
}

/// What one server may do now, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Allowance {
    /// The level in force.
    pub level: SafetyLevel,
    /// Where it came from (`server web-1 in safety.json`, `tag prod in
    /// safety.json`, `KASTELL_SAFETY_LEVEL`, `default for mcp`).
    pub source: String,
    /// The windows that gate disruptive and destructive work, entry by
    /// entry: each entry that names windows must be open.
    pub windows: Vec<EntryWindows>,
}

/// The maintenance windows of one entry that applies to a server: open
/// when any of them is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryWindows {
    /// Which entry (`safety.json`, `tag prod in safety.json`, `server
    /// web-1 in safety.json`).
    pub entry: String,
    /// Its windows, as written.
    pub windows: Vec<Window>,
}

impl EntryWindows {
    /// Whether any of the entry's windows contains `now`.
    pub fn open(&self, now: DateTime<Utc>) -> bool {
        self.windows.iter().any(|w| w.contains(now))
    }

    /// `tag prod in safety.json (Sat 02:00-04:00, Sun 02:00-04:00 UTC)`.
    pub fn describe(&self) -> String {
        let shown: Vec<&str> = self.windows.iter().map(Window::as_str).collect();
        format!("{} ({} UTC)", self.entry, shown.join(", "))
    }
}

/// The first moment after `now`, within the coming week, when every one
/// of `entries` is open at once: such a moment always starts with the
/// opening of one of their windows.
fn next_all_open(entries: &[EntryWindows], now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut starts: Vec<DateTime<Utc>> = entries
        .iter()
        .flat_map(|e| e.windows.iter())
        .flat_map(|w| w.openings(now).filter(|start| *start > now))
        .collect();
    starts.sort();
    starts
        .into_iter()
        .find(|start| entries.iter().all(|e| e.open(*start)))
}

/// Parses the safety file `path` holding `bytes`; refuses
/// (`InvalidInput`) what is not valid JSON of the documented shape,
/// naming the file, the line and the column, and saying to fix it.
fn parse_file(path: &Path, bytes: &[u8]) -> Result<SafetyFile> {
    serde_json::from_slice(bytes).map_err(|e| {
        let text = e.to_string();
        let what = text.split(" at line ").next().unwrap_or(&text);
        Error::invalid_input(format!(
            "{} is not valid: {what} (line {}, column {})",
            path.display(),
            e.line(),
            e.column()
        ))
        .with_hint(format!(
            "Fix {} at line {}, column {} (see README: safety levels), or remove it; until \
             then only reads run",
            path.display(),
            e.line(),
            e.column()
        ))
    })
}

impl SafetyConfig {
    /// Reads the ceiling from `env` and the file from `dir` (when given).
    /// Refuses an unknown level in the variable, a file that is not
    /// valid JSON of the documented shape (naming its line and column), so
    /// that a typo never silently widens what an agent may do, and a
    /// `safety.json` that is not a regular file (a FIFO would block).
    pub fn load(env: &Env, dir: Option<&Path>) -> Result<Self> {
        let ceiling = match env.get(SAFETY_LEVEL_VAR) {
            Some(value) => Some(SafetyLevel::parse(&value).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!("{SAFETY_LEVEL_VAR}: {}", e.message()),
                )
                .with_hint("Set it to read-only, safe-writes, disruptive or destructive")
            })?),
            None => None,
        };
        let path = dir.map(|d| d.join(SAFETY_FILE));
        let file = match &path {
            Some(path) => match crate::state::store::read_regular(path)? {
                Some(bytes) => Some(parse_file(path, &bytes)?),
                None => None,
            },
            None => None,
        };
        Ok(Self {
            file,
            path,
            ceiling,
        })
    }

    /// Whether levels are configured at all (the variable or the file).
    pub fn configured(&self) -> bool {
        self.ceiling.is_some() || self.file.is_some()
    }

    /// What `server` may do from `surface` (`None`: an operation on no
    /// particular server, to which the file's `level` and the ceiling
    /// apply).
    pub fn allowance(&self, surface: Surface, server: Option<&ServerRecord>) -> Allowance {
        let mut level = SafetyLevel::default_for(surface);
        let mut source = format!("default for {}", surface.as_str());
        let mut windows = Vec::new();
        let mut gate = |entry: String, list: &[Window]| {
            if !list.is_empty() {
                windows.push(EntryWindows {
                    entry,
                    windows: list.to_vec(),
                });
            }
        };
        if let Some(file) = &self.file {
            gate(SAFETY_FILE.to_owned(), &file.windows);
            if let Some(l) = file.level {
                level = l;
                source = format!("{SAFETY_FILE} level");
            }
            if let Some(server) = server {
                // Every tag's windows apply; the lowest tag level is the
                // level unless the server's own entry sets one.
                let mut lowest: Option<(SafetyLevel, &str)> = None;
                for tag in &server.tags {
                    let Some(entry) = file.tags.get(tag) else {
                        continue;
                    };
                    gate(format!("tag {tag} in {SAFETY_FILE}"), &entry.windows);
                    if let Some(l) = entry.level
                        && lowest.is_none_or(|(low, _)| l < low)
                    {
                        lowest = Some((l, tag));
                    }
                }
                if let Some((l, tag)) = lowest {
                    level = l;
                    source = format!("tag {tag} in {SAFETY_FILE}");
                }
                if let Some(entry) = file.servers.get(&server.name) {
                    gate(
                        format!("server {} in {SAFETY_FILE}", server.name),
                        &entry.windows,
                    );
                    if let Some(l) = entry.level {
                        level = l;
                        source = format!("server {} in {SAFETY_FILE}", server.name);
                    }
                }
            }
        }
        if let Some(ceiling) = self.ceiling
            && ceiling < level
        {
            level = ceiling;
            source = SAFETY_LEVEL_VAR.to_owned();
        }
        Allowance {
            level,
            source,
            windows,
        }
    }

    /// The highest level any server of `servers` may have now (for an
    /// empty fleet, the level of a server the file does not name): what
    /// `tools/list` still offers.
    pub fn highest(&self, surface: Surface, servers: &[ServerRecord]) -> SafetyLevel {
        servers
            .iter()
            .map(|s| self.allowance(surface, Some(s)).level)
            .max()
            .unwrap_or_else(|| self.allowance(surface, None).level)
    }
}

impl Allowance {
    /// Refuses work of `category` called `action` on `server` that this
    /// allowance does not admit at `now`: above the level, or disruptive
    /// or destructive while an entry that applies has none of its windows
    /// open. The error names the level and where it came from, or the
    /// closed entries with their windows and when all are next open, and
    /// what to do.
    pub fn admit(
        &self,
        action: &str,
        category: Category,
        server: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let on = server.map(|s| format!(" on {s}")).unwrap_or_default();
        if !self.level.admits(category) {
            let needed = SafetyLevel::needed_for(category);
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "{action} is {} work and needs safety level {needed}; the level{on} is {} ({})",
                    category.as_str(),
                    self.level,
                    self.source
                ),
            )
            .with_hint(format!(
                "Raise the level in KASTELL_DIR/{SAFETY_FILE} (or {SAFETY_LEVEL_VAR}) to {needed} if {action} should be allowed{on}"
            )));
        }
        let closed: Vec<&EntryWindows> = self.windows.iter().filter(|e| !e.open(now)).collect();
        if category >= Category::Disruptive && !closed.is_empty() {
            let shown: Vec<String> = closed.iter().map(|e| e.describe()).collect();
            let next = match next_all_open(&self.windows, now) {
                Some(t) => format!("; the next opens at {}", t.format("%Y-%m-%d %H:%M UTC")),
                None => "; they are never all open at once within a week".to_owned(),
            };
            let every = if self.windows.len() > 1 {
                format!(
                    " (all {} entries that apply must be open at once)",
                    self.windows.len()
                )
            } else {
                String::new()
            };
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "{action} is {} work, admitted{on} only inside its maintenance window{every}; \
                     closed now: {}{next}",
                    category.as_str(),
                    shown.join("; "),
                ),
            )
            .with_hint(format!(
                "Run it inside the window, or change the windows in KASTELL_DIR/{SAFETY_FILE}"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
