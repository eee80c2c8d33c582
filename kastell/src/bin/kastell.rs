//! The kastell CLI.
fn main() {}
