//! OAuth scopes (Quay's names), as carried by access tokens and required by `/api/v1`
//! endpoints.

use std::fmt;

/// One OAuth scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    RepoRead,
    RepoWrite,
    RepoAdmin,
    RepoCreate,
    UserRead,
    UserAdmin,
    OrgAdmin,
    SuperUser,
}

impl Scope {
    pub const ALL: [Scope; 8] = [
        Scope::RepoRead,
        Scope::RepoWrite,
        Scope::RepoAdmin,
        Scope::RepoCreate,
        Scope::UserRead,
        Scope::UserAdmin,
        Scope::OrgAdmin,
        Scope::SuperUser,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::RepoRead => "repo:read",
            Scope::RepoWrite => "repo:write",
            Scope::RepoAdmin => "repo:admin",
            Scope::RepoCreate => "repo:create",
            Scope::UserRead => "user:read",
            Scope::UserAdmin => "user:admin",
            Scope::OrgAdmin => "org:admin",
            Scope::SuperUser => "super:user",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// What the scope lets an application do (Quay's wording).
    pub fn description(self) -> &'static str {
        match self {
            Scope::RepoRead => {
                "This application will be able to view and pull all repositories visible to the granting user"
            }
            Scope::RepoWrite => {
                "This application will be able to view, push and pull to all repositories to which the granting user has write access"
            }
            Scope::RepoAdmin => {
                "This application will have administrator access to all repositories to which the granting user has access"
            }
            Scope::RepoCreate => {
                "This application will be able to create repositories in all namespaces that the granting user is allowed to create repositories"
            }
            Scope::UserRead => {
                "This application will be able to read user information such as username and email address."
            }
            Scope::UserAdmin => {
                "This application will be able to administer your account including creating robots and granting them permissions to your repositories."
            }
            Scope::OrgAdmin => {
                "This application will be able to administer your organizations including creating robots, creating teams, adjusting team membership, and changing billing settings."
            }
            Scope::SuperUser => {
                "This application will be able to administer your installation including managing users, managing organizations and other features found in the superuser panel."
            }
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }

    /// The scopes this one implies (Quay: repo:admin ⊃ repo:write ⊃ repo:read).
    fn implied(self) -> Scopes {
        match self {
            Scope::RepoAdmin => Scopes::of(&[Scope::RepoAdmin, Scope::RepoWrite, Scope::RepoRead]),
            Scope::RepoWrite => Scopes::of(&[Scope::RepoWrite, Scope::RepoRead]),
            other => Scopes::of(&[other]),
        }
    }
}

/// A set of scopes, with implied scopes included.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Scopes(u16);

impl Scopes {
    pub fn all() -> Scopes {
        Scopes::of(&Scope::ALL)
    }

    pub fn of(scopes: &[Scope]) -> Scopes {
        Scopes(scopes.iter().fold(0, |acc, s| acc | s.bit()))
    }

    /// Parses a space- or comma-separated scope string. Unknown scopes are an error naming them.
    pub fn parse(text: &str) -> Result<Scopes, String> {
        let mut set = Scopes::default();
        for word in text.split([' ', ',']).filter(|w| !w.is_empty()) {
            let scope = Scope::parse(word).ok_or_else(|| format!("Invalid scope: {word}"))?;
            set.0 |= scope.implied().0;
        }
        Ok(set)
    }

    pub fn has(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every scope of `other` is in `self`.
    pub fn contains(self, other: Scopes) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.has(*s))
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<&str> = self.iter().map(Scope::as_str).collect();
        f.write_str(&words.join(" "))
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scopes({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing_and_implication() {
        let s = Scopes::parse("repo:admin, org:admin").unwrap();
        assert!(s.has(Scope::RepoRead) && s.has(Scope::RepoWrite) && s.has(Scope::OrgAdmin));
        assert!(!s.has(Scope::RepoCreate));
        assert_eq!(s.to_string(), "repo:read repo:write repo:admin org:admin");
        assert_eq!(
            Scopes::parse("repo:nope"),
            Err("Invalid scope: repo:nope".into())
        );
        assert!(Scopes::parse("").unwrap().is_empty());
        assert!(Scopes::all().contains(s));
        assert!(!s.contains(Scopes::all()));
    }
}
