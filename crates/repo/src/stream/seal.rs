//! How restic seals what it stores: ids are SHA-256 hashes, blobs and
//! files are encrypted with AES-256-CTR and authenticated with
//! Poly1305-AES (a random 16-byte nonce, the ciphertext, a 16-byte tag),
//! and a version 2 repository compresses with zstd: a blob's pack header
//! says it is compressed, a file (index, snapshot) starts with the version
//! byte 2 before its compressed JSON.

use aes256ctr_poly1305aes::Aes256CtrPoly1305Aes;
use aes256ctr_poly1305aes::aead::AeadInPlace;
use kastell_core::{Error, ErrorKind, Result};
use rustic_core::Id;
use rustic_core::repofile::MasterKey;
use sha2::{Digest, Sha256};

/// Bytes of the nonce before and the tag after each ciphertext.
pub(crate) const OVERHEAD: usize = 32;

/// The leading byte of a compressed repository file.
const COMPRESSED_FILE: u8 = 2;

/// The SHA-256 of `data`.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// The SHA-256 of `data` as a repository id.
pub(crate) fn id_of(data: &[u8]) -> Id {
    Id::new(sha256(data))
}

/// A repository's data key and compression: what every worker needs to
/// seal a blob. Its `Debug` shows no key material.
#[derive(Clone)]
pub(crate) struct Sealer {
    key: aes256ctr_poly1305aes::Key,
    /// zstd level, `None` for a repository that stores uncompressed
    /// (version 1, or compression turned off).
    level: Option<i32>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("level", &self.level)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// The sealer of a repository with master key `key`, compressing at
    /// `level`. Refuses a key of the wrong length.
    pub(crate) fn new(key: &MasterKey, level: Option<i32>) -> Result<Self> {
        if key.encrypt.len() != 32 || key.mac.k.len() != 16 || key.mac.r.len() != 16 {
            return Err(Error::unexpected(
                "the repository's master key has the wrong length",
            ));
        }
        let mut raw = aes256ctr_poly1305aes::Key::default();
        raw[..32].copy_from_slice(&key.encrypt);
        raw[32..48].copy_from_slice(&key.mac.k);
        raw[48..].copy_from_slice(&key.mac.r);
        Ok(Self { key: raw, level })
    }

    /// `data` compressed when the repository compresses, with whether it
    /// was.
    pub(crate) fn compress(&self, data: &[u8]) -> Result<(Vec<u8>, bool)> {
        match self.level {
            Some(level) => zstd::bulk::compress(data, level)
                .map(|c| (c, true))
                .map_err(|e| Error::io("compressing a chunk", e)),
            None => Ok((data.to_vec(), false)),
        }
    }

    /// `plain` encrypted: nonce, ciphertext, tag.
    pub(crate) fn encrypt(&self, plain: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = aes256ctr_poly1305aes::Nonce::default();
        getrandom::fill(&mut nonce)
            .map_err(|e| Error::unexpected(format!("no random nonce: {e}")))?;
        let mut sealed = Vec::with_capacity(plain.len() + OVERHEAD);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(plain);
        let tag = Aes256CtrPoly1305Aes::new(&self.key)
            .encrypt_in_place_detached(&nonce, &[], &mut sealed[16..])
            .map_err(|_| Error::unexpected("encrypting a blob failed"))?;
        sealed.extend_from_slice(&tag);
        Ok(sealed)
    }

    /// `sealed` (nonce, ciphertext, tag) decrypted. Refuses (`Corrupt`) a
    /// blob too short to hold a nonce and tag, and one whose tag does not
    /// authenticate it under this repository's key.
    pub(crate) fn open(&self, sealed: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < OVERHEAD {
            return Err(Error::new(
                ErrorKind::Corrupt,
                "a repository blob is too short to be encrypted data",
            ));
        }
        let (nonce, rest) = sealed.split_at(16);
        let (cipher, tag) = rest.split_at(rest.len() - 16);
        let mut plain = cipher.to_vec();
        Aes256CtrPoly1305Aes::new(&self.key)
            .decrypt_in_place_detached(nonce.into(), &[], &mut plain, tag.into())
            .map_err(|_| {
                Error::new(
                    ErrorKind::Corrupt,
                    "a repository blob does not authenticate with the repository's key",
                )
            })?;
        Ok(plain)
    }

    /// A repository file (index, snapshot) holding `json`: compressed
    /// behind the version byte when the repository compresses, then
    /// encrypted. Returns its content and id.
    pub(crate) fn file(&self, json: &[u8]) -> Result<(Vec<u8>, Id)> {
        let plain = match self.level {
            Some(level) => {
                let mut plain = vec![COMPRESSED_FILE];
                plain.extend(
                    zstd::bulk::compress(json, level)
                        .map_err(|e| Error::io("compressing a repository file", e))?,
                );
                plain
            }
            None => json.to_vec(),
        };
        let sealed = self.encrypt(&plain)?;
        let id = id_of(&sealed);
        Ok((sealed, id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes256ctr_poly1305aes::aead::Aead;

    #[test]
    fn sealed_blobs_open_with_the_same_key_and_differ_each_time() {
        let master = MasterKey::new();
        let sealer = Sealer::new(&master, Some(3)).unwrap();
        let a = sealer.encrypt(b"hello").unwrap();
        let b = sealer.encrypt(b"hello").unwrap();
        assert_eq!(a.len(), 5 + OVERHEAD);
        assert_ne!(a, b, "a fresh nonce each time");
        let plain = Aes256CtrPoly1305Aes::new(&sealer.key)
            .decrypt(a[..16].into(), &a[16..])
            .unwrap();
        assert_eq!(plain, b"hello");
        let mut forged = a.clone();
        forged[20] ^= 1;
        assert!(
            Aes256CtrPoly1305Aes::new(&sealer.key)
                .decrypt(forged[..16].into(), &forged[16..])
                .is_err()
        );
        assert_eq!(sealer.open(&a).unwrap(), b"hello");
        assert_eq!(sealer.open(&forged).unwrap_err().kind(), ErrorKind::Corrupt);
        assert!(sealer.open(&a[..20]).is_err());
        assert!(format!("{sealer:?}").contains("level"));
    }
}
