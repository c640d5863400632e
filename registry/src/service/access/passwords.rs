//! Passwords: argon2 hashes (computed off the async runtime, since argon2 is deliberately slow)
//! and Quay's "encrypted password" ([`PasswordSealer`]), a password sealed with the installation
//! key that clients may send in its place.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::aead;

use crate::service::{Ctx, Internal};

pub async fn hash_password(password: &str) -> Result<String, Internal> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let mut salt = [0u8; 16];
        getrandom::getrandom(&mut salt).map_err(|e| Internal::Other(e.to_string()))?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| Internal::Other(e.to_string()))?;
        argon2::Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Internal::Other(e.to_string()))
    })
    .await
    .map_err(|e| Internal::Other(e.to_string()))?
}

pub async fn verify_password(password: &str, hash: &str) -> Result<bool, Internal> {
    let (password, hash) = (password.to_owned(), hash.to_owned());
    tokio::task::spawn_blocking(move || {
        use argon2::password_hash::{PasswordHash, PasswordVerifier};
        let Ok(parsed) = PasswordHash::new(&hash) else {
            return false;
        };
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
    .await
    .map_err(|e| Internal::Other(e.to_string()))
}

/// Quay's "encrypted password": the password sealed with the installation key, usable in
/// place of the password on the command line (`docker login -p <encrypted>`).
pub struct PasswordSealer {
    key: aead::LessSafeKey,
}

impl PasswordSealer {
    pub fn new(secret: &[u8]) -> PasswordSealer {
        let derive = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        let derived = ring::hmac::sign(&derive, b"quayside encrypted password key v1");
        // A 32-byte HMAC output is always a valid ChaCha20 key.
        let unbound = aead::UnboundKey::new(&aead::CHACHA20_POLY1305, derived.as_ref())
            .unwrap_or_else(|_| unreachable!("32-byte key"));
        PasswordSealer {
            key: aead::LessSafeKey::new(unbound),
        }
    }

    pub fn seal(&self, password: &str) -> String {
        let mut nonce = [0u8; 12];
        if getrandom::getrandom(&mut nonce).is_err() {
            use ring::rand::SecureRandom;
            let _ = ring::rand::SystemRandom::new().fill(&mut nonce);
        }
        let mut data = password.as_bytes().to_vec();
        if self
            .key
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::empty(),
                &mut data,
            )
            .is_err()
        {
            return String::new();
        }
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        B64.encode(out)
    }

    pub fn open(&self, sealed: &str) -> Option<String> {
        let raw = B64.decode(sealed).ok()?;
        if raw.len() < 12 + 16 {
            return None;
        }
        let (nonce, rest) = raw.split_at(12);
        let mut data = rest.to_vec();
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
        let plain = self
            .key
            .open_in_place(nonce, aead::Aad::empty(), &mut data)
            .ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }
}

impl Ctx {
    pub fn sealer(&self) -> &PasswordSealer {
        &self.sealer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_passwords_round_trip() {
        let s = PasswordSealer::new(b"k");
        let sealed = s.seal("hunter2hunter2");
        assert_eq!(s.open(&sealed).as_deref(), Some("hunter2hunter2"));
        assert_eq!(PasswordSealer::new(b"other").open(&sealed), None);
        assert_eq!(s.open("not-base64!"), None);
    }
}
