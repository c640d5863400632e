//! Usage logs of an organization or a repository: a chart of activity per day (from the
//! aggregate logs, drawn as inline SVG on the server) and a paged table.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::get;
use maud::{Markup, html};
use quayside_client as api;

use super::repos::repo_href;
use crate::api::AppState;
use crate::service::operations::logs::{self, Of};
use crate::ui::forms::query;
use crate::ui::layout::{date, frame};
use crate::ui::{UiResult, Viewer, page};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/organization/{org}/logs", get(org_logs))
        .route("/repository/{ns}/{repo}/logs", get(repo_logs))
}

async fn org_logs(
    State(s): State<AppState>,
    viewer: Viewer,
    Path(org): Path<String>,
    RawQuery(raw): RawQuery,
) -> UiResult {
    let base = format!("/organization/{org}/logs");
    render(
        &s,
        &viewer,
        Of::Organization(&org),
        &format!("{org}: usage logs"),
        &base,
        raw,
    )
    .await
}

async fn repo_logs(
    State(s): State<AppState>,
    viewer: Viewer,
    Path((ns, repo)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> UiResult {
    let base = format!("{}/logs", repo_href(&ns, &repo));
    let title = format!("{ns}/{repo}: usage logs");
    render(&s, &viewer, Of::Repository(&ns, &repo), &title, &base, raw).await
}

async fn render(
    s: &AppState,
    viewer: &Viewer,
    of: Of<'_>,
    title: &str,
    base: &str,
    raw: Option<String>,
) -> UiResult {
    let q = query(raw.as_deref());
    let lq = logs::Query {
        starttime: None,
        endtime: None,
        performer: q.get("performer").filter(|p| !p.is_empty()).cloned(),
        next_page: q.get("next_page").filter(|p| !p.is_empty()).cloned(),
    };
    let page_of_logs = logs::list(&s.ctx, &viewer.caller, of, &lq).await?;
    let aggregate = logs::aggregate(
        &s.ctx,
        &viewer.caller,
        of,
        &logs::Query {
            next_page: None,
            ..lq.clone()
        },
    )
    .await?;
    let next = page_of_logs.next_page.as_ref().map(|t| {
        let mut qs = form_urlencoded::Serializer::new(String::new());
        if let Some(p) = &lq.performer {
            qs.append_pair("performer", p);
        }
        qs.append_pair("next_page", t);
        format!("{base}?{}", qs.finish())
    });
    let body = html! {
        p.muted { "From " (date(&page_of_logs.start_time)) " to " (date(&page_of_logs.end_time)) "." }
        h2 #activity-h { "Activity per day" }
        (chart(&aggregate))
        h2 #log-h { "Log entries" }
        form.row method="get" action=(base) {
            div.field { label for="performer" { "Performed by" } input #performer type="text" name="performer" value=[lq.performer.as_deref()]; }
            button type="submit" { "Filter" }
        }
        @if page_of_logs.logs.is_empty() { p.muted #no-logs { "No log entries in this period." } } @else {
            div.table-wrap {
                table.responsive #logs aria-labelledby="log-h" {
                    thead { tr { th scope="col" { "When" } th scope="col" { "Action" } th scope="col" { "By" } th scope="col" { "Details" } th scope="col" { "IP" } } }
                    tbody {
                        @for e in &page_of_logs.logs {
                            tr data-name=(e.kind) {
                                td data-label="When" { (date(&e.datetime)) }
                                td data-label="Action" { code { (e.kind) } }
                                td data-label="By" { (e.performer.as_ref().map(|p| p.name.as_str()).unwrap_or("—")) }
                                td data-label="Details" { (details(&e.metadata)) }
                                td data-label="IP" { (e.ip.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(link) = next { nav.pager aria-label="Pages" { a href=(link) rel="next" { "Older entries" } } }
    };
    Ok(page(viewer, StatusCode::OK, frame(viewer, title, body)))
}

/// A log entry's metadata as `key=value` pairs (strings unquoted).
fn details(metadata: &serde_json::Value) -> String {
    let Some(map) = metadata.as_object() else {
        return String::new();
    };
    map.iter()
        .map(|(k, v)| match v.as_str() {
            Some(text) => format!("{k}={text}"),
            None => format!("{k}={v}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A bar per day with any activity, as inline SVG (no script; the numbers are also in a
/// visually hidden table for screen readers through the `<title>` of each bar).
fn chart(aggregate: &api::AggregatedLogs) -> Markup {
    let mut per_day: BTreeMap<String, i64> = BTreeMap::new();
    for a in &aggregate.aggregated {
        let day = chrono::DateTime::parse_from_rfc2822(&a.datetime)
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_else(|_| a.datetime.clone());
        *per_day.entry(day).or_default() += a.count;
    }
    if per_day.is_empty() {
        return html! { p.muted #no-activity { "No activity in this period." } };
    }
    let max = per_day.values().copied().max().unwrap_or(1).max(1);
    let (width, height, pad) = (900i64, 180i64, 24i64);
    let n = per_day.len() as i64;
    // At most 48 px a day, so a short period does not draw one bar across the whole chart.
    let slot = ((width - 2 * pad) / n.max(1)).clamp(4, 48);
    let bar = (slot * 7 / 10).max(2);
    let label = format!(
        "Activity per day: {} days with activity, at most {max} actions a day",
        n
    );
    html! {
        svg.chart #activity-chart role="img" aria-label=(label) viewBox=(format!("0 0 {width} {}", height + 30)) xmlns="http://www.w3.org/2000/svg" {
            line x1=(pad) y1=(height) x2=(width - pad) y2=(height) stroke="#8c959f" {}
            @for (i, (day, count)) in per_day.iter().enumerate() {
                @let h = (count * (height - 20) / max).max(1);
                @let x = pad + i as i64 * slot;
                rect.bar x=(x) y=(height - h) width=(bar) height=(h) {
                    title { (day) ": " (count) " actions" }
                }
                text x=(x) y=(height - h - 4) { (count) }
                @if n <= 16 || i % ((n / 8).max(1) as usize) == 0 {
                    text x=(x) y=(height + 16) { (day.get(5..).unwrap_or(day)) }
                }
            }
        }
    }
}
