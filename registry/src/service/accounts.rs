//! Users: the first-user bootstrap (`/api/v1/user/initialize`, `quayside admin create-user`),
//! passwords (argon2, hashed off the async runtime) and access tokens.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::aead;

use super::{AccountError, Ctx, Internal, UserRef, hash_secret, random_token};
use crate::db;
use crate::db::namespaces::NewUser;

/// Scopes of a token that may do everything its user may.
pub const ALL_SCOPES: &str =
    "org:admin repo:admin repo:create repo:read repo:write super:user user:admin user:read";

/// Checks a namespace (user or organization) name: Quay's `[a-z0-9]+([._-][a-z0-9]+)*`, 2 to 255
/// characters. Such names are always valid OCI path components.
pub fn validate_namespace_name(name: &str) -> Result<(), String> {
    let ok_shape = {
        let mut prev_sep = true;
        let mut ok = !name.is_empty();
        for c in name.chars() {
            let sep = matches!(c, '.' | '_' | '-');
            if !(sep || c.is_ascii_lowercase() || c.is_ascii_digit()) || (sep && prev_sep) {
                ok = false;
                break;
            }
            prev_sep = sep;
        }
        ok && !prev_sep
    };
    if !(2..=255).contains(&name.len()) || !ok_shape {
        return Err(format!(
            "Invalid namespace {name}: names must be 2 to 255 characters of lower-case letters, digits and single separators (. _ -), starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

fn validate_password(password: &str) -> Result<(), AccountError> {
    if password.chars().count() < 8 || password.chars().any(char::is_whitespace) {
        return Err(AccountError::Invalid {
            field: "password",
            message: "Password must be at least 8 characters and contain no whitespace.".into(),
        });
    }
    Ok(())
}

fn validate_email(email: &str) -> Result<(), AccountError> {
    let valid = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !email.contains(char::is_whitespace)
    });
    if !valid {
        return Err(AccountError::Invalid {
            field: "email",
            message: format!("Invalid email address: {email}"),
        });
    }
    Ok(())
}

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

/// What `POST /api/v1/user/initialize` returns.
#[derive(Debug)]
pub struct Initialized {
    pub username: String,
    pub email: String,
    pub encrypted_password: String,
    pub access_token: Option<String>,
}

/// Creates the first user as a superuser, while the database has no users.
pub async fn initialize(
    ctx: &Ctx,
    username: &str,
    password: &str,
    email: &str,
    want_token: bool,
) -> Result<Initialized, AccountError> {
    if !ctx.config.features.user_initialize {
        return Err(AccountError::NotAllowed(
            "Cannot initialize user: FEATURE_USER_INITIALIZE is disabled".into(),
        ));
    }
    if db::namespaces::count_users(ctx.db.pool()).await? > 0 {
        return Err(AccountError::NotAllowed(
            "Cannot initialize user in a non-empty database".into(),
        ));
    }
    let user = create_user(
        ctx,
        username,
        password,
        (!email.is_empty()).then_some(email),
        true,
    )
    .await?;
    let access_token = if want_token {
        Some(create_access_token(ctx, &user, ALL_SCOPES).await?)
    } else {
        None
    };
    Ok(Initialized {
        username: user.name,
        email: email.to_owned(),
        encrypted_password: ctx.sealer().seal(password),
        access_token,
    })
}

/// Creates a user (and so their namespace).
pub async fn create_user(
    ctx: &Ctx,
    username: &str,
    password: &str,
    email: Option<&str>,
    superuser: bool,
) -> Result<UserRef, AccountError> {
    validate_namespace_name(username).map_err(|message| AccountError::Invalid {
        field: "username",
        message,
    })?;
    validate_password(password)?;
    if let Some(email) = email {
        validate_email(email)?;
    }
    let hash = hash_password(password).await?;
    let new = NewUser {
        name: username,
        email,
        password_hash: Some(&hash),
        superuser,
        tag_expiration_s: ctx.config.default_tag_expiration_s,
    };
    match db::namespaces::insert_user(ctx.db.pool(), &new, ctx.now_ms()).await {
        Ok(id) => Ok(UserRef {
            id,
            name: username.to_owned(),
            superuser: superuser || ctx.is_config_superuser(username),
        }),
        Err(e) if e.is_unique_violation() => Err(AccountError::Conflict(
            "A user or organization with this name already exists".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Issues a new access token for `user`; the secret is returned once and stored hashed.
pub async fn create_access_token(
    ctx: &Ctx,
    user: &UserRef,
    scopes: &str,
) -> Result<String, AccountError> {
    let token = random_token(40);
    db::tokens::insert(
        ctx.db.pool(),
        &hash_secret(&token),
        user.id,
        scopes,
        ctx.now_ms(),
        None,
    )
    .await?;
    Ok(token)
}

impl Ctx {
    pub fn sealer(&self) -> &PasswordSealer {
        &self.sealer
    }

    /// Listed in `SUPER_USERS`.
    pub fn is_config_superuser(&self, name: &str) -> bool {
        self.config.super_users.iter().any(|s| s == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_names() {
        for ok in ["ab", "alice", "my-org", "a.b_c-d", "x1"] {
            assert!(validate_namespace_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "a",
            "Alice",
            "-ab",
            "ab-",
            "a--b",
            "a b",
            "a/b",
            "a+b",
            &"a".repeat(256),
        ] {
            assert!(validate_namespace_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sealed_passwords_round_trip() {
        let s = PasswordSealer::new(b"k");
        let sealed = s.seal("hunter2hunter2");
        assert_eq!(s.open(&sealed).as_deref(), Some("hunter2hunter2"));
        assert_eq!(PasswordSealer::new(b"other").open(&sealed), None);
        assert_eq!(s.open("not-base64!"), None);
    }
}
