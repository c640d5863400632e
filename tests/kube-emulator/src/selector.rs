//! Label and field selectors.
//!
//! Label selectors follow the apiserver's string syntax: comma-separated requirements, each
//! `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k` (exists) or `!k` (does not
//! exist); all requirements must hold. `!=` and `notin` also match objects without the label.
//! Object-form selectors (`matchLabels`/`matchExpressions`, as in a Deployment) are converted
//! to the same requirements by [`LabelSelector::from_object`]; an empty object selector matches
//! everything, a missing one nothing.
//!
//! Field selectors support `metadata.name` and `metadata.namespace` for every kind, plus a few
//! common kind-specific fields (`status.phase`, `spec.nodeName`, `type` for Secrets,
//! `involvedObject.*` for Events), with `=`, `==` and `!=`.

use serde_json::Value;

use crate::status::{ApiError, ApiResult};

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Eq(String),
    Ne(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
}

/// A parsed label selector.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector {
    reqs: Vec<(String, Op)>,
    /// A selector that matches nothing (a missing object selector).
    nothing: bool,
}

impl LabelSelector {
    /// Parses the string form used in `?labelSelector=`.
    pub fn parse(s: &str) -> ApiResult<Self> {
        let mut reqs = Vec::new();
        for part in split_top_level(s) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            reqs.push(parse_requirement(part)?);
        }
        Ok(Self {
            reqs,
            nothing: false,
        })
    }

    /// Converts a `metav1.LabelSelector` object; `None`/null selects nothing.
    pub fn from_object(v: Option<&Value>) -> Self {
        let Some(v) = v.filter(|v| v.is_object()) else {
            return Self {
                reqs: vec![],
                nothing: true,
            };
        };
        let mut reqs = Vec::new();
        if let Some(m) = v["matchLabels"].as_object() {
            for (k, val) in m {
                reqs.push((k.clone(), Op::Eq(val.as_str().unwrap_or_default().into())));
            }
        }
        if let Some(exprs) = v["matchExpressions"].as_array() {
            for e in exprs {
                let key = e["key"].as_str().unwrap_or_default().to_owned();
                let values: Vec<String> = e["values"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                let op = match e["operator"].as_str().unwrap_or_default() {
                    "In" => Op::In(values),
                    "NotIn" => Op::NotIn(values),
                    "Exists" => Op::Exists,
                    _ => Op::DoesNotExist,
                };
                reqs.push((key, op));
            }
        }
        Self {
            reqs,
            nothing: false,
        }
    }

    /// A selector equal to `matchLabels: labels` (as a Service's `spec.selector`).
    pub fn from_map(labels: &serde_json::Map<String, Value>) -> Self {
        Self {
            reqs: labels
                .iter()
                .map(|(k, v)| (k.clone(), Op::Eq(v.as_str().unwrap_or_default().into())))
                .collect(),
            nothing: false,
        }
    }

    /// True if it has no requirement (and so matches everything).
    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty() && !self.nothing
    }

    /// Whether an object's `metadata.labels` satisfy the selector.
    pub fn matches(&self, obj: &Value) -> bool {
        if self.nothing {
            return false;
        }
        let labels = &obj["metadata"]["labels"];
        self.reqs.iter().all(|(k, op)| {
            let v = labels.get(k).and_then(Value::as_str);
            match op {
                Op::Eq(x) => v == Some(x.as_str()),
                Op::Ne(x) => v != Some(x.as_str()),
                Op::In(xs) => v.is_some_and(|v| xs.iter().any(|x| x == v)),
                Op::NotIn(xs) => v.is_none_or(|v| xs.iter().all(|x| x != v)),
                Op::Exists => v.is_some(),
                Op::DoesNotExist => v.is_none(),
            }
        })
    }
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn bad(s: &str) -> ApiError {
    ApiError::bad_request(format!("unable to parse requirement: {s:?}"))
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn parse_requirement(part: &str) -> ApiResult<(String, Op)> {
    if let Some(k) = part.strip_prefix('!') {
        let k = k.trim();
        return if valid_key(k) {
            Ok((k.to_owned(), Op::DoesNotExist))
        } else {
            Err(bad(part))
        };
    }
    for (sym, ne) in [("!=", true), ("==", false), ("=", false)] {
        if let Some((k, v)) = part.split_once(sym) {
            let (k, v) = (k.trim(), v.trim());
            if !valid_key(k) {
                return Err(bad(part));
            }
            let op = if ne {
                Op::Ne(v.into())
            } else {
                Op::Eq(v.into())
            };
            return Ok((k.to_owned(), op));
        }
    }
    let mut words = part.splitn(2, char::is_whitespace);
    let key = words.next().unwrap_or_default().trim();
    let rest = words.next().unwrap_or_default().trim();
    if rest.is_empty() {
        return if valid_key(key) {
            Ok((key.to_owned(), Op::Exists))
        } else {
            Err(bad(part))
        };
    }
    let (op, list) = if let Some(l) = rest.strip_prefix("notin") {
        (false, l)
    } else if let Some(l) = rest.strip_prefix("in") {
        (true, l)
    } else {
        return Err(bad(part));
    };
    let list = list
        .trim()
        .strip_prefix('(')
        .and_then(|l| l.strip_suffix(')'))
        .ok_or_else(|| bad(part))?;
    let values: Vec<String> = list
        .split(',')
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect();
    if !valid_key(key) {
        return Err(bad(part));
    }
    Ok((
        key.to_owned(),
        if op {
            Op::In(values)
        } else {
            Op::NotIn(values)
        },
    ))
}

/// A parsed field selector.
#[derive(Debug, Clone, Default)]
pub struct FieldSelector {
    reqs: Vec<(String, bool, String)>,
}

impl FieldSelector {
    /// Parses `?fieldSelector=`; unknown fields are rejected like the apiserver does.
    pub fn parse(s: &str, kind: &str) -> ApiResult<Self> {
        let mut reqs = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, eq, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            let field = field.trim();
            if !field_supported(kind, field) {
                return Err(ApiError::bad_request(format!(
                    "\"{field}\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
                )));
            }
            reqs.push((field.to_owned(), eq, value.trim().to_owned()));
        }
        Ok(Self { reqs })
    }

    /// The name required by `metadata.name=...`, if any (lets watches target one object).
    pub fn required_name(&self) -> Option<&str> {
        self.reqs
            .iter()
            .find(|(f, eq, _)| f == "metadata.name" && *eq)
            .map(|(_, _, v)| v.as_str())
    }

    /// Whether the object satisfies all requirements.
    pub fn matches(&self, obj: &Value) -> bool {
        self.reqs.iter().all(|(field, eq, value)| {
            let mut cur = obj;
            for seg in field.split('.') {
                cur = &cur[seg];
            }
            let actual = match cur {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (actual == *value) == *eq
        })
    }
}

fn field_supported(kind: &str, field: &str) -> bool {
    matches!(field, "metadata.name" | "metadata.namespace")
        || match kind {
            "Pod" => matches!(
                field,
                "status.phase"
                    | "spec.nodeName"
                    | "spec.restartPolicy"
                    | "status.podIP"
                    | "spec.serviceAccountName"
            ),
            "Secret" => field == "type",
            "Event" => {
                field.starts_with("involvedObject.")
                    || field.starts_with("regarding.")
                    || matches!(field, "reason" | "type" | "reportingController" | "source")
            }
            "Namespace" => field == "status.phase",
            _ => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "a", "namespace": "ns", "labels": labels}, "status": {"phase": "Running"}})
    }

    #[test]
    fn label_selector_operators() {
        let o = obj(json!({"app": "web", "tier": "front"}));
        let m = |s: &str| LabelSelector::parse(s).unwrap().matches(&o);
        assert!(m("app=web"));
        assert!(m("app==web,tier"));
        assert!(!m("app!=web"));
        assert!(m("env!=prod"));
        assert!(m("app in (web, api)"));
        assert!(!m("app notin (web)"));
        assert!(m("env notin (prod)"));
        assert!(m("!env"));
        assert!(!m("!app"));
        assert!(!m("app,env"));
        assert!(m(""));
        assert!(LabelSelector::parse("app in web").is_err());
    }

    #[test]
    fn object_selectors() {
        let o = obj(json!({"app": "web"}));
        let s = LabelSelector::from_object(Some(&json!({"matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]})));
        assert!(s.matches(&o));
        assert!(LabelSelector::from_object(Some(&json!({}))).matches(&o));
        assert!(!LabelSelector::from_object(None).matches(&o));
    }

    #[test]
    fn field_selectors() {
        let o = obj(json!({}));
        let f = FieldSelector::parse("metadata.name=a,metadata.namespace!=x", "Pod").unwrap();
        assert!(f.matches(&o));
        assert_eq!(f.required_name(), Some("a"));
        assert!(
            FieldSelector::parse("status.phase==Running", "Pod")
                .unwrap()
                .matches(&o)
        );
        assert!(FieldSelector::parse("spec.foo=1", "ConfigMap").is_err());
    }
}
