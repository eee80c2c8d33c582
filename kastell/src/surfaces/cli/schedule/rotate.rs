//! `schedule install --rotate-keep`: the snapshot rotation job's keep rules.

/// `daily=7,weekly=4` as `snapshot rotate`'s flags. Refuses an unknown
/// rule, a count that is not 1-1000 and a rule given twice, saying which.
pub(super) fn keep_rules(text: &str) -> std::result::Result<Vec<(&'static str, u32)>, String> {
    let mut rules: Vec<(&'static str, u32)> = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (rule, count) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?} is not RULE=N (e.g. daily=7)"))?;
        let flag = match rule.trim() {
            "last" => "--keep-last",
            "daily" => "--keep-daily",
            "weekly" => "--keep-weekly",
            "monthly" => "--keep-monthly",
            other => {
                return Err(format!(
                    "unknown keep rule {other:?}: use last, daily, weekly or monthly"
                ));
            }
        };
        let n: u32 = count
            .trim()
            .parse()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| format!("{part:?}: the count must be a number from 1 to 1000"))?;
        if rules.iter().any(|(f, _)| *f == flag) {
            return Err(format!("the rule {rule} is given twice"));
        }
        rules.push((flag, n));
    }
    if rules.is_empty() {
        return Err("name at least one keep rule, e.g. daily=7,weekly=4".to_owned());
    }
    Ok(rules)
}

/// `--rotate-keep` checked as the command line is read (the text kept).
pub(super) fn checked_keep_rules(text: &str) -> std::result::Result<String, String> {
    keep_rules(text).map(|_| text.to_owned())
}
