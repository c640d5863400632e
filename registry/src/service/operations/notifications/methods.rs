//! How a notification is delivered: Quay's methods, the checks of their `config` when a
//! notification is created (Quay's messages), and one delivery.
//!
//! - `webhook`: `POST` of the event's JSON payload to `url` (or of the `template` filled in with
//!   it), `Content-Type: application/json`; a 2xx answer is success.
//! - `slack`: an incoming-webhook message (`text`, `username`, a coloured attachment) to `url`.
//! - `flowdock`: a team-inbox message to `FLOWDOCK_API_URL/v1/messages/team_inbox/{flow_api_token}`.
//! - `hipchat`: a room notification to `HIPCHAT_API_URL/v2/room/{room_id}/notification`.
//! - `email`: a plain-text mail to `email` through `MAIL_SERVER`; the address must first be
//!   confirmed for the repository (`POST .../authorizedemail/{email}` mails a link), as in Quay.
//! - `quay_notification`: an in-app notification for a user, each member of a team, or each
//!   administrator of the organization (`GET /api/v1/user/notifications`).
//!
//! Every URL goes through [`ssrf`] when stored and again before each request; requests time out
//! after [`TIMEOUT`] and follow no redirect. Errors never carry a URL (webhook and Slack URLs
//! hold secrets), only what went wrong.

use std::time::Duration;

use serde_json::{Value, json};

use super::events::{Event, Level};
use crate::db;
use crate::db::content::repositories::RepoRow;
use crate::db::operations::notifications::NotificationRow;
use crate::service::Ctx;
use crate::service::operations::mail;
use crate::service::operations::ssrf;

/// How long one delivery may take (Quay's webhook timeout).
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// A delivery method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Webhook,
    Email,
    Slack,
    Flowdock,
    Hipchat,
    QuayNotification,
}

impl Method {
    pub const ALL: [Method; 6] = [
        Method::Webhook,
        Method::Email,
        Method::Slack,
        Method::Flowdock,
        Method::Hipchat,
        Method::QuayNotification,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::Webhook => "webhook",
            Method::Email => "email",
            Method::Slack => "slack",
            Method::Flowdock => "flowdock",
            Method::Hipchat => "hipchat",
            Method::QuayNotification => "quay_notification",
        }
    }

    pub fn parse(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.name() == name)
    }
}

fn guard(ctx: &Ctx) -> ssrf::Guard {
    ssrf::Guard::new(&ctx.config.ssrf_allowed_hosts)
}

fn string<'a>(config: &'a Value, key: &str) -> &'a str {
    config
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or("")
}

/// Checks a method's `config` for a notification of `repo`, with Quay's messages.
pub async fn validate(
    ctx: &Ctx,
    method: Method,
    repo: &RepoRow,
    config: &Value,
) -> Result<(), String> {
    if !config.is_object() {
        return Err("config must be an object".into());
    }
    match method {
        Method::Webhook => {
            let url = string(config, "url");
            if url.is_empty() {
                return Err("Missing webhook URL".into());
            }
            checked_url(ctx, url, "webhook URL").await?;
            match config.get("template") {
                None | Some(Value::Null) => {}
                Some(Value::String(t)) if t.trim().is_empty() => {}
                Some(Value::String(t)) => {
                    if serde_json::from_str::<Value>(t).is_err() {
                        return Err("Invalid POST JSON body template: not valid JSON".into());
                    }
                }
                Some(_) => return Err("Invalid POST JSON body template: not a string".into()),
            }
            Ok(())
        }
        Method::Slack => {
            let url = string(config, "url");
            if url.is_empty() {
                return Err("Missing Slack Callback URL".into());
            }
            checked_url(ctx, url, "Slack Callback URL").await
        }
        Method::Flowdock => {
            if string(config, "flow_api_token").is_empty() {
                return Err("Missing Flowdock API Token".into());
            }
            Ok(())
        }
        Method::Hipchat => {
            if string(config, "notification_token").is_empty() {
                return Err("Missing Hipchat Room Notification Token".into());
            }
            let room = config.get("room_id");
            if room.is_none_or(|r| r.is_null() || r.as_str().is_some_and(|s| s.trim().is_empty())) {
                return Err("Missing Hipchat Room ID".into());
            }
            Ok(())
        }
        Method::Email => {
            let email = string(config, "email");
            if email.is_empty() {
                return Err("Missing e-mail address".into());
            }
            let authorized =
                db::operations::notifications::authorized_email(ctx.db.pool(), repo.id, email)
                    .await
                    .map_err(|e| format!("cannot check the e-mail address: {e}"))?;
            if !authorized.is_some_and(|a| a.confirmed) {
                return Err("The specified e-mail address is not authorized to receive \
                            notifications for this repository"
                    .into());
            }
            Ok(())
        }
        Method::QuayNotification => targets(ctx, repo, config).await.map(|_| ()),
    }
}

async fn checked_url(ctx: &Ctx, url: &str, what: &str) -> Result<(), String> {
    guard(ctx)
        .check(url)
        .await
        .map(|_| ())
        .map_err(|refusal| format!("Invalid {what}: {refusal}"))
}

/// The accounts a `quay_notification` reaches, with the organization it is addressed to (for a
/// whole organization). `Err` with Quay's message when the target is missing or unknown;
/// `Ok(None)` for an organization other than the repository's (Quay accepts it and notifies
/// nobody).
async fn targets(
    ctx: &Ctx,
    repo: &RepoRow,
    config: &Value,
) -> Result<Option<(Vec<i64>, Option<String>)>, String> {
    let target = config.get("target");
    let kind = target
        .and_then(|t| t.get("kind"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let name = target
        .and_then(|t| t.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let pool = ctx.db.pool();
    let internal = |e: db::DbError| format!("cannot look the target up: {e}");
    match kind {
        "user" => match db::tenancy::namespaces::by_name(pool, name)
            .await
            .map_err(internal)?
        {
            Some(user) if user.is_user() => Ok(Some((vec![user.id], None))),
            _ => Err(format!("Unknown user {name}")),
        },
        "org" => match db::tenancy::namespaces::by_name(pool, name)
            .await
            .map_err(internal)?
        {
            Some(org) if !org.is_user() && !org.is_robot() => {
                if name != repo.namespace {
                    return Ok(None);
                }
                let mut admins = Vec::new();
                for team in db::tenancy::teams::list(pool, org.id)
                    .await
                    .map_err(internal)?
                {
                    if team.role != "admin" {
                        continue;
                    }
                    for m in db::tenancy::teams::members(pool, team.id)
                        .await
                        .map_err(internal)?
                    {
                        if m.kind == "user" && !admins.contains(&m.account_id) {
                            admins.push(m.account_id);
                        }
                    }
                }
                Ok(Some((admins, Some(org.name))))
            }
            _ => Err(format!("Unknown organization {name}")),
        },
        "team" => match db::tenancy::teams::get(pool, repo.namespace_id, name)
            .await
            .map_err(internal)?
        {
            Some(team) => {
                let members = db::tenancy::teams::members(pool, team.id)
                    .await
                    .map_err(internal)?;
                Ok(Some((
                    members
                        .into_iter()
                        .filter(|m| m.kind == "user")
                        .map(|m| m.account_id)
                        .collect(),
                    None,
                )))
            }
            None => Err(format!("Unknown team {name}")),
        },
        _ => Err("Missing target".into()),
    }
}

/// Fills `${path.to.value}` placeholders of a webhook body template with the event's data: a
/// string that is one placeholder becomes the value itself (of any JSON type), placeholders
/// inside longer strings become the value's text. Unknown paths are `null` (or empty text).
pub fn apply_template(template: &str, data: &Value) -> Result<Value, String> {
    let parsed: Value = serde_json::from_str(template)
        .map_err(|e| format!("the body template is not valid JSON: {e}"))?;
    Ok(fill(parsed, data))
}

fn lookup<'a>(data: &'a Value, path: &str) -> Option<&'a Value> {
    path.trim().split('.').try_fold(data, |v, key| match v {
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => v.get(key),
    })
}

fn fill(value: Value, data: &Value) -> Value {
    match value {
        Value::String(s) => {
            let trimmed = s.trim();
            if let Some(path) = trimmed
                .strip_prefix("${")
                .and_then(|r| r.strip_suffix('}'))
                .filter(|p| !p.contains('}'))
            {
                return lookup(data, path).cloned().unwrap_or(Value::Null);
            }
            let mut out = String::new();
            let mut rest = s.as_str();
            while let Some(start) = rest.find("${") {
                let Some(len) = rest[start..].find('}') else {
                    break;
                };
                out.push_str(&rest[..start]);
                match lookup(data, &rest[start + 2..start + len]) {
                    Some(Value::String(text)) => out.push_str(text),
                    Some(Value::Array(items)) => out.push_str(
                        &items
                            .iter()
                            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                            .collect::<Vec<_>>()
                            .join(", "),
                    ),
                    Some(Value::Null) | None => {}
                    Some(other) => out.push_str(&other.to_string()),
                }
                rest = &rest[start + len + 1..];
            }
            out.push_str(rest);
            Value::String(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(|v| fill(v, data)).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, fill(v, data))).collect())
        }
        other => other,
    }
}

/// Delivers one event through a notification's method. The error says what went wrong, never
/// with the URL.
pub async fn perform(
    ctx: &Ctx,
    notification: &NotificationRow,
    repo: &RepoRow,
    event: Event,
    data: &Value,
) -> Result<(), String> {
    let method = Method::parse(&notification.method)
        .ok_or_else(|| format!("unknown method {}", notification.method))?;
    let config: Value = serde_json::from_str(&notification.config).unwrap_or(Value::Null);
    match method {
        Method::Webhook => {
            let body = match config.get("template").and_then(Value::as_str) {
                Some(t) if !t.trim().is_empty() => apply_template(t, data)?,
                _ => data.clone(),
            };
            post_json(ctx, string(&config, "url"), &body).await
        }
        Method::Slack => {
            let summary = event.summary(data);
            let body = json!({
                "text": summary,
                "username": "quayiobot",
                "attachments": [{
                    "fallback": summary,
                    "text": format!("{} <{}|{}>", event.message(data), data["homepage"].as_str().unwrap_or(""), data["repository"].as_str().unwrap_or("")),
                    "color": match event.level() {
                        Level::Info => "#439FE0",
                        Level::Success => "good",
                        Level::Warning => "warning",
                        Level::Error => "danger",
                    },
                    "mrkdwn_in": ["text"],
                }],
            });
            post_json(ctx, string(&config, "url"), &body).await
        }
        Method::Flowdock => {
            let base = &ctx.config.notifications.flowdock_api_url;
            let url = format!(
                "{base}/v1/messages/team_inbox/{}",
                percent_encoding::utf8_percent_encode(
                    string(&config, "flow_api_token"),
                    percent_encoding::NON_ALPHANUMERIC
                )
            );
            let body = json!({
                "source": "Quay",
                "from_address": ctx.config.mail.as_ref().map_or("support@quay.io", |m| m.default_sender.as_str()),
                "subject": event.summary(data),
                "content": event.message(data),
                "from_name": "Quay",
                "project": format!("{} {}", repo.namespace, repo.name).chars().filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '_').collect::<String>(),
                "tags": [format!("#{}", event.name())],
                "link": data["homepage"],
            });
            post_json(ctx, &url, &body).await
        }
        Method::Hipchat => {
            let base = &ctx.config.notifications.hipchat_api_url;
            let room = match config.get("room_id") {
                Some(Value::String(s)) => s.trim().to_owned(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            let url = format!(
                "{base}/v2/room/{}/notification?auth_token={}",
                percent_encoding::utf8_percent_encode(&room, percent_encoding::NON_ALPHANUMERIC),
                percent_encoding::utf8_percent_encode(
                    string(&config, "notification_token"),
                    percent_encoding::NON_ALPHANUMERIC
                )
            );
            let level = event.level();
            let body = json!({
                "color": match level {
                    Level::Info => "purple",
                    Level::Success => "green",
                    Level::Warning => "yellow",
                    Level::Error => "red",
                },
                "message": event.message(data),
                "notify": level == Level::Error,
                "message_format": "text",
            });
            post_json(ctx, &url, &body).await
        }
        Method::Email => {
            let Some(mail_config) = &ctx.config.mail else {
                return Err("mail is not configured (FEATURE_MAILING, MAIL_SERVER)".into());
            };
            let to = string(&config, "email");
            let subject = format!("[Quay] {}", event.summary(data));
            let body = format!(
                "{}\r\n\r\n{}\r\n\r\nEvent data:\r\n{}\r\n",
                event.message(data),
                data["homepage"].as_str().unwrap_or(""),
                serde_json::to_string_pretty(data).unwrap_or_default()
            );
            match tokio::time::timeout(TIMEOUT * 2, mail::send(mail_config, to, &subject, &body))
                .await
            {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(format!("sending the e-mail failed: {e}")),
                Err(_) => Err("sending the e-mail timed out".into()),
            }
        }
        Method::QuayNotification => {
            let Some((accounts, organization)) = targets(ctx, repo, &config).await? else {
                return Ok(());
            };
            let metadata = data.to_string();
            let now = ctx.now_ms();
            for account_id in accounts {
                let uuid = uuid::Uuid::new_v4().to_string();
                db::operations::notifications::insert_user_notification(
                    ctx.db.pool(),
                    &db::operations::notifications::NewUserNotification {
                        uuid: &uuid,
                        account_id,
                        kind: event.name(),
                        organization: organization.as_deref(),
                        metadata: &metadata,
                    },
                    now,
                )
                .await
                .map_err(|e| format!("storing the notification failed: {e}"))?;
            }
            Ok(())
        }
    }
}

/// `POST`s JSON to a URL that passes the SSRF guard now; a 2xx answer is success.
async fn post_json(ctx: &Ctx, url: &str, body: &Value) -> Result<(), String> {
    let target = guard(ctx)
        .target(url)
        .await
        .map_err(|refusal| format!("the URL is refused: {refusal}"))?;
    let client = target
        .client(TIMEOUT)
        .map_err(|e| format!("cannot build an HTTP client: {}", e.without_url()))?;
    let answer = client
        .post(target.url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(
            reqwest::header::USER_AGENT,
            concat!("quayside/", env!("CARGO_PKG_VERSION")),
        )
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                "the receiver did not answer in time".to_owned()
            } else {
                format!("the request failed: {}", e.without_url())
            }
        })?;
    if answer.status().is_success() {
        Ok(())
    } else {
        Err(format!("the receiver answered {}", answer.status()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_fills_values_and_text() {
        let data = json!({ "repository": "a/b", "updated_tags": ["latest", "v1"], "n": 3 });
        let body = apply_template(
            r#"{"text": "pushed ${repository}: ${updated_tags}", "tags": "${updated_tags}", "first": "${updated_tags.0}", "n": "${n}", "missing": "${nope}", "keep": 1}"#,
            &data,
        )
        .unwrap();
        assert_eq!(
            body,
            json!({
                "text": "pushed a/b: latest, v1",
                "tags": ["latest", "v1"],
                "first": "latest",
                "n": 3,
                "missing": null,
                "keep": 1,
            })
        );
        assert!(apply_template("{not json", &data).is_err());
    }

    #[test]
    fn methods_round_trip() {
        for m in Method::ALL {
            assert_eq!(Method::parse(m.name()), Some(m));
        }
        assert_eq!(Method::parse("sms"), None);
    }
}
