//! Strict tool arguments: a call naming an argument the tool does not have,
//! or one its action does not use, is refused before anything runs.
//!
//! An agent's typo must never change what happens: `skip_reboot: true`
//! for `skipReboot` would otherwise be dropped and the server rebooted.
//! Every tool declares, per action, the arguments that action reads
//! ([`ToolArgs`]); [`check`] refuses
//! - an unknown argument, naming the nearest known one
//!   (`unknown argument skip_reboot: did you mean skipReboot?`);
//! - a known argument the action does not use (`skipReboot` on
//!   `restart`), naming the actions that do.
//!
//! `null` counts as absent for the second rule (clients fill optional
//! fields with it), and so does an empty `server` (the tools' documented
//! meaning). Unknown names are refused whatever their value.

use kastell_core::{Error, ErrorKind};
use serde_json::{Map, Value};

/// One action of a tool and the arguments it reads besides `action`.
#[derive(Debug, Clone)]
pub(crate) struct ActionArgs {
    /// The action's name, as in the schema's `action` enum.
    pub(crate) action: &'static str,
    /// The arguments it reads, camelCase as on the wire.
    pub(crate) args: Vec<String>,
}

/// A tool's actions and their arguments (derived from the operations
/// that name the tool, see [`super::tools`]).
#[derive(Debug, Clone)]
pub(crate) struct ToolArgs {
    /// The tool's name.
    pub(crate) tool: &'static str,
    /// Every action, in the schema's order.
    pub(crate) actions: Vec<ActionArgs>,
}

/// The argument every tool has.
const ACTION: &str = "action";

impl ToolArgs {
    /// Every argument name the tool knows: `action`, then each action's in
    /// first-seen order.
    pub(crate) fn known(&self) -> Vec<&str> {
        let mut known = vec![ACTION];
        for name in self.actions.iter().flat_map(|a| a.args.iter()) {
            if !known.contains(&name.as_str()) {
                known.push(name);
            }
        }
        known
    }

    fn action(&self, name: &str) -> Option<&ActionArgs> {
        self.actions.iter().find(|a| a.action == name)
    }

    /// The actions that read `arg`.
    fn users_of(&self, arg: &str) -> Vec<&'static str> {
        self.actions
            .iter()
            .filter(|a| a.args.iter().any(|known| known == arg))
            .map(|a| a.action)
            .collect()
    }
}

fn refused(message: String, hint: String) -> Error {
    Error::new(ErrorKind::InvalidInput, message).with_hint(hint)
}

/// Whether `value` counts as not given (for the action rule).
fn absent(name: &str, value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => name == "server" && s.trim().is_empty(),
        _ => false,
    }
}

/// Refuses `arguments` naming what `tool` does not know, or what their
/// action does not use. An unknown or missing action is left to the
/// parser, which lists the valid ones.
pub(crate) fn check(tool: &ToolArgs, arguments: &Map<String, Value>) -> Result<(), Error> {
    let known = tool.known();
    let takes = || format!("{} takes: {}", tool.tool, known.join(", "));
    for name in arguments.keys() {
        if known.contains(&name.as_str()) {
            continue;
        }
        let message = match nearest(name, &known) {
            Some(near) => format!("unknown argument {name}: did you mean {near}?"),
            None => format!("unknown argument {name}"),
        };
        return Err(refused(
            message,
            format!("Nothing was run. {}; names are case-sensitive", takes()),
        ));
    }
    let Some(action) = arguments
        .get(ACTION)
        .and_then(Value::as_str)
        .and_then(|a| tool.action(a))
    else {
        return Ok(());
    };
    for (name, value) in arguments {
        if name == ACTION || action.args.iter().any(|a| a == name) || absent(name, value) {
            continue;
        }
        let users = tool.users_of(name);
        return Err(refused(
            format!(
                "argument {name} does not apply to {}: it is for {}",
                action.action,
                users.join(", ")
            ),
            format!(
                "Nothing was run. Leave {name} out, or call {} instead; {} takes: {}",
                users.join(" or "),
                action.action,
                std::iter::once(ACTION)
                    .chain(action.args.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    Ok(())
}

/// The letters and digits of `name`, lowercased: `skip_reboot`,
/// `Skip-Reboot` and `skipReboot` all become `skipreboot`.
fn folded(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The known name closest to `name`: the same letters in another case or
/// separator style first, else the one at the smallest edit distance when
/// that is at most a third of its length (and at least 1).
fn nearest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let wanted = folded(name);
    if let Some(same) = known.iter().find(|k| folded(k) == wanted) {
        return Some(same);
    }
    known
        .iter()
        .map(|k| (edit_distance(&wanted, &folded(k)), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance between `a` and `b`, over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            let insert = current[j] + 1;
            let delete = previous[j + 1] + 1;
            current.push(substitute.min(insert).min(delete));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn tool() -> ToolArgs {
        ToolArgs {
            tool: "server_maintain",
            actions: vec![
                ActionArgs {
                    action: "restart",
                    args: vec!["server".into()],
                },
                ActionArgs {
                    action: "maintain",
                    args: vec![
                        "server".into(),
                        "skipReboot".into(),
                        "rebootEvenIfUnhealthy".into(),
                    ],
                },
            ],
        }
    }

    fn run(value: Value) -> Result<(), String> {
        let Value::Object(map) = value else {
            return Err("not an object".into());
        };
        check(&tool(), &map).map_err(|e| e.to_string())
    }

    #[test]
    fn a_misspelt_argument_names_the_nearest_known_one() {
        let err = run(json!({"action": "maintain", "skip_reboot": true})).unwrap_err();
        assert!(
            err.contains("unknown argument skip_reboot: did you mean skipReboot?"),
            "{err}"
        );
        let err = run(json!({"action": "maintain", "skipReboto": true})).unwrap_err();
        assert!(err.contains("did you mean skipReboot?"), "{err}");
        let err = run(json!({"action": "maintain", "servr": "web"})).unwrap_err();
        assert!(err.contains("did you mean server?"), "{err}");
        let err = run(json!({"action": "maintain", "colour": "blue"})).unwrap_err();
        assert!(
            err.contains("unknown argument colour") && !err.contains("mean"),
            "{err}"
        );
    }

    #[test]
    fn an_argument_of_another_action_is_refused_unless_absent() {
        let err = run(json!({"action": "restart", "skipReboot": false})).unwrap_err();
        assert!(
            err.contains("argument skipReboot does not apply to restart: it is for maintain"),
            "{err}"
        );
        assert!(run(json!({"action": "restart", "skipReboot": null})).is_ok());
        assert!(run(json!({"action": "restart", "server": "web"})).is_ok());
        assert!(run(json!({"action": "maintain", "skipReboot": true})).is_ok());
        // An unknown action is the parser's to refuse.
        assert!(run(json!({"action": "explode", "skipReboot": true})).is_ok());
    }

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
