//! Decoding of the few protobuf request bodies clients send (`application/vnd.kubernetes.protobuf`).
//!
//! client-go's typed clients (Helm's release storage, namespace creation) encode built-in
//! objects as protobuf. Responses are always JSON, which those clients accept. Decoded kinds:
//! `Secret`, `ConfigMap`, `Namespace`, `ServiceAccount`, RBAC kinds, `DeleteOptions`, access reviews
//! (`kubectl auth can-i`) and `TokenRequest` (`kubectl create token`), with the
//! `ObjectMeta` fields clients set (name, generateName, namespace, uid, resourceVersion,
//! labels, annotations, ownerReferences, finalizers). Any other kind is answered with `415`.
//!
//! Wire format: the 4-byte magic `k8s\0`, then a `runtime.Unknown` message
//! (`typeMeta` = 1 {apiVersion = 1, kind = 2}, `raw` = 2), whose `raw` is the object message.

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::status::{ApiError, ApiResult};

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn bad() -> ApiError {
    ApiError::bad_request("invalid protobuf body")
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn varint(&mut self) -> ApiResult<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or_else(bad)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(bad())
    }

    fn next(&mut self) -> ApiResult<Option<(u64, Field<'a>)>> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => {
                self.pos += 8;
                Field::Fixed
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| bad())?;
                let end = self
                    .pos
                    .checked_add(len)
                    .filter(|e| *e <= self.buf.len())
                    .ok_or_else(bad)?;
                let b = &self.buf[self.pos..end];
                self.pos = end;
                Field::Bytes(b)
            }
            5 => {
                self.pos += 4;
                Field::Fixed
            }
            _ => return Err(bad()),
        };
        Ok(Some((key >> 3, field)))
    }
}

/// All fields of a message, in order.
fn fields(buf: &[u8]) -> ApiResult<Vec<(u64, Field<'_>)>> {
    let mut r = Reader::new(buf);
    let mut out = Vec::new();
    while let Some(f) = r.next()? {
        out.push(f);
    }
    Ok(out)
}

fn string(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A `map<string, string|bytes>` entry: key = 1, value = 2.
fn map_entry(b: &[u8]) -> ApiResult<(String, Vec<u8>)> {
    let (mut k, mut v) = (String::new(), Vec::new());
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Field::Bytes(x)) => k = string(x),
            (2, Field::Bytes(x)) => v = x.to_vec(),
            _ => {}
        }
    }
    Ok((k, v))
}

fn insert_map(obj: &mut Value, key: &str, entry: (String, Value)) {
    if !obj[key].is_object() {
        obj[key] = Value::Object(Map::new());
    }
    obj[key][entry.0] = entry.1;
}

fn push(obj: &mut Value, key: &str, v: Value) {
    if !obj[key].is_array() {
        obj[key] = json!([]);
    }
    if let Some(a) = obj[key].as_array_mut() {
        a.push(v);
    }
}

fn object_meta(b: &[u8]) -> ApiResult<Value> {
    let mut m = json!({});
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Field::Bytes(x)) => m["name"] = json!(string(x)),
            (2, Field::Bytes(x)) => m["generateName"] = json!(string(x)),
            (3, Field::Bytes(x)) => m["namespace"] = json!(string(x)),
            (5, Field::Bytes(x)) => m["uid"] = json!(string(x)),
            (6, Field::Bytes(x)) => m["resourceVersion"] = json!(string(x)),
            (11, Field::Bytes(x)) => {
                let (k, v) = map_entry(x)?;
                insert_map(&mut m, "labels", (k, json!(string(&v))));
            }
            (12, Field::Bytes(x)) => {
                let (k, v) = map_entry(x)?;
                insert_map(&mut m, "annotations", (k, json!(string(&v))));
            }
            (13, Field::Bytes(x)) => {
                let mut r = json!({});
                for (n, f) in fields(x)? {
                    match (n, f) {
                        (1, Field::Bytes(y)) => r["kind"] = json!(string(y)),
                        (3, Field::Bytes(y)) => r["name"] = json!(string(y)),
                        (4, Field::Bytes(y)) => r["uid"] = json!(string(y)),
                        (5, Field::Bytes(y)) => r["apiVersion"] = json!(string(y)),
                        (6, Field::Varint(y)) => r["controller"] = json!(y != 0),
                        (7, Field::Varint(y)) => r["blockOwnerDeletion"] = json!(y != 0),
                        _ => {}
                    }
                }
                push(&mut m, "ownerReferences", r);
            }
            (14, Field::Bytes(x)) => push(&mut m, "finalizers", json!(string(x))),
            _ => {}
        }
    }
    Ok(m)
}

fn b64(b: &[u8]) -> Value {
    json!(base64::engine::general_purpose::STANDARD.encode(b))
}

/// Decodes a protobuf request body into the equivalent JSON object.
pub fn decode(body: &[u8]) -> ApiResult<Value> {
    let inner = body.strip_prefix(b"k8s\0").ok_or_else(bad)?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for (n, f) in fields(inner)? {
        match (n, f) {
            (1, Field::Bytes(tm)) => {
                for (n, f) in fields(tm)? {
                    match (n, f) {
                        (1, Field::Bytes(x)) => api_version = string(x),
                        (2, Field::Bytes(x)) => kind = string(x),
                        _ => {}
                    }
                }
            }
            (2, Field::Bytes(x)) => raw = x,
            _ => {}
        }
    }
    let mut obj = json!({"apiVersion": api_version, "kind": kind});
    match kind.as_str() {
        "Secret" | "ConfigMap" | "Namespace" | "ServiceAccount" => {
            for (n, f) in fields(raw)? {
                let Field::Bytes(x) = f else {
                    if let (Field::Varint(v), "Secret", 5) | (Field::Varint(v), "ConfigMap", 4) =
                        (f, kind.as_str(), n)
                    {
                        obj["immutable"] = json!(v != 0);
                    }
                    continue;
                };
                match (kind.as_str(), n) {
                    (_, 1) => obj["metadata"] = object_meta(x)?,
                    ("Secret", 2) => {
                        let (k, v) = map_entry(x)?;
                        insert_map(&mut obj, "data", (k, b64(&v)));
                    }
                    ("Secret", 3) => obj["type"] = json!(string(x)),
                    ("Secret", 4) => {
                        let (k, v) = map_entry(x)?;
                        insert_map(&mut obj, "stringData", (k, json!(string(&v))));
                    }
                    ("ConfigMap", 2) => {
                        let (k, v) = map_entry(x)?;
                        insert_map(&mut obj, "data", (k, json!(string(&v))));
                    }
                    ("ConfigMap", 3) => {
                        let (k, v) = map_entry(x)?;
                        insert_map(&mut obj, "binaryData", (k, b64(&v)));
                    }
                    ("Namespace", 2) => {
                        let mut spec = json!({});
                        for (n, f) in fields(x)? {
                            if let (1, Field::Bytes(y)) = (n, f) {
                                push(&mut spec, "finalizers", json!(string(y)));
                            }
                        }
                        obj["spec"] = spec;
                    }
                    _ => {}
                }
            }
            Ok(obj)
        }
        "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding" => {
            let strs = |b: &[u8], names: &[&str]| -> ApiResult<Value> {
                let mut o = json!({});
                for (n, f) in fields(b)? {
                    if let (Some(k), Field::Bytes(z)) =
                        (names.get(n as usize).filter(|k| !k.is_empty()), f)
                    {
                        o[*k] = json!(string(z));
                    }
                }
                Ok(o)
            };
            let binding = kind.ends_with("Binding");
            for (n, f) in fields(raw)? {
                let Field::Bytes(x) = f else { continue };
                match (binding, n) {
                    (_, 1) => obj["metadata"] = object_meta(x)?,
                    (false, 2) => {
                        let mut rule = json!({});
                        let names = [
                            "",
                            "verbs",
                            "apiGroups",
                            "resources",
                            "resourceNames",
                            "nonResourceURLs",
                        ];
                        for (n, f) in fields(x)? {
                            if let (Some(k), Field::Bytes(z)) =
                                (names.get(n as usize).filter(|k| !k.is_empty()), f)
                            {
                                push(&mut rule, k, json!(string(z)));
                            }
                        }
                        push(&mut obj, "rules", rule);
                    }
                    (false, 3) => {
                        let mut selectors = Vec::new();
                        for (n, f) in fields(x)? {
                            if let (1, Field::Bytes(sel)) = (n, f) {
                                let mut labels = json!({});
                                for (n, f) in fields(sel)? {
                                    if let (1, Field::Bytes(e)) = (n, f) {
                                        let (k, v) = map_entry(e)?;
                                        labels[k] = json!(string(&v));
                                    }
                                }
                                selectors.push(json!({"matchLabels": labels}));
                            }
                        }
                        obj["aggregationRule"] = json!({"clusterRoleSelectors": selectors});
                    }
                    (true, 2) => push(
                        &mut obj,
                        "subjects",
                        strs(x, &["", "kind", "apiGroup", "name", "namespace"])?,
                    ),
                    (true, 3) => obj["roleRef"] = strs(x, &["", "apiGroup", "kind", "name"])?,
                    _ => {}
                }
            }
            Ok(obj)
        }
        "SelfSubjectAccessReview" | "SubjectAccessReview" => {
            let mut spec = json!({});
            for (n, f) in fields(raw)? {
                match (n, f) {
                    (1, Field::Bytes(x)) => obj["metadata"] = object_meta(x)?,
                    (2, Field::Bytes(x)) => {
                        for (n, f) in fields(x)? {
                            match (n, f) {
                                (1, Field::Bytes(y)) => {
                                    let mut ra = json!({});
                                    let names = [
                                        "",
                                        "namespace",
                                        "verb",
                                        "group",
                                        "version",
                                        "resource",
                                        "subresource",
                                        "name",
                                    ];
                                    for (n, f) in fields(y)? {
                                        if let (Some(k), Field::Bytes(z)) =
                                            (names.get(n as usize).filter(|k| !k.is_empty()), f)
                                        {
                                            ra[*k] = json!(string(z));
                                        }
                                    }
                                    spec["resourceAttributes"] = ra;
                                }
                                (2, Field::Bytes(y)) => {
                                    let mut na = json!({});
                                    for (n, f) in fields(y)? {
                                        match (n, f) {
                                            (1, Field::Bytes(z)) => na["path"] = json!(string(z)),
                                            (2, Field::Bytes(z)) => na["verb"] = json!(string(z)),
                                            _ => {}
                                        }
                                    }
                                    spec["nonResourceAttributes"] = na;
                                }
                                (3, Field::Bytes(y)) => spec["user"] = json!(string(y)),
                                (4, Field::Bytes(y)) => push(&mut spec, "groups", json!(string(y))),
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
            }
            obj["spec"] = spec;
            Ok(obj)
        }
        "TokenRequest" => {
            let mut spec = json!({});
            for (n, f) in fields(raw)? {
                match (n, f) {
                    (1, Field::Bytes(x)) => obj["metadata"] = object_meta(x)?,
                    (2, Field::Bytes(x)) => {
                        for (n, f) in fields(x)? {
                            match (n, f) {
                                (1, Field::Bytes(y)) => {
                                    push(&mut spec, "audiences", json!(string(y)))
                                }
                                (4, Field::Varint(v)) => spec["expirationSeconds"] = json!(v),
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
            }
            obj["spec"] = spec;
            Ok(obj)
        }
        "DeleteOptions" => {
            for (n, f) in fields(raw)? {
                match (n, f) {
                    (1, Field::Varint(v)) => obj["gracePeriodSeconds"] = json!(v as i64),
                    (2, Field::Bytes(x)) => {
                        let mut p = json!({});
                        for (n, f) in fields(x)? {
                            match (n, f) {
                                (1, Field::Bytes(y)) => p["uid"] = json!(string(y)),
                                (2, Field::Bytes(y)) => p["resourceVersion"] = json!(string(y)),
                                _ => {}
                            }
                        }
                        obj["preconditions"] = p;
                    }
                    (3, Field::Varint(v)) => obj["orphanDependents"] = json!(v != 0),
                    (4, Field::Bytes(x)) => obj["propagationPolicy"] = json!(string(x)),
                    (5, Field::Bytes(x)) => push(&mut obj, "dryRun", json!(string(x))),
                    _ => {}
                }
            }
            Ok(obj)
        }
        _ => Err(ApiError::unsupported_media_type(&format!(
            "application/vnd.kubernetes.protobuf ({kind}): this kind is not decoded; send JSON"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_field(n: u64, b: &[u8]) -> Vec<u8> {
        let mut out = vec![((n << 3) | 2) as u8, b.len() as u8];
        out.extend_from_slice(b);
        out
    }

    #[test]
    fn decodes_a_secret() {
        let mut label = bytes_field(1, b"owner");
        label.extend(bytes_field(2, b"helm"));
        let mut meta = bytes_field(1, b"sh.helm.release.v1.r.v1");
        meta.extend(bytes_field(11, &label));
        let mut data = bytes_field(1, b"release");
        data.extend(bytes_field(2, b"\x00\x01"));
        let mut secret = bytes_field(1, &meta);
        secret.extend(bytes_field(2, &data));
        secret.extend(bytes_field(3, b"helm.sh/release.v1"));
        let mut tm = bytes_field(1, b"v1");
        tm.extend(bytes_field(2, b"Secret"));
        let mut body = b"k8s\0".to_vec();
        body.extend(bytes_field(1, &tm));
        body.extend(bytes_field(2, &secret));
        let v = decode(&body).unwrap();
        assert_eq!(v["kind"], "Secret");
        assert_eq!(v["metadata"]["name"], "sh.helm.release.v1.r.v1");
        assert_eq!(v["metadata"]["labels"]["owner"], "helm");
        assert_eq!(v["data"]["release"], "AAE=");
        assert_eq!(v["type"], "helm.sh/release.v1");
    }
}
