//! The page frame and small shared pieces (buttons that post, times, sizes).
//!
//! Rule: every page is `frame(viewer, title, body)`: one `<main>` landmark after a skip link,
//! the navigation, and the sign-out form; every form input has a `<label>`. Values are always
//! interpolated through maud, which escapes them.

use axum::http::StatusCode;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::Viewer;

/// The whole page.
pub fn frame(viewer: &Viewer, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Quayside" }
                link rel="icon" href="/static/favicon.svg" type="image/svg+xml";
                link rel="stylesheet" href="/static/ui.css";
                script src="/static/ui.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    nav aria-label="Main" {
                        a.brand href="/" { "Quayside" }
                        a href="/" { "Repositories" }
                        @if let Some(user) = viewer.user() {
                            a href="/new/repository" { "New repository" }
                            a href="/new/organization" { "New organization" }
                            @if user.superuser {
                                a href="/superuser" { "Superuser" }
                            }
                        }
                    }
                    div.who {
                        @if let Some(user) = viewer.user() {
                            a href="/user/settings" { "Signed in as " strong { (user.name) } }
                            form method="post" action="/signout" {
                                (csrf(viewer))
                                button.link type="submit" { "Sign out" }
                            }
                        } @else {
                            a href="/signin" { "Sign in" }
                        }
                    }
                }
                main #main tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The hidden CSRF field every form carries.
pub fn csrf(viewer: &Viewer) -> Markup {
    html! { input type="hidden" name="_csrf" value=(viewer.csrf()); }
}

/// A one-button form that posts to `action` (`confirm`: asked first by the script).
pub fn post_button(viewer: &Viewer, action: &str, label: &str, confirm: Option<&str>) -> Markup {
    html! {
        form.inline method="post" action=(action) data-confirm=[confirm] {
            (csrf(viewer))
            button type="submit" .danger[confirm.is_some()] { (label) }
        }
    }
}

/// The error page (no session needed to render it).
pub fn error_page(status: StatusCode, message: &str) -> Markup {
    let title = status.canonical_reason().unwrap_or("Error");
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Quayside" }
                link rel="icon" href="/static/favicon.svg" type="image/svg+xml";
                link rel="stylesheet" href="/static/ui.css";
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    nav aria-label="Main" { a.brand href="/" { "Quayside" } a href="/" { "Repositories" } }
                    div.who { a href="/signin" { "Sign in" } }
                }
                main #main tabindex="-1" {
                    h1 { (status.as_u16()) " " (title) }
                    p.error role="alert" { (message) }
                    p {
                        @if status == StatusCode::UNAUTHORIZED { a href="/signin" { "Sign in" } " · " }
                        a href="/" { "Back to repositories" }
                    }
                }
            }
        }
    }
}

/// Bytes in a short human form (binary units, as `podman images` shows them).
pub fn size(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes.max(0) as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Epoch seconds as `YYYY-MM-DD HH:MM UTC`.
pub fn time_s(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// Quay's RFC 2822 dates (`Thu, 03 Dec 2026 14:52:13 -0000`) as `YYYY-MM-DD HH:MM UTC`.
pub fn date(text: &str) -> String {
    chrono::DateTime::parse_from_rfc2822(text)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|_| text.to_owned())
}

/// A digest shortened for tables (`sha256:0123456789ab`), the full one in the title.
pub fn short_digest(digest: &str) -> Markup {
    let short: String = digest.chars().take(19).collect();
    html! { code title=(digest) { (short) } }
}

/// A block of text with a copy button (the script copies the `<pre>`'s text).
pub fn copy_block(id: &str, label: &str, text: &str) -> Markup {
    html! {
        div.copy {
            div.copy-head {
                span #(format!("{id}-label")) { (label) }
                button type="button" data-copy=(id) aria-describedby=(format!("{id}-label")) { "Copy" }
            }
            pre #(id) tabindex="0" { (text) }
        }
    }
}

/// Markdown already rendered safe by [`super::markdown::render`].
pub fn rendered(html_text: String) -> Markup {
    PreEscaped(html_text)
}
