//! Screening a server's configuration before any validator reads it: the
//! archive is hostile input, so `nginx.conf` (and every file it includes)
//! and `sshd_config` (and its `Include`s) are read here first, inside the
//! unpacked tree only, and refused when they would load code on this
//! machine (`load_module`, embedded Perl, njs, Lua, an OpenSSL engine) or
//! name a file outside the archive (an absolute include elsewhere, a `..`
//! above it, a symlink out of it).

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use super::tree::View;

/// How many files one configuration may include in all.
const MAX_FILES: usize = 512;
/// How deep includes may nest.
const MAX_DEPTH: usize = 16;
/// The largest configuration file read.
const MAX_BYTES: u64 = 4 << 20;

/// Why a configuration is not handed to its validator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Refusal {
    /// The file, as the server names it (`/etc/nginx/nginx.conf`).
    pub file: String,
    /// Its line (1-based).
    pub line: usize,
    /// The directive as written (cut).
    pub directive: String,
    /// Why.
    pub why: String,
    /// Whether the only trouble is a file outside the archive (an absolute
    /// path elsewhere, a symlink out of it): a file only the server has,
    /// so the configuration cannot be validated here, which neither proves
    /// nor fails it. A `..` climbing out of the archive and code that
    /// would load here are not that: they fail the check.
    pub outside: bool,
}

/// Whether `why` (a [`View::resolve`] refusal) is only a file outside the
/// archive, not a `..` climbing out of it.
pub(super) fn only_outside(why: &str) -> bool {
    !why.contains("(through ..)")
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = crate::state::store::display_safe(&self.file);
        if self.line == 0 {
            return write!(f, "{file}: {}", self.why);
        }
        write!(
            f,
            "{file}:{}: {}: {}",
            self.line,
            crate::state::store::display_safe(&self.directive),
            self.why
        )
    }
}

/// What screening nginx's configuration found.
#[derive(Debug, Default)]
pub(super) struct NginxScreen {
    /// Everything refused, in the order found.
    pub refusals: Vec<Refusal>,
    /// Directories the configuration writes into at `nginx -t` (its pid
    /// file's, its logs', its temporary paths'), for the sandbox to
    /// provide as scratch space.
    pub writable: BTreeSet<String>,
}

/// Directives that make nginx load or run code while it reads its
/// configuration, and why each is refused.
fn code_loading(name: &str, args: &[String]) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    if lower == "load_module" {
        Some("a server-supplied module would run on this machine")
    } else if lower.starts_with("perl") {
        Some("embedded Perl from the server would run on this machine")
    } else if lower.starts_with("js_") {
        Some("njs code from the server would run on this machine")
    } else if lower.contains("lua") {
        Some("Lua code from the server would run on this machine")
    } else if lower == "ssl_engine"
        || (lower.starts_with("ssl_") && args.iter().any(|a| a.starts_with("engine:")))
    {
        Some("an OpenSSL engine (a shared object) would be loaded on this machine")
    } else {
        None
    }
}

/// Directives whose path arguments nginx opens for writing at `nginx -t`.
fn writes_at_test(name: &str) -> bool {
    matches!(name, "pid" | "error_log" | "access_log" | "lock_file") || name.ends_with("_temp_path")
}

/// One directive: its words and the line it starts on.
struct Directive {
    words: Vec<String>,
    line: usize,
}

/// Splits nginx configuration text into directives (`name args;` or
/// `name args {`), honouring quotes, escapes and `#` comments.
fn nginx_directives(text: &str) -> Vec<Directive> {
    let mut out = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut start = 1;
    let mut line = 1;
    let mut chars = text.chars().peekable();
    let mut quote: Option<char> = None;
    let mut comment = false;
    let end_word = |word: &mut String, in_word: &mut bool, words: &mut Vec<String>| {
        if *in_word {
            words.push(std::mem::take(word));
            *in_word = false;
        }
    };
    while let Some(c) = chars.next() {
        if c == '\n' {
            line += 1;
        }
        if comment {
            comment = c != '\n';
            continue;
        }
        if let Some(q) = quote {
            match c {
                '\\' => {
                    if let Some(next) = chars.next() {
                        if next == '\n' {
                            line += 1;
                        }
                        word.push(next);
                    }
                }
                _ if c == q => quote = None,
                _ => word.push(c),
            }
            continue;
        }
        match c {
            '#' if !in_word => comment = true,
            '"' | '\'' if !in_word => {
                if words.is_empty() {
                    start = line;
                }
                quote = Some(c);
                in_word = true;
            }
            ';' | '{' | '}' => {
                end_word(&mut word, &mut in_word, &mut words);
                if !words.is_empty() {
                    out.push(Directive {
                        words: std::mem::take(&mut words),
                        line: start,
                    });
                }
            }
            _ if c.is_whitespace() => end_word(&mut word, &mut in_word, &mut words),
            '\\' => {
                if let Some(next) = chars.next() {
                    word.push(next);
                }
                in_word = true;
            }
            _ => {
                if words.is_empty() && !in_word {
                    start = line;
                }
                word.push(c);
                in_word = true;
            }
        }
    }
    end_word(&mut word, &mut in_word, &mut words);
    if !words.is_empty() {
        out.push(Directive { words, line: start });
    }
    out
}

/// Reads a configuration file of the tree, at most [`MAX_BYTES`].
fn read_config(host: &Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(host).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// A walk over a configuration and its includes.
struct Walk<'a> {
    view: &'a View,
    seen: BTreeSet<PathBuf>,
    refusals: Vec<Refusal>,
}

/// A file to screen: its sandbox path, its path here, how deep it is
/// included.
type Queued = (PathBuf, PathBuf, usize);

impl<'a> Walk<'a> {
    /// A walk over `view` that has seen nothing yet.
    fn new(view: &'a View) -> Self {
        Self {
            view,
            seen: BTreeSet::new(),
            refusals: Vec::new(),
        }
    }

    /// The first file of the walk, `config` (a sandbox path), when the
    /// archive holds it inside the view; a refusal recorded when it leads
    /// out.
    fn start(&mut self, config: &Path) -> Vec<Queued> {
        match self.view.resolve(config) {
            Ok(Some(host)) => {
                self.seen.insert(host.clone());
                vec![(config.to_path_buf(), host, 0)]
            }
            Ok(None) => Vec::new(),
            Err(why) => {
                let outside = only_outside(&why);
                self.refuse_as(config, 0, &[], why, outside);
                Vec::new()
            }
        }
    }

    /// The text of `file` (at `host` here); `None`, with a refusal
    /// recorded, when it cannot be read.
    fn read(&mut self, file: &Path, host: &Path) -> Option<String> {
        match read_config(host) {
            Ok(text) => Some(text),
            Err(why) => {
                self.refuse(file, 0, &[], format!("it cannot be read: {why}"));
                None
            }
        }
    }

    fn refuse(&mut self, file: &Path, line: usize, directive: &[String], why: String) {
        self.refuse_as(file, line, directive, why, false);
    }

    /// Records a refusal of a file outside the archive when `outside`.
    fn refuse_as(
        &mut self,
        file: &Path,
        line: usize,
        directive: &[String],
        why: String,
        outside: bool,
    ) {
        let mut text = directive.join(" ");
        if text.len() > 120 {
            text = text.chars().take(120).collect::<String>() + "…";
        }
        self.refusals.push(Refusal {
            file: file.display().to_string(),
            line,
            directive: text,
            why,
            outside,
        });
    }

    /// The files `pattern` (an include's argument in `file` at `line`)
    /// names; refusals recorded.
    fn includes(
        &mut self,
        file: &Path,
        line: usize,
        directive: &[String],
        base: &Path,
        pattern: &str,
    ) -> Vec<(PathBuf, PathBuf)> {
        if self.seen.len() >= MAX_FILES {
            self.refuse(
                file,
                line,
                directive,
                format!("more than {MAX_FILES} files are included"),
            );
            return Vec::new();
        }
        match self.view.expand(base, pattern) {
            Ok(found) => found
                .into_iter()
                .filter(|(_, host)| self.seen.insert(host.clone()))
                .collect(),
            Err(why) => {
                let outside = only_outside(&why);
                self.refuse_as(file, line, directive, why, outside);
                Vec::new()
            }
        }
    }
}

/// Screens nginx's configuration `config` (a sandbox path such as
/// `/etc/nginx/nginx.conf`, inside `view`) and every file it includes.
pub(super) fn nginx(view: &View, config: &Path) -> NginxScreen {
    let mut walk = Walk::new(view);
    let mut screen = NginxScreen::default();
    let base = config.parent().unwrap_or(Path::new("/")).to_path_buf();
    let mut queue = walk.start(config);
    while let Some((file, host, depth)) = queue.pop() {
        let Some(text) = walk.read(&file, &host) else {
            continue;
        };
        for directive in nginx_directives(&text) {
            let (name, args) = (&directive.words[0], &directive.words[1..]);
            if let Some(why) = code_loading(name, args) {
                walk.refuse(&file, directive.line, &directive.words, why.to_owned());
                continue;
            }
            if writes_at_test(name) {
                screen
                    .writable
                    .extend(args.iter().filter_map(|a| writable_dir(a)));
            }
            if name != "include" {
                continue;
            }
            if depth >= MAX_DEPTH {
                walk.refuse(
                    &file,
                    directive.line,
                    &directive.words,
                    "includes nest too deep".into(),
                );
                continue;
            }
            for pattern in args {
                let found = walk.includes(&file, directive.line, &directive.words, &base, pattern);
                queue.extend(found.into_iter().map(|(f, h)| (f, h, depth + 1)));
            }
        }
    }
    screen.refusals = walk.refusals;
    screen
}

/// The directory a path argument (`/var/log/nginx/site.log`,
/// `path=/run/x.log`) writes into, when it is a plain absolute path
/// outside the system directories the sandbox mounts read-only.
fn writable_dir(arg: &str) -> Option<String> {
    let path = arg.strip_prefix("path=").unwrap_or(arg);
    if !path.starts_with('/') || path.contains('$') || path.chars().any(char::is_control) {
        return None;
    }
    let dir = Path::new(path).parent()?;
    let clean = dir
        .components()
        .skip(1)
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    let first = dir
        .components()
        .nth(1)?
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    let mounted = [
        "usr", "etc", "proc", "dev", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "kastell",
    ];
    (clean && !mounted.contains(&first.as_str())).then(|| dir.display().to_string())
}

/// The symlinks among `links` (paths in the tree, `etc/nginx/x`) inside
/// `view` that lead out of it: a validator must not follow them either.
pub(super) fn escaping_links(view: &View, links: &[String]) -> Vec<Refusal> {
    let inside = view
        .mounted_at
        .to_string_lossy()
        .trim_start_matches('/')
        .to_owned()
        + "/";
    links
        .iter()
        .filter(|link| link.starts_with(&inside))
        .filter_map(|link| {
            let path = PathBuf::from(format!("/{link}"));
            view.resolve(&path).err().map(|why| Refusal {
                file: path.display().to_string(),
                line: 0,
                directive: String::new(),
                outside: only_outside(&why),
                why,
            })
        })
        .collect()
}

/// Screens sshd's configuration `config` (a sandbox path such as
/// `/etc/ssh/sshd_config`, inside `view`) and every file it `Include`s
/// (relative names are in `/etc/ssh`, as sshd reads them).
pub(super) fn sshd(view: &View, config: &Path) -> Vec<Refusal> {
    let mut walk = Walk::new(view);
    let base = PathBuf::from("/etc/ssh");
    let mut queue = walk.start(config);
    while let Some((file, host, depth)) = queue.pop() {
        let Some(text) = walk.read(&file, &host) else {
            continue;
        };
        for (index, raw) in text.lines().enumerate() {
            let words = sshd_words(raw);
            let Some(keyword) = words.first() else {
                continue;
            };
            if !keyword.eq_ignore_ascii_case("include") {
                continue;
            }
            if depth >= MAX_DEPTH {
                walk.refuse(&file, index + 1, &words, "includes nest too deep".into());
                continue;
            }
            for pattern in &words[1..] {
                let found = walk.includes(&file, index + 1, &words, &base, pattern);
                queue.extend(found.into_iter().map(|(f, h)| (f, h, depth + 1)));
            }
        }
    }
    walk.refusals
}

/// The words of one sshd_config line: `Keyword value` or `Keyword=value`,
/// double quotes grouping, `#` starting a comment.
fn sshd_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut started = false;
    for c in line.trim_start().chars() {
        match c {
            '"' => {
                quoted = !quoted;
                started = true;
            }
            '#' if !quoted && !started && words.is_empty() => break,
            '#' if !quoted && !started => break,
            '=' if !quoted && words.is_empty() => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            _ if c.is_whitespace() && !quoted => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            _ => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(tmp: &Path, at: &str) -> View {
        View {
            mounted_at: PathBuf::from(at),
            host: tmp.join(at.trim_start_matches('/')),
        }
    }

    #[test]
    fn nginx_directives_split_like_nginx() {
        let text = "user www-data;\n# load_module x;\nevents {\n}\nhttp { include \"a b\"; }\nload_module\n  'modules/evil.so';\n";
        let found: Vec<(Vec<String>, usize)> = nginx_directives(text)
            .into_iter()
            .map(|d| (d.words, d.line))
            .collect();
        assert_eq!(found[0], (vec!["user".into(), "www-data".into()], 1));
        assert_eq!(found[1], (vec!["events".into()], 3));
        assert_eq!(found[3], (vec!["include".into(), "a b".into()], 5));
        assert_eq!(
            found[4],
            (vec!["load_module".into(), "modules/evil.so".into()], 6)
        );
    }

    #[test]
    fn nginx_code_and_escaping_includes_are_refused_with_file_and_line() {
        let tmp = tempfile::tempdir().unwrap();
        let v = view(tmp.path(), "/etc/nginx");
        std::fs::create_dir_all(v.host.join("conf.d")).unwrap();
        std::fs::write(
            v.host.join("nginx.conf"),
            "pid /run/nginx.pid;\ninclude /etc/nginx/conf.d/*.conf;\nevents {}\nhttp {\n  include ../../x;\n  include /root/secret;\n}\n",
        )
        .unwrap();
        std::fs::write(v.host.join("conf.d/a.conf"), "# fine\nperl_modules /x;\n").unwrap();
        std::fs::write(
            v.host.join("conf.d/b.conf"),
            "load_module modules/evil.so;\n",
        )
        .unwrap();
        let screen = nginx(&v, Path::new("/etc/nginx/nginx.conf"));
        let shown: Vec<String> = screen.refusals.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 4, "{shown:#?}");
        assert!(
            shown
                .iter()
                .any(|s| s.starts_with("/etc/nginx/nginx.conf:5: include ../../x:"))
        );
        assert!(
            shown
                .iter()
                .any(|s| s.starts_with("/etc/nginx/nginx.conf:6: include /root/secret:"))
        );
        assert!(
            shown
                .iter()
                .any(|s| s.starts_with("/etc/nginx/conf.d/a.conf:2: perl_modules /x:"))
        );
        assert!(shown.iter().any(|s| s
            == "/etc/nginx/conf.d/b.conf:1: load_module modules/evil.so: a server-supplied module would run on this machine"));
        assert!(screen.writable.contains("/run"), "{:?}", screen.writable);
    }

    #[test]
    fn sshd_includes_outside_etc_ssh_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let v = view(tmp.path(), "/etc/ssh");
        std::fs::create_dir_all(v.host.join("sshd_config.d")).unwrap();
        std::fs::write(
            v.host.join("sshd_config"),
            "Include /etc/ssh/sshd_config.d/*.conf\nPort 22\n  include=\"/some/local/file\"\n",
        )
        .unwrap();
        std::fs::write(v.host.join("sshd_config.d/x.conf"), "Include ../../../y\n").unwrap();
        let refusals = sshd(&v, Path::new("/etc/ssh/sshd_config"));
        let shown: Vec<String> = refusals.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 2, "{shown:#?}");
        assert!(
            shown[0].starts_with("/etc/ssh/sshd_config:3: include /some/local/file: "),
            "{shown:?}"
        );
        assert!(
            shown[1].starts_with("/etc/ssh/sshd_config.d/x.conf:1: Include ../../../y: "),
            "{shown:?}"
        );
    }
}
