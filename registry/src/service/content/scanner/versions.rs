//! Version ordering per ecosystem, as the package managers define it: dpkg (`epoch:upstream-
//! revision`, `~` before everything), rpm (`rpmvercmp`, same shape), apk (numeric dotted parts,
//! letter, `_suffix`es, `-rN`), PEP 440 (release, pre/post/dev), semver (npm, crates.io, Go with
//! its `v`). Rule: a version that cannot be read compares by the generic rule (dpkg's), so a
//! malformed version never panics.

use std::cmp::Ordering;

/// The comparison for an OSV ecosystem.
pub fn compare(ecosystem: &str, a: &str, b: &str) -> Ordering {
    match ecosystem {
        "Debian" | "Ubuntu" => dpkg(a, b),
        "Alpine" => apk(a, b),
        "Red Hat" | "Rocky Linux" | "AlmaLinux" | "openSUSE" | "SUSE" | "Mageia" => rpm(a, b),
        "PyPI" => pep440(a, b),
        "npm" | "crates.io" | "Go" | "Packagist" | "NuGet" | "RubyGems" | "Hex" | "Pub" => {
            semver(a, b)
        }
        _ => dpkg(a, b),
    }
}

// ---- dpkg -------------------------------------------------------------------------------

fn split_evr(v: &str) -> (u64, &str, &str) {
    let (epoch, rest) = match v.split_once(':') {
        Some((e, r)) if e.chars().all(|c| c.is_ascii_digit()) && !e.is_empty() => {
            (e.parse().unwrap_or(0), r)
        }
        _ => (0, v),
    };
    match rest.rsplit_once('-') {
        Some((u, r)) => (epoch, u, r),
        None => (epoch, rest, ""),
    }
}

fn dpkg_order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => c as i32,
        Some(c) => c as i32 + 256,
    }
}

/// dpkg's `verrevcmp` on one part.
fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let mut first_diff = 0;
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ac = dpkg_order(a.get(i).copied().filter(|c| !c.is_ascii_digit()));
            let bc = dpkg_order(b.get(j).copied().filter(|c| !c.is_ascii_digit()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            if i < a.len() && !a[i].is_ascii_digit() {
                i += 1;
            }
            if j < b.len() && !b[j].is_ascii_digit() {
                j += 1;
            }
        }
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        while i < a.len() && a[i].is_ascii_digit() && j < b.len() && b[j].is_ascii_digit() {
            if first_diff == 0 {
                first_diff = a[i] as i32 - b[j] as i32;
            }
            i += 1;
            j += 1;
        }
        if i < a.len() && a[i].is_ascii_digit() {
            return Ordering::Greater;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            return Ordering::Less;
        }
        if first_diff != 0 {
            return first_diff.cmp(&0);
        }
    }
    Ordering::Equal
}

pub fn dpkg(a: &str, b: &str) -> Ordering {
    let (ea, ua, ra) = split_evr(a);
    let (eb, ub, rb) = split_evr(b);
    ea.cmp(&eb)
        .then_with(|| verrevcmp(ua, ub))
        .then_with(|| verrevcmp(ra, rb))
}

// ---- rpm --------------------------------------------------------------------------------

fn rpmvercmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        let skip = |s: &[u8]| -> usize {
            s.iter()
                .position(|c| c.is_ascii_alphanumeric() || *c == b'~' || *c == b'^')
                .unwrap_or(s.len())
        };
        a = &a[skip(a)..];
        b = &b[skip(b)..];
        match (a.first(), b.first()) {
            (Some(b'~'), Some(b'~')) => {
                a = &a[1..];
                b = &b[1..];
                continue;
            }
            (Some(b'~'), _) => return Ordering::Less,
            (_, Some(b'~')) => return Ordering::Greater,
            (Some(b'^'), Some(b'^')) => {
                a = &a[1..];
                b = &b[1..];
                continue;
            }
            (Some(b'^'), None) => return Ordering::Greater,
            (None, Some(b'^')) => return Ordering::Less,
            (Some(b'^'), _) => return Ordering::Less,
            (_, Some(b'^')) => return Ordering::Greater,
            (None, None) => return Ordering::Equal,
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            _ => {}
        }
        let numeric = a[0].is_ascii_digit();
        let seg = |s: &[u8]| -> usize {
            s.iter()
                .position(|c| {
                    if numeric {
                        !c.is_ascii_digit()
                    } else {
                        !c.is_ascii_alphabetic()
                    }
                })
                .unwrap_or(s.len())
        };
        let (la, lb) = (seg(a), seg(b));
        if lb == 0 {
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let (sa, sb) = (&a[..la], &b[..lb]);
        let ord = if numeric {
            let ta = trim_zeros(sa);
            let tb = trim_zeros(sb);
            ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb))
        } else {
            sa.cmp(sb)
        };
        if ord != Ordering::Equal {
            return ord;
        }
        a = &a[la..];
        b = &b[lb..];
    }
}

fn trim_zeros(s: &[u8]) -> &[u8] {
    let i = s.iter().position(|c| *c != b'0').unwrap_or(s.len());
    &s[i..]
}

pub fn rpm(a: &str, b: &str) -> Ordering {
    let (ea, ua, ra) = split_evr(a);
    let (eb, ub, rb) = split_evr(b);
    ea.cmp(&eb)
        .then_with(|| rpmvercmp(ua, ub))
        .then_with(|| rpmvercmp(ra, rb))
}

// ---- apk --------------------------------------------------------------------------------

/// apk: `1.2.3a_rc1-r4`: dotted numbers, an optional letter, suffixes (`_alpha` < `_beta` <
/// `_pre` < `_rc` < none < `_cvs` < `_svn` < `_git` < `_hg` < `_p`), then the revision.
pub fn apk(a: &str, b: &str) -> Ordering {
    fn parse(v: &str) -> (Vec<u64>, u8, Vec<(i32, u64)>, u64) {
        let (body, rev) = match v.rsplit_once("-r") {
            Some((b, r)) if r.chars().all(|c| c.is_ascii_digit()) => (b, r.parse().unwrap_or(0)),
            _ => (v, 0),
        };
        let mut parts = body.split('_');
        let main = parts.next().unwrap_or("");
        let letter_at = main.find(|c: char| c.is_ascii_alphabetic());
        let (nums, letter) = match letter_at {
            Some(i) => (&main[..i], main.as_bytes()[i]),
            None => (main, 0),
        };
        let nums = nums.split('.').map(|n| n.parse().unwrap_or(0)).collect();
        let suffixes = parts
            .map(|s| {
                let name_end = s.find(|c: char| c.is_ascii_digit()).unwrap_or(s.len());
                let rank = match &s[..name_end] {
                    "alpha" => -4,
                    "beta" => -3,
                    "pre" => -2,
                    "rc" => -1,
                    "cvs" => 1,
                    "svn" => 2,
                    "git" => 3,
                    "hg" => 4,
                    "p" => 5,
                    _ => 0,
                };
                (rank, s[name_end..].parse().unwrap_or(0))
            })
            .collect();
        (nums, letter, suffixes, rev)
    }
    let (na, la, sa, ra) = parse(a);
    let (nb, lb, sb, rb) = parse(b);
    let n = na.len().max(nb.len());
    for i in 0..n {
        let ord = na.get(i).unwrap_or(&0).cmp(nb.get(i).unwrap_or(&0));
        if ord != Ordering::Equal {
            return ord;
        }
    }
    la.cmp(&lb)
        .then_with(|| {
            let n = sa.len().max(sb.len());
            for i in 0..n {
                let x = sa.get(i).copied().unwrap_or((0, 0));
                let y = sb.get(i).copied().unwrap_or((0, 0));
                let ord = x.cmp(&y);
                if ord != Ordering::Equal {
                    return ord;
                }
            }
            Ordering::Equal
        })
        .then(ra.cmp(&rb))
}

// ---- PEP 440 ----------------------------------------------------------------------------

/// `(epoch, release, pre, post, dev)` with pre as (kind 0 a / 1 b / 2 rc, n), compared with
/// PEP 440's rules (dev before pre before final before post).
pub fn pep440(a: &str, b: &str) -> Ordering {
    type Parsed = (u64, Vec<u64>, (i32, u64), (i32, u64), (i32, u64));
    fn parse(v: &str) -> Parsed {
        let v = v.trim().to_ascii_lowercase();
        let v = v.strip_prefix('v').unwrap_or(&v).to_owned();
        let v = v.split('+').next().unwrap_or("").to_owned();
        let (epoch, rest) = match v.split_once('!') {
            Some((e, r)) => (e.parse().unwrap_or(0), r.to_owned()),
            None => (0, v.clone()),
        };
        let rel_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let release: Vec<u64> = rest[..rel_end]
            .split('.')
            .filter(|s| !s.is_empty())
            .map(|n| n.parse().unwrap_or(0))
            .collect();
        let mut tail = rest[rel_end..].replace(['-', '_', '.'], "");
        let num = |t: &mut String| -> u64 {
            let end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
            let n = t[..end].parse().unwrap_or(0);
            *t = t[end..].to_owned();
            n
        };
        // No pre-release sorts after every pre-release; a bare dev release before them.
        let mut pre = (3, 0);
        let mut post = (-1, 0);
        let mut dev = (1, 0);
        for (names, kind) in [
            (&["alpha", "a"][..], 0),
            (&["beta", "b"][..], 1),
            (&["rc", "c", "pre", "preview"][..], 2),
        ] {
            if let Some(n) = names.iter().find(|n| tail.starts_with(**n)) {
                tail = tail[n.len()..].to_owned();
                pre = (kind, num(&mut tail));
                break;
            }
        }
        for n in ["post", "rev", "r"] {
            if let Some(t) = tail.strip_prefix(n) {
                tail = t.to_owned();
                post = (0, num(&mut tail));
                break;
            }
        }
        if let Some(t) = tail.strip_prefix("dev") {
            tail = t.to_owned();
            dev = (0, num(&mut tail));
            if pre.0 == 3 && post.0 == -1 {
                pre = (-1, 0);
            }
        }
        (epoch, release, pre, post, dev)
    }
    let (ea, ra, pa, qa, da) = parse(a);
    let (eb, rb, pb, qb, db) = parse(b);
    let n = ra.len().max(rb.len());
    let mut rel = Ordering::Equal;
    for i in 0..n {
        rel = ra.get(i).unwrap_or(&0).cmp(rb.get(i).unwrap_or(&0));
        if rel != Ordering::Equal {
            break;
        }
    }
    ea.cmp(&eb)
        .then(rel)
        .then(pa.cmp(&pb))
        .then(qa.cmp(&qb))
        .then(da.cmp(&db))
}

// ---- semver -----------------------------------------------------------------------------

/// Semantic versioning 2.0 (a leading `v` as Go writes it is dropped; build metadata ignored).
pub fn semver(a: &str, b: &str) -> Ordering {
    fn parse(v: &str) -> (Vec<u64>, Option<Vec<String>>) {
        let v = v.trim().trim_start_matches(['v', '=']);
        let v = v.split('+').next().unwrap_or("");
        let (core, pre) = match v.split_once('-') {
            Some((c, p)) => (c, Some(p.split('.').map(str::to_owned).collect())),
            None => (v, None),
        };
        (
            core.split('.').map(|n| n.parse().unwrap_or(0)).collect(),
            pre,
        )
    }
    let (ca, pa) = parse(a);
    let (cb, pb) = parse(b);
    for i in 0..3.max(ca.len()).max(cb.len()) {
        let ord = ca.get(i).unwrap_or(&0).cmp(cb.get(i).unwrap_or(&0));
        if ord != Ordering::Equal {
            return ord;
        }
    }
    match (pa, pb) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => {
            for (p, q) in x.iter().zip(&y) {
                let ord = match (p.parse::<u64>(), q.parse::<u64>()) {
                    (Ok(m), Ok(n)) => m.cmp(&n),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    _ => p.cmp(q),
                };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
            x.len().cmp(&y.len())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn orders_like_the_package_managers() {
        assert_eq!(dpkg("1.0~rc1", "1.0"), Less);
        assert_eq!(dpkg("1:0.9", "2.0"), Greater);
        assert_eq!(dpkg("2.36-9+deb12u4", "2.36-9+deb12u10"), Less);
        assert_eq!(dpkg("1.2.3-1", "1.2.3-1"), Equal);
        assert_eq!(dpkg("3.0.11-1~deb12u2", "3.0.11-1"), Less);
        assert_eq!(rpm("1.0-1.el9", "1.0-2.el9"), Less);
        assert_eq!(rpm("1.0~beta", "1.0"), Less);
        assert_eq!(rpm("2:1.0", "1:9.9"), Greater);
        assert_eq!(apk("1.2.3-r0", "1.2.3-r1"), Less);
        assert_eq!(apk("3.1.4_rc1-r0", "3.1.4-r0"), Less);
        assert_eq!(apk("1.36.1-r5", "1.36.1-r15"), Less);
        assert_eq!(apk("2.2a", "2.2"), Greater);
        assert_eq!(pep440("2.0.0rc1", "2.0.0"), Less);
        assert_eq!(pep440("2.0.0.dev1", "2.0.0a1"), Less);
        assert_eq!(pep440("2.0.post1", "2.0"), Greater);
        assert_eq!(pep440("2.31.0", "2.32.0"), Less);
        assert_eq!(pep440("1.0", "1.0.0"), Equal);
        assert_eq!(semver("4.17.20", "4.17.21"), Less);
        assert_eq!(semver("1.0.0-alpha", "1.0.0"), Less);
        assert_eq!(semver("1.0.0-alpha.1", "1.0.0-alpha.beta"), Less);
        assert_eq!(semver("v0.17.0", "0.3.8"), Greater);
    }
}
