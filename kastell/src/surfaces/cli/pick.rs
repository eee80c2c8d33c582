//! The interactive server picker: when a command names no server, stdin
//! and stdout are a terminal and the fleet has more than one server, the
//! user picks one from a list (arrow keys or j/k, Enter; Esc or q
//! cancels). The list is drawn on stderr, so stdout carries only the
//! result. Anywhere else nothing is asked and the store's resolution
//! decides (the only server, or an error naming the servers).

use std::io::IsTerminal;

use kastell_core::{Error, Result};

use crate::state::store::{FleetStore, ServerRecord};

/// What the picker decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Picked {
    /// Nothing was asked: a server was named, there is no terminal, or
    /// there are fewer than two servers to choose from.
    NotAsked,
    /// The user chose this server (its name).
    Server(String),
    /// The user cancelled (Esc or q): nothing runs, exit code 0.
    Cancelled,
}

/// Asks which server when `named` is `None`, stdin and stdout are a
/// terminal and `store` has more than one usable server. Refuses only when
/// the store cannot be read or the terminal fails.
pub(crate) fn server(store: &FleetStore, named: Option<&str>) -> Result<Picked> {
    if named.is_some() || !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        return Ok(Picked::NotAsked);
    }
    let servers: Vec<ServerRecord> = store
        .servers()?
        .into_iter()
        .filter(|s| s.unknown_provider().is_none())
        .collect();
    if servers.len() < 2 {
        return Ok(Picked::NotAsked);
    }
    let items: Vec<String> = servers.iter().map(label).collect();
    let chosen = dialoguer::Select::new()
        .with_prompt("Which server? (Esc to cancel)")
        .items(&items)
        .default(0)
        .interact_opt()
        .map_err(|e| match e {
            dialoguer::Error::IO(io) => Error::io("asking which server", io),
        })?;
    Ok(match chosen.and_then(|i| servers.get(i)) {
        Some(server) => Picked::Server(server.name.clone()),
        None => Picked::Cancelled,
    })
}

/// `web-1  203.0.113.10  hetzner/coolify`: a server as the list shows it.
fn label(server: &ServerRecord) -> String {
    let provider = server.provider.as_deref().unwrap_or("manual");
    let platform = server.platform.as_deref().unwrap_or("-");
    format!(
        "{}  {}  {provider}/{platform}",
        crate::surfaces::cli::output::printable(&server.name),
        server.ip
    )
}
