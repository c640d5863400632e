//! Who is making a request: a [`Principal`], and what a verified registry token grants it
//! ([`Grant`]). These are the values every group passes around, so they live in the kernel; the
//! groups that produce them are `access::auth` (credentials) and `access::jwt` (tokens).

use serde::{Deserialize, Serialize};

use super::scopes::Scopes;

/// Who is making a request.
#[derive(Clone, Debug)]
pub enum Principal {
    Anonymous,
    /// A signed-in user (basic auth with a password).
    User(UserRef),
    /// A robot account (`owner+name` with its token, or a federated robot token).
    Robot(RobotRef),
    /// A user acting through an OAuth access token, limited to the token's scopes.
    OAuth(OAuthRef),
    /// A `/v2` bearer token: the access it grants was decided when it was issued.
    Token(Grant),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRef {
    pub id: i64,
    pub name: String,
    pub superuser: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RobotRef {
    /// The robot's account id.
    pub id: i64,
    /// `owner+shortname`.
    pub name: String,
    pub owner: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthRef {
    pub user: UserRef,
    pub scopes: Scopes,
    pub token_id: i64,
    /// The client id of the application the token was minted for, if any.
    pub application: Option<String>,
}

/// The account (user or robot) behind a principal, for decisions and audit records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: i64,
    pub name: String,
}

impl Principal {
    pub fn is_anonymous(&self) -> bool {
        match self {
            Principal::Anonymous => true,
            Principal::User(_) | Principal::Robot(_) | Principal::OAuth(_) => false,
            Principal::Token(g) => g.user.is_none() && g.robot.is_none(),
        }
    }

    /// The user behind the principal, if any.
    pub fn user(&self) -> Option<&UserRef> {
        match self {
            Principal::Anonymous | Principal::Robot(_) => None,
            Principal::User(u) => Some(u),
            Principal::OAuth(o) => Some(&o.user),
            Principal::Token(g) => g.user.as_ref(),
        }
    }

    pub fn robot(&self) -> Option<&RobotRef> {
        match self {
            Principal::Robot(r) => Some(r),
            Principal::Token(g) => g.robot.as_ref(),
            _ => None,
        }
    }

    /// The account acting: a user or a robot.
    pub fn account(&self) -> Option<Account> {
        if let Some(u) = self.user() {
            return Some(Account {
                id: u.id,
                name: u.name.clone(),
            });
        }
        self.robot().map(|r| Account {
            id: r.id,
            name: r.name.clone(),
        })
    }

    pub fn name(&self) -> Option<&str> {
        match self.user() {
            Some(u) => Some(u.name.as_str()),
            None => self.robot().map(|r| r.name.as_str()),
        }
    }

    /// The principal with its account's own rights instead of a registry token's grant: a
    /// token's user or robot (anonymous for an anonymous token); any other principal as it is.
    /// For what a token's scopes cannot have anticipated: the source of a cross-repository
    /// mount is decided on the account, as Distribution and Quay do.
    pub fn account_rights(&self) -> Principal {
        match self {
            Principal::Token(g) => match (&g.user, &g.robot) {
                (Some(u), _) => Principal::User(u.clone()),
                (None, Some(r)) => Principal::Robot(r.clone()),
                (None, None) => Principal::Anonymous,
            },
            other => other.clone(),
        }
    }

    /// The OAuth scopes limiting this principal; `None` when it is not limited by scopes.
    pub fn scopes(&self) -> Option<Scopes> {
        match self {
            Principal::OAuth(o) => Some(o.scopes),
            _ => None,
        }
    }
}

/// One entry of the `access` claim, as in the Docker token specification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

impl Access {
    pub fn allows(&self, kind: &str, name: &str, action: &str) -> bool {
        self.kind == kind
            && self.name == name
            && self.actions.iter().any(|a| a == action || a == "*")
    }
}

/// What a verified token grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub user: Option<UserRef>,
    pub robot: Option<RobotRef>,
    pub access: Vec<Access>,
    pub expires_at_s: i64,
}

impl Grant {
    pub fn allows(&self, kind: &str, name: &str, action: &str) -> bool {
        self.access.iter().any(|a| a.allows(kind, name, action))
    }
}
