//! Access: who is calling and what they may do.
//!
//! Rule: access decides, it does not act. Its modules read accounts, tokens and roles from the
//! database and answer with a [`Principal`](crate::service::Principal) or a yes/no; they record
//! nothing and change no content.
//!
//! Order (a module imports only the kernel and modules listed before it):
//! 1. [`jwt`]: registry bearer tokens (sign, verify).
//! 2. [`passwords`]: argon2 hashes and Quay's encrypted passwords.
//! 3. [`authz`]: the one decision function, [`authz::can`], over actions and resources.
//! 4. [`auth`]: credentials to a principal (basic, bearer, robot and federated robot tokens).

pub mod auth;
pub mod authz;
pub mod jwt;
pub mod passwords;
