//! `kastell completions SHELL` and `kastell man [--dir DIR]`: the shell
//! completion script and the manual pages, generated from the command
//! line itself ([`Cli`]'s clap command, the operations included), so they
//! never fall behind it. Packages install what these two commands print.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, CommandFactory};
use clap_complete::Shell;
use kastell_core::{Error, Result};

use super::{Cli, Context};

/// The program name completions and manual pages are written for.
const BIN: &str = "kastell";

/// Arguments of `kastell completions`.
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Arguments of `kastell man`.
#[derive(Debug, Clone, Args)]
pub struct ManArgs {
    /// Write every page (kastell.1 and one per subcommand, such as
    /// kastell-backup-create.1) into this directory, created if missing;
    /// without it, the main page goes to stdout.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// The completion script for `shell`. Never fails: clap_complete writes
/// into memory.
pub(crate) fn completion_script(shell: Shell) -> Vec<u8> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, BIN, &mut script);
    script
}

/// `kastell completions SHELL`: the script on stdout.
pub(crate) fn completions(args: &CompletionsArgs, ctx: &Context) -> Result<ExitCode> {
    let script = completion_script(args.shell);
    ctx.out.line(String::from_utf8_lossy(&script).trim_end())?;
    Ok(ExitCode::SUCCESS)
}

/// The command the pages describe: without clap's `help` subcommand,
/// which has no page (each page has its own `--help`).
fn documented() -> clap::Command {
    Cli::command().disable_help_subcommand(true)
}

/// The main manual page (roff), as `kastell.1` written by [`write_pages`].
pub(crate) fn main_page() -> Result<Vec<u8>> {
    let mut page = Vec::new();
    clap_mangen::Man::new(documented())
        .render(&mut page)
        .map_err(|e| Error::io("rendering the manual page", e))?;
    Ok(page)
}

/// Writes the main page and one page per subcommand into `dir` (created
/// if missing) and returns kastell's pages there, sorted. Refuses when
/// `dir` cannot be created or written.
pub(crate) fn write_pages(dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    clap_mangen::generate_to(documented(), dir)
        .map_err(|e| Error::io(format!("writing manual pages into {}", dir.display()), e))?;
    let mut pages = pages_in(dir)?;
    pages.retain(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n == "kastell.1" || n.starts_with("kastell-"))
    });
    Ok(pages)
}

/// The `*.1` files in `dir`, sorted.
fn pages_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
    let mut pages: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "1"))
        .collect();
    pages.sort();
    Ok(pages)
}

/// `kastell man`: the main page on stdout, or with `--dir` every page
/// written there and listed (text) or returned as `{"pages": [...]}`.
pub(crate) fn man(args: &ManArgs, ctx: &Context) -> Result<ExitCode> {
    let Some(dir) = &args.dir else {
        let page = main_page()?;
        ctx.out.line(String::from_utf8_lossy(&page).trim_end())?;
        return Ok(ExitCode::SUCCESS);
    };
    let pages = write_pages(dir)?;
    if ctx.json {
        ctx.out.json(&serde_json::json!({ "pages": pages }))?;
    } else {
        ctx.out.line(format!(
            "Wrote {} manual page(s) into {}",
            pages.len(),
            dir.display()
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn every_shells_completion_names_the_subcommands() {
        for shell in Shell::value_variants() {
            let script = String::from_utf8(completion_script(*shell)).unwrap();
            for word in ["backup", "snapshot", "maintain", "completions"] {
                assert!(script.contains(word), "{shell}: no {word}");
            }
        }
    }

    #[test]
    fn the_main_page_is_roff_for_kastell() {
        let page = String::from_utf8(main_page().unwrap()).unwrap();
        assert!(page.starts_with(".ie \\n(.g .ds Aq"), "{}", &page[..80]);
        assert!(page.contains(".TH kastell 1"), "{page}");
        assert!(page.contains("backup"), "{page}");
    }

    #[test]
    fn pages_are_one_per_subcommand() {
        let dir = tempfile::tempdir().unwrap();
        let pages = write_pages(dir.path()).unwrap();
        let names: Vec<String> = pages
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for expected in [
            "kastell.1",
            "kastell-backup.1",
            "kastell-backup-create.1",
            "kastell-snapshot-restore.1",
            "kastell-man.1",
        ] {
            assert!(names.iter().any(|n| n == expected), "{expected}: {names:?}");
        }
    }
}
