//! Passwords: argon2 hashes (computed off the async runtime, since argon2 is deliberately slow)
//! and Quay's "encrypted password" ([`PasswordSealer`]), a password sealed with the installation
//! key that clients may send in its place.
//!
//! Rule: argon2 runs only inside a [`Slot`]. Each run takes about 19 MiB, so at most
//! [`bound`] (the number of cores) run at once in the process. Login checks fail fast instead of
//! queueing without end: a client (IP address) may hold at most [`PER_CLIENT`] slots, running or
//! waiting, and at most [`QUEUE`] checks wait in all; beyond either, or after waiting
//! [`WAIT`], the check is refused as [`Overloaded`] (answered 429). One flooding client cannot
//! fill the queue, so other clients' logins still go through. Hashing a new password (sign-up,
//! password change) waits for a slot without a queue bound: it is not the login flood's path.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::aead;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::service::{Ctx, Internal};

/// Slots one client (IP address) may hold at once, running or waiting.
pub const PER_CLIENT: usize = 8;
/// Login checks that may wait for a slot, in all.
pub const QUEUE: usize = 64;
/// How long a login check waits for a slot before it is refused.
pub const WAIT: Duration = Duration::from_secs(10);

/// The server is busy checking other passwords: try again shortly.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("too many concurrent login attempts; retry shortly")]
pub struct Overloaded;

struct Limiter {
    permits: Arc<Semaphore>,
    bound: usize,
    waiting: AtomicUsize,
    per_client: Mutex<HashMap<IpAddr, usize>>,
    running: AtomicUsize,
    max_running: AtomicUsize,
    runs: AtomicUsize,
}

static LIMITER: LazyLock<Limiter> = LazyLock::new(|| {
    let bound = std::thread::available_parallelism().map_or(1, |n| n.get());
    Limiter {
        permits: Arc::new(Semaphore::new(bound)),
        bound,
        waiting: AtomicUsize::new(0),
        per_client: Mutex::new(HashMap::new()),
        running: AtomicUsize::new(0),
        max_running: AtomicUsize::new(0),
        runs: AtomicUsize::new(0),
    }
});

/// How many argon2 computations may run at once (the number of cores).
pub fn bound() -> usize {
    LIMITER.bound
}

/// Gauges of argon2 in this process: (running now, most ever running at once, runs so far).
pub fn hashing_gauges() -> (usize, usize, usize) {
    (
        LIMITER.running.load(Ordering::SeqCst),
        LIMITER.max_running.load(Ordering::SeqCst),
        LIMITER.runs.load(Ordering::SeqCst),
    )
}

/// The right to run argon2; released on drop.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    _client: Option<ClientClaim>,
}

/// A client's share of [`PER_CLIENT`], released on drop.
struct ClientClaim(IpAddr);

impl ClientClaim {
    fn take(ip: IpAddr) -> Result<ClientClaim, Overloaded> {
        let mut clients = LIMITER.per_client.lock().map_err(|_| Overloaded)?;
        let held = clients.entry(ip).or_insert(0);
        if *held >= PER_CLIENT {
            return Err(Overloaded);
        }
        *held += 1;
        Ok(ClientClaim(ip))
    }
}

impl Drop for ClientClaim {
    fn drop(&mut self) {
        if let Ok(mut clients) = LIMITER.per_client.lock()
            && let Some(held) = clients.get_mut(&self.0)
        {
            *held -= 1;
            if *held == 0 {
                clients.remove(&self.0);
            }
        }
    }
}

/// Counts one waiter against [`QUEUE`] while it lives.
struct Waiting;

impl Waiting {
    fn enter() -> Result<Waiting, Overloaded> {
        let before = LIMITER.waiting.fetch_add(1, Ordering::SeqCst);
        let waiting = Waiting;
        if before >= QUEUE {
            return Err(Overloaded);
        }
        Ok(waiting)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        LIMITER.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A slot for checking a login from `client`, or [`Overloaded`] at once when the client or the
/// queue is at its limit (or after waiting [`WAIT`]).
pub async fn login_slot(client: Option<IpAddr>) -> Result<Slot, Overloaded> {
    let claim = client.map(ClientClaim::take).transpose()?;
    if let Ok(permit) = LIMITER.permits.clone().try_acquire_owned() {
        return Ok(Slot {
            _permit: permit,
            _client: claim,
        });
    }
    let _waiting = Waiting::enter()?;
    match tokio::time::timeout(WAIT, LIMITER.permits.clone().acquire_owned()).await {
        Ok(Ok(permit)) => Ok(Slot {
            _permit: permit,
            _client: claim,
        }),
        _ => Err(Overloaded),
    }
}

async fn any_slot() -> Result<Slot, Internal> {
    let permit = LIMITER
        .permits
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| Internal::Other(e.to_string()))?;
    Ok(Slot {
        _permit: permit,
        _client: None,
    })
}

/// Runs `f` (an argon2 computation) on the blocking pool, counted in [`hashing_gauges`].
async fn run_argon2<T: Send + 'static>(
    _slot: &Slot,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Internal> {
    tokio::task::spawn_blocking(move || {
        let now = LIMITER.running.fetch_add(1, Ordering::SeqCst) + 1;
        LIMITER.max_running.fetch_max(now, Ordering::SeqCst);
        LIMITER.runs.fetch_add(1, Ordering::SeqCst);
        let out = f();
        LIMITER.running.fetch_sub(1, Ordering::SeqCst);
        out
    })
    .await
    .map_err(|e| Internal::Other(e.to_string()))
}

/// Hashes a new password, waiting for a slot.
pub async fn hash_password(password: &str) -> Result<String, Internal> {
    let password = password.to_owned();
    let slot = any_slot().await?;
    run_argon2(&slot, move || {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let mut salt = [0u8; 16];
        getrandom::getrandom(&mut salt).map_err(|e| Internal::Other(e.to_string()))?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| Internal::Other(e.to_string()))?;
        argon2::Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Internal::Other(e.to_string()))
    })
    .await?
}

/// Checks `password` against an argon2 `hash`, inside a slot from [`login_slot`].
pub async fn verify_password(slot: &Slot, password: &str, hash: &str) -> Result<bool, Internal> {
    let (password, hash) = (password.to_owned(), hash.to_owned());
    run_argon2(slot, move || {
        use argon2::password_hash::{PasswordHash, PasswordVerifier};
        let Ok(parsed) = PasswordHash::new(&hash) else {
            return false;
        };
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
    .await
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
