//! JSON request bodies of `/api/v1` ([`Body`], [`OptionalBody`]): a body is accepted only when it
//! is UTF-8 JSON of the shape the endpoint expects, with no NUL character in any string or key
//! (see `api::edge`); anything else is a 400 in Quay's error body naming the problem, never a
//! silent no-op. The shape is enforced at the top level: an endpoint that reads an object (a
//! struct or a map) refuses an array or a scalar, and one that reads a list refuses an object
//! (serde alone would read a struct from an array of its fields, and `[]` as a struct whose fields
//! all default).

use axum::extract::{FromRequest, Request};
use serde::de::{self, DeserializeOwned, Deserializer, Unexpected, Visitor};
use serde_json::Value;

use super::error::ApiError;
use crate::api::{AppState, edge};

/// The largest body read.
const LIMIT: usize = 1024 * 1024;

/// A JSON request body; a missing or malformed body is a 400 naming the problem.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &AppState) -> Result<Self, ApiError> {
        let bytes = axum::body::to_bytes(req.into_body(), LIMIT)
            .await
            .map_err(|_| ApiError::invalid_request("The request body is too large"))?;
        parse(&bytes).map(Body)
    }
}

/// Parses a body as [`Body`] accepts it.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid_request(MISSING));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ApiError::invalid_request("Invalid JSON body: the body is not UTF-8"))?;
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ApiError::invalid_request(format!("Invalid JSON body: {e}")))?;
    if let Some(at) = edge::nul_in_json(&value) {
        return Err(ApiError::invalid_request(edge::refusal(&at)));
    }
    serde_path_to_error::deserialize(TopLevel(value)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            ApiError::invalid_request(format!("Invalid JSON body: {inner}"))
        } else {
            ApiError::invalid_request(format!("{path}: {inner}"))
        }
    })
}

const MISSING: &str = "Missing JSON body";

/// An optional JSON request body (absent or empty is `None`).
pub struct OptionalBody<T>(pub Option<T>);

impl<T: DeserializeOwned> FromRequest<AppState> for OptionalBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        match Body::<T>::from_request(req, state).await {
            Ok(Body(v)) => Ok(OptionalBody(Some(v))),
            Err(e) if e.message == MISSING => Ok(OptionalBody(None)),
            Err(e) => Err(e),
        }
    }
}

/// The top level of a body: an object where a struct or a map is read, an array where a
/// sequence is; everything else as `serde_json::Value` reads it.
struct TopLevel(Value);

fn unexpected(v: &Value) -> Unexpected<'_> {
    match v {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(_) => Unexpected::Other("a number"),
        Value::String(_) => Unexpected::Other("a string"),
        Value::Array(_) => Unexpected::Other("an array"),
        Value::Object(_) => Unexpected::Other("an object"),
    }
}

impl TopLevel {
    fn object(self) -> Result<Value, serde_json::Error> {
        match self.0 {
            v @ Value::Object(_) => Ok(v),
            other => Err(de::Error::invalid_type(
                unexpected(&other),
                &"a JSON object",
            )),
        }
    }

    fn array(self) -> Result<Value, serde_json::Error> {
        match self.0 {
            v @ Value::Array(_) => Ok(v),
            other => Err(de::Error::invalid_type(unexpected(&other), &"a JSON array")),
        }
    }
}

impl<'de> Deserializer<'de> for TopLevel {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.0.deserialize_any(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.object()?.deserialize_struct(name, fields, visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.object()?.deserialize_map(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.array()?.deserialize_seq(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.0.deserialize_option(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_newtype_struct(name, visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_unit_struct(name, visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit tuple tuple_struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Defaults {
        #[serde(default)]
        a: Option<String>,
    }

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Required {
        role: String,
    }

    fn refused<T: DeserializeOwned + std::fmt::Debug>(body: &[u8]) -> String {
        parse::<T>(body).expect_err("refused").message
    }

    #[test]
    fn only_the_expected_shape_is_accepted() {
        assert_eq!(
            parse::<Defaults>(br#"{"a":"x"}"#).unwrap(),
            Defaults {
                a: Some("x".into())
            }
        );
        assert_eq!(parse::<Defaults>(b"{}").unwrap(), Defaults { a: None });
        for body in [&b"[]"[..], b"[\"x\"]", b"\"x\"", b"1", b"null", b"true"] {
            let m = refused::<Defaults>(body);
            assert!(m.contains("expected a JSON object"), "{m}");
            assert!(refused::<Required>(body).contains("expected a JSON object"));
            let m = refused::<serde_json::Map<String, Value>>(body);
            assert!(m.contains("expected a JSON object"), "{m}");
        }
        assert_eq!(
            parse::<Vec<Required>>(br#"[{"role":"r"}]"#).unwrap().len(),
            1
        );
        assert!(refused::<Vec<Required>>(b"{}").contains("expected a JSON array"));
        // Nested values keep serde's rules.
        assert!(refused::<Required>(br#"{"role":1}"#).starts_with("role: invalid type"));
    }

    #[test]
    fn non_utf8_nul_and_missing_bodies_are_refused() {
        assert!(refused::<Defaults>(b"\xff\xfe{}").contains("not UTF-8"));
        // Invalid UTF-8 in a field serde would otherwise skip unread.
        assert!(refused::<Defaults>(b"{\"a\":\"x\",\"junk\":\"\xff\"}").contains("not UTF-8"));
        assert_eq!(
            refused::<Defaults>(br#"{"a":"x\u0000"}"#),
            "a must not contain NUL characters"
        );
        assert_eq!(
            refused::<Defaults>(br#"{"a":"x","junk":["\u0000"]}"#),
            "junk[0] must not contain NUL characters"
        );
        assert_eq!(refused::<Defaults>(b"  \n"), MISSING);
        assert!(refused::<Defaults>(b"{").starts_with("Invalid JSON body: "));
    }
}
