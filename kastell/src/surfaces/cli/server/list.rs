//! `kastell server list`.

#[allow(unused_imports)]
use crate::ops::Operation as _;
use crate::ops::ServerListOp;
use kastell_core::Result;

use crate::policy::Surface;
use crate::state::store::ServerRecord;
use crate::surfaces::cli::Context;

/// One table row for `record`.
fn row(record: &ServerRecord) -> Vec<String> {
    let provider = match (record.provider_id(), record.unknown_provider()) {
        (_, Some(unknown)) => format!("{unknown} (unknown, ignored)"),
        (Some(p), None) => p.to_owned(),
        (None, None) => "-".to_owned(),
    };
    vec![
        record.name.clone(),
        if record.ip.is_empty() {
            "-".to_owned()
        } else {
            record.ip.clone()
        },
        provider,
        record.platform_id().to_owned(),
        record.id.clone(),
    ]
}

/// Runs `kastell server list`: a table, or with `--json` the records
/// array as stored.
pub(super) fn run(ctx: &Context) -> Result<()> {
    let policy = ctx.policy()?;
    policy.check(ServerListOp::ID, Surface::Cli, None, |_| false)?;
    let records = ctx.store()?.servers()?;
    if ctx.out.is_json() {
        return ctx.out.json(&records);
    }
    if records.is_empty() {
        return ctx
            .out
            .line("No servers yet. Add one with: kastell server add --name <name> --ip <ip>");
    }
    let rows: Vec<Vec<String>> = records.iter().map(row).collect();
    ctx.out
        .table(&["NAME", "IP", "PROVIDER", "PLATFORM", "ID"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_mark_unknown_providers_and_bare_servers() {
        let mut rec = ServerRecord::new("9", "odd-1", "203.0.113.9");
        rec.provider = Some("acme".into());
        rec.mode = "bare".into();
        assert_eq!(
            row(&rec),
            vec![
                "odd-1",
                "203.0.113.9",
                "acme (unknown, ignored)",
                "bare",
                "9"
            ]
        );
        let rec = ServerRecord::new("manual-1", "web-1", "");
        assert_eq!(row(&rec), vec!["web-1", "-", "-", "coolify", "manual-1"]);
    }
}
