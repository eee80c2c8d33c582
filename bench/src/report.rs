//! The Markdown report: sections of prose and tables, printed as they
//! finish and written to BENCHMARKS.md at the end with the machine and date.

use std::fmt::Write as _;

/// One benchmark's part of the report.
#[derive(Debug, Clone)]
pub(crate) struct Section {
    title: String,
    body: String,
}

impl Section {
    /// An empty section called `title`.
    pub(crate) fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            body: String::new(),
        }
    }

    /// Adds a paragraph.
    pub(crate) fn para(&mut self, text: impl AsRef<str>) {
        let _ = writeln!(self.body, "{}\n", text.as_ref());
    }

    /// Adds a table with `header` and `rows`.
    pub(crate) fn table(&mut self, header: &[&str], rows: Vec<Vec<String>>) {
        let _ = writeln!(self.body, "| {} |", header.join(" | "));
        let _ = writeln!(
            self.body,
            "|{}",
            header.iter().map(|_| "---|").collect::<String>()
        );
        for row in rows {
            let _ = writeln!(self.body, "| {} |", row.join(" | "));
        }
        self.body.push('\n');
    }

    /// The section as Markdown.
    pub(crate) fn markdown(&self) -> String {
        format!("## {}\n\n{}", self.title, self.body)
    }
}

/// What the machine is, for the report's header.
pub(crate) fn machine() -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_kib: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let os = read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|l| l.trim_matches('"').to_owned())
        .unwrap_or_else(|| "unknown OS".to_owned());
    format!(
        "{os}, {cpu}, {cores} cores, {:.0} GiB RAM",
        mem_kib as f64 / 1024.0 / 1024.0
    )
}

/// The whole report.
pub(crate) fn document(sections: &[Section], command: &str) -> String {
    let mut text = format!(
        "# kastell benchmarks\n\n\
         Run on {} ({}). Reproduce with `{command}`.\n\n\
         Every figure is paired with a baseline measured in the same run, or is a ratio to one; \
         none is asserted by a test. Throughput is in MB/s (10^6 bytes).\n\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        machine()
    );
    for section in sections {
        text.push_str(&section.markdown());
    }
    text
}
