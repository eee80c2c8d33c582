//! The `kastell-mcp` command: the MCP server over stdio (SAFE_MODE on unless
//! `KASTELL_SAFE_MODE` says otherwise).

fn main() -> std::process::ExitCode {
    kastell::surfaces::mcp::run_blocking()
}
