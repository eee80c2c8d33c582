//! SSH keys as the simulated accounts hold them: the key a person
//! uploaded to every seeded account, and the comparison by which vendors
//! that refuse a second copy of a public key recognise one (the key's
//! type and blob: its fingerprint; the comment does not count).

/// The public key a person uploaded to each simulator's seeded account
/// (named `laptop`, not kastell's). No one holds its private half.
pub const PERSON_PUBLIC_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHBlcnNvbi1sYXB0b3Ata2V5 me@laptop";

/// Whether two public key lines hold the same key (same type and blob,
/// whatever their comments), as a vendor comparing fingerprints sees it.
pub fn same_public_key(a: &str, b: &str) -> bool {
    let (a, b) = (key_fields(a), key_fields(b));
    a.1.is_some() && a == b
}

/// A public key line's type and blob.
fn key_fields(line: &str) -> (Option<&str>, Option<&str>) {
    let mut fields = line.split_whitespace();
    (fields.next(), fields.next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_do_not_count_blobs_do() {
        let bare = PERSON_PUBLIC_KEY.trim_end_matches(" me@laptop");
        assert!(same_public_key(PERSON_PUBLIC_KEY, bare));
        assert!(same_public_key(PERSON_PUBLIC_KEY, &format!("{bare} other")));
        assert!(!same_public_key(PERSON_PUBLIC_KEY, &format!("{bare}A")));
        assert!(!same_public_key("ssh-ed25519", "ssh-ed25519"));
    }
}
