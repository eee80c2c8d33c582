//! What Coolify and Dokploy share, tested on scripted hosts: commands, health, backup and restore, the update script. One binary, one module per file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod backup_restore;
mod commands;
mod common;
mod health;
mod secret;
mod update_script;
