//! Backups through the real PaaS hosts: killed mid-run, real dumps, bytes on the wire;
//! adaptive compression over real and shaped links.

mod adapt;
mod apps;
mod drill;
mod hostile;
mod killed;
mod parallel;
mod real;
mod wire;
