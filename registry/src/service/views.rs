//! Small pieces of Quay's answers shared by the tenancy services: avatars, dates, empty quota
//! reports.

use quayside_client::{Avatar, QuotaReport};

/// Quay's default avatar palette.
const COLORS: [&str; 32] = [
    "#969696", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896",
    "#9467bd", "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2", "#7f7f7f", "#c7c7c7",
    "#bcbd22", "#1f77b4", "#17becf", "#9edae5", "#393b79", "#5254a3", "#6b6ecf", "#9c9ede",
    "#9ecae1", "#31a354", "#b5cf6b", "#a1d99b", "#8c6d31", "#ad494a", "#e7ba52", "#a55194",
];

/// Quay's avatar block: the SHA-256 of the e-mail (or name), and a color picked by its first
/// hex digits.
pub fn avatar(name: &str, email_or_id: Option<&str>, kind: &str) -> Avatar {
    let source = email_or_id.filter(|e| !e.is_empty()).unwrap_or(name);
    let hash = super::hash_secret(&source.trim().to_lowercase());
    let index = usize::from_str_radix(&hash[..2], 16).unwrap_or(0) % COLORS.len();
    Avatar {
        name: name.to_owned(),
        hash,
        color: COLORS[index].to_owned(),
        kind: kind.to_owned(),
    }
}

/// RFC 2822 date as Quay writes it: `Tue, 24 Nov 2026 07:11:12 -0000`.
pub fn format_date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S -0000")
        .to_string()
}

/// ISO 8601 with a `Z`, as Quay writes token times.
pub fn iso_date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The quota report of a namespace without quota configuration (quotas arrive later).
pub fn empty_quota_report(with_backfill: bool) -> QuotaReport {
    QuotaReport {
        quota_bytes: 0,
        configured_quota: None,
        running_backfill: with_backfill.then(|| "waiting".to_owned()),
        backfill_status: with_backfill.then(|| "waiting".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avatars_match_quay() {
        // Values recorded from Quay 3.18.
        let a = avatar("quayadmin", Some("quayadmin@example.com"), "user");
        assert_eq!(
            a.hash,
            "3e82e9cbf62d25dec0ed1b4c66ca7c5d47ab9f1f271958298dea856fb26adc4c"
        );
        assert_eq!(a.color, "#e7ba52");
        let t = avatar("owners", None, "team");
        assert_eq!(
            t.hash,
            "6f0e3a8c0eb46e8834b43b03374ece43a030621d92a7437beb48f871e90f8d90"
        );
        assert_eq!(t.color, "#c7c7c7");
        assert_eq!(
            avatar("testorg", Some("testorg@example.com"), "user").color,
            "#a55194"
        );
    }

    #[test]
    fn dates() {
        assert_eq!(
            format_date(1_795_504_272_000),
            "Tue, 24 Nov 2026 07:11:12 -0000"
        );
        assert_eq!(iso_date(0), "1970-01-01T00:00:00Z");
    }
}
