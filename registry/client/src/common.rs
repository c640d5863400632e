//! Shapes every area shares: Quay's error bodies, avatars, `{"success": ...}`.

use serde::{Deserialize, Serialize};

/// Quay's error body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    pub status: u16,
    pub error_message: String,
    pub error_type: String,
    pub detail: String,
    pub title: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// `{"message": ...}`: how Quay answers some invalid requests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Avatar {
    pub name: String,
    pub hash: String,
    pub color: String,
    pub kind: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Success {
    pub success: bool,
}

/// Quay's rule for namespace (user, organization) and team names:
/// `^[a-z0-9]+([._-][a-z0-9]+)*$`, 2 to 255 characters. Such names are always valid OCI path
/// components. The server enforces it; clients check it before they call.
pub fn is_valid_namespace_name(name: &str) -> bool {
    let mut prev_sep = true;
    for c in name.chars() {
        let sep = matches!(c, '.' | '_' | '-');
        if !(sep || c.is_ascii_lowercase() || c.is_ascii_digit()) || (sep && prev_sep) {
            return false;
        }
        prev_sep = sep;
    }
    (2..=255).contains(&name.len()) && !prev_sep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_names_follow_quay() {
        for ok in ["ab", "acme", "a.b-c_d", "0x"] {
            assert!(is_valid_namespace_name(ok), "{ok}");
        }
        for bad in ["", "a", "Acme", "-a", "a-", "a..b", "a b", "ä1"] {
            assert!(!is_valid_namespace_name(bad), "{bad}");
        }
    }
}
