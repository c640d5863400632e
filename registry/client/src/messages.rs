//! Global messages (`GET/POST /messages`, `DELETE /message/{uuid}`): notices a superuser shows
//! to every user. Creating answers 201 with an empty body, deleting 204.

use serde::{Deserialize, Serialize};

#[cfg(feature = "client")]
use crate::client::{Client, Result, seg};
#[cfg(feature = "client")]
use reqwest::Method;

/// One message as listed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GlobalMessage {
    pub uuid: String,
    pub content: String,
    /// `info`, `warning` or `error`.
    pub severity: String,
    /// `text/plain` or `text/markdown`.
    pub media_type: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GlobalMessages {
    pub messages: Vec<GlobalMessage>,
}

/// The message of a `POST /messages` body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewGlobalMessage {
    pub content: String,
    pub media_type: String,
    pub severity: String,
}

/// `POST /messages`: `{"message": {...}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreateGlobalMessage {
    pub message: NewGlobalMessage,
}

#[cfg(feature = "client")]
impl Client {
    pub async fn global_messages(&self) -> Result<GlobalMessages> {
        self.json(Method::GET, "/messages", Self::NONE).await
    }

    pub async fn create_global_message(&self, message: &CreateGlobalMessage) -> Result<()> {
        self.unit(Method::POST, "/messages", Some(message)).await
    }

    pub async fn delete_global_message(&self, uuid: &str) -> Result<()> {
        self.unit(
            Method::DELETE,
            &format!("/message/{}", seg(uuid)),
            Self::NONE,
        )
        .await
    }
}
