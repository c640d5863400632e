//! Tenancy: the accounts of an installation and how they relate: users, organizations, teams,
//! robots, repository permissions and prototypes, OAuth applications, robot federation.
//!
//! Rule: tenancy changes who may do what; whether an action is allowed is still decided by
//! [`crate::service::access::authz`]. Tenancy sits above content: it may look a repository up
//! (permissions on a repository), while content never imports tenancy.
//!
//! Order (a module imports only the kernel, `access`, `operations`, `content` and modules listed
//! before it):
//! 1. [`accounts`]: users, sign-up, superusers, the user's settings, access tokens.
//! 2. [`orgs`] — organizations.
//! 3. [`teams`]: teams, members and invitations.
//! 4. [`members`]: who belongs to an organization (its teams' users, outside collaborators).
//! 5. [`robots`]: robot accounts and their tokens.
//! 6. [`permissions`]: repository permissions and default-permission prototypes.
//! 7. [`apps`]: OAuth applications and the tokens they mint.
//! 8. [`federation`]: keyless robot logins (OIDC tokens exchanged for robot tokens).
//! 9. [`search`]: entities by name prefix, repositories by name or description.
//! 10. [`app_tokens`]: application-specific tokens (registry passwords of a user).
//! 11. [`sessions`]: web UI sessions (sign-in with a password, the session's CSRF token).

pub mod accounts;
pub mod app_tokens;
pub mod apps;
pub mod federation;
pub mod members;
pub mod orgs;
pub mod permissions;
pub mod robots;
pub mod search;
pub mod sessions;
pub mod teams;
