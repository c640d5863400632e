//! Authentication and RBAC authorization (optional mode).
//!
//! Authentication is by bearer token:
//! - the emulator's admin token (in its kubeconfig and [`crate::Emulator::client`]) is user
//!   `kube-emulator-admin` in group `system:masters`;
//! - a ServiceAccount token, obtained from `POST .../serviceaccounts/{name}/token`
//!   (`kubectl create token`) or [`crate::Emulator::service_account_token`], has the form
//!   `kube-emulator-sa.<namespace>.<name>` and authenticates as
//!   `system:serviceaccount:<namespace>:<name>` in groups `system:serviceaccounts`,
//!   `system:serviceaccounts:<namespace>` and `system:authenticated`, as long as that
//!   ServiceAccount exists;
//! - no token is `system:anonymous`; any other token is rejected with `401`;
//! - the administrator may impersonate (`Impersonate-User`/`Impersonate-Group`, i.e.
//!   `kubectl --as=system:serviceaccount:ns:name`).
//!
//! With RBAC off every authenticated request is allowed. With RBAC on, a request is allowed if
//! a rule of a Role (via a RoleBinding in the request's namespace) or ClusterRole (via a
//! ClusterRoleBinding, or a RoleBinding in the namespace) matches its verb, API group, resource
//! (`pods`, `pods/log`, `services/proxy`, `*`), name and non-resource URL, exactly as the
//! apiserver's RBAC authorizer evaluates them; otherwise the answer is `403 Forbidden` with the
//! apiserver's message. Discovery (`/api`, `/apis`, `/version`, `/openapi`, `/healthz`) is open
//! to every authenticated user (the `system:discovery` binding). `aggregationRule`s of
//! ClusterRoles are honoured. Escalation checks on creating Roles/bindings are not emulated.

use serde_json::Value;

use crate::api::State;
use crate::selector::LabelSelector;

/// The token of the emulator's administrator.
pub const ADMIN_TOKEN: &str = "kube-emulator-admin-token";

/// Prefix of ServiceAccount tokens.
pub const SA_TOKEN_PREFIX: &str = "kube-emulator-sa.";

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// User name.
    pub name: String,
    /// Group names.
    pub groups: Vec<String>,
}

impl User {
    /// The administrator.
    pub fn admin() -> Self {
        Self {
            name: "kube-emulator-admin".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        }
    }

    fn anonymous() -> Self {
        Self {
            name: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
        }
    }

    fn is_admin(&self) -> bool {
        self.groups.iter().any(|g| g == "system:masters")
    }
}

/// The token that authenticates as ServiceAccount `ns/name`.
pub fn service_account_token(ns: &str, name: &str) -> String {
    format!("{SA_TOKEN_PREFIX}{ns}.{name}")
}

/// Applies `Impersonate-User` / `Impersonate-Group` headers. Only the administrator may
/// impersonate (the apiserver checks the `impersonate` verb; here only `system:masters` has it).
/// Fails with `403` when someone else asks to impersonate.
pub fn impersonate(
    user: User,
    as_user: Option<&str>,
    as_groups: Vec<String>,
) -> crate::status::ApiResult<User> {
    let Some(name) = as_user.filter(|n| !n.is_empty()) else {
        return Ok(user);
    };
    if !user.is_admin() {
        return Err(crate::status::ApiError::forbidden(format!(
            "users \"{name}\" is forbidden: User \"{}\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope",
            user.name
        )));
    }
    let mut groups = as_groups;
    if let Some(rest) = name.strip_prefix("system:serviceaccount:") {
        let ns = rest.split(':').next().unwrap_or_default();
        groups.push("system:serviceaccounts".into());
        groups.push(format!("system:serviceaccounts:{ns}"));
    }
    groups.push("system:authenticated".into());
    Ok(User {
        name: name.to_owned(),
        groups,
    })
}

/// Resolves the `Authorization` header. `None`: the token is invalid (`401`).
pub fn authenticate(state: &State, authorization: Option<&str>) -> Option<User> {
    let Some(token) = authorization
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
    else {
        return Some(User::anonymous());
    };
    if token == ADMIN_TOKEN {
        return Some(User::admin());
    }
    let rest = token.strip_prefix(SA_TOKEN_PREFIX)?;
    let (ns, name) = rest.split_once('.')?;
    let sa = state.rt("", "serviceaccounts");
    state.find(&sa, ns, name)?;
    Some(User {
        name: format!("system:serviceaccount:{ns}:{name}"),
        groups: vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{ns}"),
            "system:authenticated".into(),
        ],
    })
}

/// What a request wants to do.
#[derive(Debug, Clone, Default)]
pub struct Attributes {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`.
    pub verb: String,
    /// API group (empty: core).
    pub group: String,
    /// Resource plural.
    pub resource: String,
    /// Subresource (`status`, `log`, `proxy`, ...), empty if none.
    pub subresource: String,
    /// Namespace, empty for cluster-scoped requests.
    pub namespace: String,
    /// Object name, empty for collections.
    pub name: String,
    /// For non-resource requests: the path.
    pub path: Option<String>,
}

fn matches_any(list: &Value, want: &str) -> bool {
    list.as_array()
        .is_some_and(|a| a.iter().any(|v| v == "*" || v.as_str() == Some(want)))
}

fn rule_allows(rule: &Value, a: &Attributes) -> bool {
    if !matches_any(&rule["verbs"], &a.verb) {
        return false;
    }
    if let Some(path) = &a.path {
        return rule["nonResourceURLs"].as_array().is_some_and(|urls| {
            urls.iter().filter_map(Value::as_str).any(|u| {
                u == "*" || u == path || u.strip_suffix('*').is_some_and(|p| path.starts_with(p))
            })
        });
    }
    if !matches_any(&rule["apiGroups"], &a.group) {
        return false;
    }
    let combined = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let res_ok = rule["resources"].as_array().is_some_and(|rs| {
        rs.iter().filter_map(Value::as_str).any(|r| {
            r == "*"
                || r == combined
                || (!a.subresource.is_empty() && r == format!("*/{}", a.subresource))
                || (!a.subresource.is_empty() && r == format!("{}/*", a.resource))
        })
    });
    if !res_ok {
        return false;
    }
    match rule["resourceNames"].as_array() {
        Some(names) if !names.is_empty() => {
            !a.name.is_empty() && names.iter().any(|n| n.as_str() == Some(&a.name))
        }
        _ => true,
    }
}

fn subject_matches(subject: &Value, user: &User, binding_ns: &str) -> bool {
    let name = subject["name"].as_str().unwrap_or_default();
    match subject["kind"].as_str().unwrap_or_default() {
        "User" => user.name == name,
        "Group" => user.groups.iter().any(|g| g == name),
        "ServiceAccount" => {
            let ns = subject["namespace"]
                .as_str()
                .filter(|n| !n.is_empty())
                .unwrap_or(binding_ns);
            user.name == format!("system:serviceaccount:{ns}:{name}")
        }
        _ => false,
    }
}

/// The rules of a ClusterRole, including aggregated ones.
fn cluster_role_rules(state: &State, name: &str) -> Vec<Value> {
    let rt = state.rt("rbac.authorization.k8s.io", "clusterroles");
    let Some(role) = state.find(&rt, "", name) else {
        return vec![];
    };
    let mut rules: Vec<Value> = role["rules"].as_array().cloned().unwrap_or_default();
    if let Some(selectors) = role["aggregationRule"]["clusterRoleSelectors"].as_array() {
        for other in state.store.list(&rt.store_key(), None) {
            if other["metadata"]["name"] == name {
                continue;
            }
            if selectors
                .iter()
                .any(|s| LabelSelector::from_object(Some(s)).matches(&other))
            {
                rules.extend(other["rules"].as_array().cloned().unwrap_or_default());
            }
        }
    }
    rules
}

fn role_rules(state: &State, role_ref: &Value, binding_ns: &str) -> Vec<Value> {
    let name = role_ref["name"].as_str().unwrap_or_default();
    match role_ref["kind"].as_str() {
        Some("ClusterRole") => cluster_role_rules(state, name),
        Some("Role") => {
            let rt = state.rt("rbac.authorization.k8s.io", "roles");
            state
                .find(&rt, binding_ns, name)
                .and_then(|r| r["rules"].as_array().cloned())
                .unwrap_or_default()
        }
        _ => vec![],
    }
}

fn is_discovery(path: &str) -> bool {
    path == "/api"
        || path == "/apis"
        || path.starts_with("/api/")
        || path.starts_with("/apis/")
        || path.starts_with("/openapi")
        || path == "/version"
        || matches!(path, "/healthz" | "/livez" | "/readyz")
}

/// Whether `user` may do `a`.
pub fn authorize(state: &State, user: &User, a: &Attributes) -> bool {
    if user.is_admin() {
        return true;
    }
    if let Some(path) = &a.path
        && user.groups.iter().any(|g| g == "system:authenticated")
        && is_discovery(path)
        && a.verb == "get"
    {
        return true;
    }
    // Every authenticated user may review its own access (system:basic-user).
    if a.group == "authorization.k8s.io"
        && a.resource.starts_with("selfsubject")
        && a.verb == "create"
    {
        return user.groups.iter().any(|g| g == "system:authenticated");
    }
    let crb = state.rt("rbac.authorization.k8s.io", "clusterrolebindings");
    for b in state.store.list(&crb.store_key(), None) {
        let subjects = b["subjects"].as_array().cloned().unwrap_or_default();
        if subjects.iter().any(|s| subject_matches(s, user, ""))
            && role_rules(state, &b["roleRef"], "")
                .iter()
                .any(|r| rule_allows(r, a))
        {
            return true;
        }
    }
    if !a.namespace.is_empty() {
        let rb = state.rt("rbac.authorization.k8s.io", "rolebindings");
        for b in state.store.list(&rb.store_key(), Some(&a.namespace)) {
            let subjects = b["subjects"].as_array().cloned().unwrap_or_default();
            if subjects
                .iter()
                .any(|s| subject_matches(s, user, &a.namespace))
                && role_rules(state, &b["roleRef"], &a.namespace)
                    .iter()
                    .any(|r| rule_allows(r, a))
            {
                return true;
            }
        }
    }
    false
}

/// The apiserver's 403 message.
pub fn forbidden_message(user: &User, a: &Attributes) -> String {
    if let Some(path) = &a.path {
        return format!(
            "forbidden: User \"{}\" cannot {} path \"{path}\"",
            user.name, a.verb
        );
    }
    let res = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let what = if a.name.is_empty() {
        format!("{res} is forbidden")
    } else {
        format!("{res} \"{}\" is forbidden", a.name)
    };
    let scope = if a.namespace.is_empty() {
        "at the cluster scope".to_owned()
    } else {
        format!("in the namespace \"{}\"", a.namespace)
    };
    format!(
        "{what}: User \"{}\" cannot {} resource \"{res}\" in API group \"{}\" {scope}",
        user.name, a.verb, a.group
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Cluster, WriteOptions};
    use serde_json::json;

    #[test]
    fn roles_and_bindings_grant_exactly_their_rules() {
        let c = Cluster::new(100);
        let mut st = c.lock();
        let o = WriteOptions::controller("t");
        let sa = st.rt("", "serviceaccounts");
        st.create(&sa, "default", json!({"metadata": {"name": "op"}}), &o)
            .unwrap();
        let role = st.rt("rbac.authorization.k8s.io", "roles");
        st.create(&role, "default", json!({"metadata": {"name": "r"}, "rules": [
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]},
            {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["only"], "verbs": ["get"]},
            {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}
        ]}), &o).unwrap();
        let rb = st.rt("rbac.authorization.k8s.io", "rolebindings");
        st.create(
            &rb,
            "default",
            json!({"metadata": {"name": "rb"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
            "subjects": [{"kind": "ServiceAccount", "name": "op"}]}),
            &o,
        )
        .unwrap();
        let user = authenticate(
            &st,
            Some(&format!(
                "Bearer {}",
                service_account_token("default", "op")
            )),
        )
        .unwrap();
        assert_eq!(user.name, "system:serviceaccount:default:op");
        let at = |verb: &str, res: &str, sub: &str, ns: &str, name: &str| Attributes {
            verb: verb.into(),
            resource: res.into(),
            subresource: sub.into(),
            namespace: ns.into(),
            name: name.into(),
            ..Default::default()
        };
        assert!(authorize(
            &st,
            &user,
            &at("list", "configmaps", "", "default", "")
        ));
        assert!(!authorize(
            &st,
            &user,
            &at("delete", "configmaps", "", "default", "x")
        ));
        assert!(!authorize(
            &st,
            &user,
            &at("list", "configmaps", "", "other", "")
        ));
        assert!(authorize(
            &st,
            &user,
            &at("get", "secrets", "", "default", "only")
        ));
        assert!(!authorize(
            &st,
            &user,
            &at("get", "secrets", "", "default", "other")
        ));
        assert!(authorize(
            &st,
            &user,
            &at("get", "pods", "log", "default", "p")
        ));
        assert!(!authorize(
            &st,
            &user,
            &at("get", "pods", "", "default", "p")
        ));
        assert!(authenticate(&st, Some("Bearer kube-emulator-sa.default.ghost")).is_none());
        assert_eq!(
            forbidden_message(&user, &at("delete", "configmaps", "", "default", "x")),
            "configmaps \"x\" is forbidden: User \"system:serviceaccount:default:op\" cannot delete resource \"configmaps\" in API group \"\" in the namespace \"default\""
        );
    }
}
