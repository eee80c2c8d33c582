//! kastell's conventions at Linode: how images are marked with the instance
//! they came from, the root password of a rebuild, and Linode's timestamps.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::Read;
use std::time::{SystemTime, UNIX_EPOCH};

use kastell_core::types::ServerId;

/// Longest image label Linode accepts.
pub(crate) const MAX_LABEL: usize = 64;

/// The label of an image of `server` named `name`:
/// `kastell-<instance-id>-<name>`, with characters Linode refuses replaced
/// by `-` and cut to [`MAX_LABEL`].
pub(crate) fn image_label(server: &ServerId, name: &str) -> String {
    let mut label = format!("kastell-{server}-");
    let name = name.strip_prefix("kastell-").unwrap_or(name);
    let mut last_dash = true;
    for c in name.chars() {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '_' | '.') {
            c
        } else {
            '-'
        };
        if c == '-' && last_dash {
            continue;
        }
        last_dash = c == '-';
        label.push(c);
    }
    label.truncate(MAX_LABEL);
    while label.ends_with('-') && label.len() > "kastell-".len() + server.as_str().len() + 1 {
        label.pop();
    }
    if label.ends_with('-') {
        label.push_str("snapshot");
        label.truncate(MAX_LABEL);
    }
    label
}

/// The description that marks an image as made from `server`.
pub(crate) fn image_description(server: &ServerId) -> String {
    format!("kastell:{server}")
}

/// The instance an image was made from, by kastell's marks: the
/// description `kastell:<id>` when present, else a label
/// `kastell-<digits>-...`. `None` for images kastell did not make.
pub(crate) fn image_owner(label: Option<&str>, description: Option<&str>) -> Option<String> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(desc) = description.map(str::trim).filter(|d| !d.is_empty()) {
        return desc
            .strip_prefix("kastell:")
            .filter(|id| digits(id))
            .map(str::to_owned);
    }
    let rest = label?.strip_prefix("kastell-")?;
    let (id, _) = rest.split_once('-')?;
    digits(id).then(|| id.to_owned())
}

/// A strong root password for a rebuild: 32 random characters from
/// letters, digits and symbols, with at least one of each class. Random
/// bytes come from the operating system (`/dev/urandom`), or, where that
/// is missing, from randomly keyed SipHash. Never log the result.
pub(crate) fn root_password() -> String {
    const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const DIGIT: &[u8] = b"23456789";
    const SYMBOL: &[u8] = b"!#%+-.=@^_~";
    let all: Vec<u8> = [LOWER, UPPER, DIGIT, SYMBOL].concat();
    let mut bytes = RandomBytes::new();
    let mut pick = |set: &[u8]| -> char {
        // Rejection sampling keeps every character equally likely.
        let limit = 256 - 256 % set.len();
        loop {
            let b = usize::from(bytes.next());
            if b < limit {
                return char::from(set[b % set.len()]);
            }
        }
    };
    let mut password: String = (0..28).map(|_| pick(&all)).collect();
    for set in [LOWER, UPPER, DIGIT, SYMBOL] {
        password.push(pick(set));
    }
    password
}

struct RandomBytes {
    buffer: Vec<u8>,
    urandom: Option<std::fs::File>,
    counter: u64,
}

impl RandomBytes {
    fn new() -> Self {
        Self {
            buffer: Vec::new(),
            urandom: std::fs::File::open("/dev/urandom").ok(),
            counter: 0,
        }
    }

    fn next(&mut self) -> u8 {
        if self.buffer.is_empty() {
            self.refill();
        }
        self.buffer.pop().unwrap_or(0)
    }

    fn refill(&mut self) {
        let mut chunk = [0u8; 64];
        let read = self
            .urandom
            .as_mut()
            .is_some_and(|file| file.read_exact(&mut chunk).is_ok());
        if read {
            self.buffer.extend_from_slice(&chunk);
            return;
        }
        self.urandom = None;
        // Each RandomState carries fresh random SipHash keys.
        let keyed = RandomState::new();
        let mut hasher = keyed.build_hasher();
        self.counter += 1;
        hasher.write_u64(self.counter);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        hasher.write_u128(nanos);
        self.buffer
            .extend_from_slice(&hasher.finish().to_le_bytes());
    }
}

/// `time` as Linode writes timestamps: UTC, `YYYY-MM-DDTHH:MM:SS`, no
/// suffix. Times before 1970 are written as the epoch.
pub(crate) fn linode_time(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    kastell_core::time::utc_datetime(i64::try_from(secs).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn id(s: &str) -> ServerId {
        ServerId::new(s).expect("id")
    }

    #[test]
    fn labels_are_marked_sanitised_and_short() {
        let a = id("82373289");
        assert_eq!(image_label(&a, "nightly"), "kastell-82373289-nightly");
        assert_eq!(
            image_label(&a, "kastell-maintain-1742050000000"),
            "kastell-82373289-maintain-1742050000000"
        );
        assert_eq!(image_label(&a, "a b/c??d"), "kastell-82373289-a-b-c-d");
        assert_eq!(image_label(&a, "!!!"), "kastell-82373289-snapshot");
        let long = image_label(&a, &"x".repeat(200));
        assert_eq!(long.len(), MAX_LABEL);
        assert_eq!(image_owner(Some(&long), None).as_deref(), Some("82373289"));
        assert_eq!(image_description(&a), "kastell:82373289");
    }

    #[test]
    fn ownership_prefers_the_description() {
        assert_eq!(
            image_owner(Some("kastell-1-x"), Some("kastell:2")).as_deref(),
            Some("2")
        );
        assert_eq!(image_owner(Some("kastell-1-x"), None).as_deref(), Some("1"));
        assert_eq!(
            image_owner(Some("kastell-1-x"), Some("")).as_deref(),
            Some("1")
        );
        assert_eq!(
            image_owner(Some("kastell-1-x"), Some("my golden image")),
            None
        );
        assert_eq!(image_owner(Some("web-1-base"), None), None);
        assert_eq!(image_owner(Some("kastell-web-1"), None), None);
        assert_eq!(image_owner(None, Some("kastell:12a")), None);
    }

    #[test]
    fn passwords_are_strong_and_differ() {
        let a = root_password();
        let b = root_password();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.chars().any(|c| c.is_ascii_lowercase()));
        assert!(a.chars().any(|c| c.is_ascii_uppercase()));
        assert!(a.chars().any(|c| c.is_ascii_digit()));
        assert!(a.chars().any(|c| !c.is_ascii_alphanumeric()));
    }

    #[test]
    fn times_are_utc_without_suffix() {
        assert_eq!(linode_time(UNIX_EPOCH), "1970-01-01T00:00:00");
        let t = UNIX_EPOCH + Duration::from_secs(1_514_862_245);
        assert_eq!(linode_time(t), "2018-01-02T03:04:05");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(linode_time(leap), "2000-02-29T00:00:00");
        let late = UNIX_EPOCH + Duration::from_secs(1_798_761_599);
        assert_eq!(linode_time(late), "2026-12-31T23:59:59");
    }
}
