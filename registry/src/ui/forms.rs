//! Form bodies (`application/x-www-form-urlencoded`) and their CSRF check.
//!
//! Rule: a handler of a `POST` gets its fields only through [`Form::checked`], which refuses a
//! body whose `_csrf` field is not the session's token (or, before a session exists, the
//! double-submit cookie's value) before the handler sees any field.

use std::collections::HashMap;

use axum::body::Bytes;

use super::{UiError, Viewer};
use crate::service::tenancy::sessions;

/// The most bytes a UI form may carry (a repository description is the largest field).
pub const MAX_FORM: usize = 256 * 1024;

/// A parsed form.
#[derive(Debug, Default)]
pub struct Form {
    fields: HashMap<String, String>,
}

impl Form {
    /// Parses `body` and checks its CSRF token against `viewer`.
    pub fn checked(viewer: &Viewer, body: &Bytes) -> Result<Form, UiError> {
        if body.len() > MAX_FORM {
            return Err(UiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "This form is too large.",
            ));
        }
        let form = Form::parse(body);
        if form.text("_csrf").contains('\0') {
            return Err(UiError::csrf());
        }
        let presented = form.text("_csrf");
        let ok = match &viewer.session {
            Some(session) => sessions::csrf_matches(session, presented),
            // Double submit: the cookie was set by this site; a cross-site form cannot read it.
            None => {
                !viewer.pre_csrf_new
                    && crate::service::constant_time_eq(
                        viewer.pre_csrf.as_bytes(),
                        presented.as_bytes(),
                    )
            }
        };
        if !ok || presented.is_empty() {
            return Err(UiError::csrf());
        }
        if form.fields.values().any(|v| v.contains('\0')) {
            return Err(UiError::bad_request(
                "Form fields may not contain NUL characters.",
            ));
        }
        Ok(form)
    }

    fn parse(body: &[u8]) -> Form {
        let fields = form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Form { fields }
    }

    /// A field's text, `""` when absent.
    pub fn text(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", String::as_str)
    }

    /// A field's trimmed text, `None` when absent or blank.
    pub fn opt(&self, name: &str) -> Option<&str> {
        Some(self.text(name).trim()).filter(|t| !t.is_empty())
    }

    /// A required field's trimmed text.
    pub fn required(&self, name: &str, label: &str) -> Result<&str, UiError> {
        self.opt(name)
            .ok_or_else(|| UiError::bad_request(format!("{label} is required.")))
    }

    /// Whether a checkbox is checked.
    pub fn checked_box(&self, name: &str) -> bool {
        matches!(self.text(name), "on" | "true" | "1")
    }
}

/// A query string's fields (for `GET` pages: filters and page tokens).
pub fn query(raw: Option<&str>) -> HashMap<String, String> {
    raw.map(|q| {
        form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    })
    .unwrap_or_default()
}
