//! The `kastell-mcp` command: the MCP server over stdio (SAFE_MODE on unless
//! `KASTELL_SAFE_MODE` says otherwise).

fn main() -> std::process::ExitCode {
    // Done already by kastell-pages' constructor, before any other (so
    // this is a no-op): the server holds the pages of code it runs, not
    // the pages around them (BENCHMARKS.md §1b). Calling it links the
    // crate, and with it the constructor.
    kastell_pages::map_touched_pages_only();
    kastell::surfaces::mcp::run_blocking()
}
