//! Outbound requests to addresses users choose (notification webhooks, chat services, log-export
//! callbacks, the upstream registries of proxy caches and mirrors), guarded against server-side
//! request forgery.
//!
//! Rule: a URL may be called when it is `http` or `https`, names a host, carries no credentials,
//! and every address its host resolves to is public — unless the host is listed in
//! `SSRF_ALLOWED_HOSTS` (a host name, an IP address, or a CIDR block such as `10.0.0.0/8`).
//! Loopback, private (RFC 1918, unique-local), link-local (cloud metadata), carrier-grade NAT,
//! unspecified, multicast and documentation ranges count as not public.
//!
//! The check runs twice: when the URL is stored ([`Guard::check`], which also resolves the name,
//! so a user hears about a refused target at once) and right before each request
//! ([`Guard::target`]). The second check returns the addresses it checked, and
//! [`Target::client`] pins the request to them, so a name that changes between check and connect
//! (DNS rebinding) cannot lead anywhere else. Redirects are never followed.
//!
//! Clients of upstream registries must follow what the upstream names (token realms, redirects
//! to blob storage), so they connect through [`Guard::resolver`] (every name checked at connect
//! time) and [`Guard::redirect_policy`] (address literals checked before a redirect is followed),
//! after a [`Guard::check`] of the upstream itself.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use reqwest::Url;

/// The configured exceptions (`SSRF_ALLOWED_HOSTS`).
#[derive(Clone, Debug, Default)]
pub struct Guard {
    allowed: Vec<Allowed>,
}

#[derive(Clone, Debug, PartialEq)]
enum Allowed {
    Host(String),
    Net(IpAddr, u8),
}

/// Why a URL may not be called. The message is meant for the person who entered the URL.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    Invalid(String),
    #[error("the host {host} resolves to a non-public address ({addr}), which is not allowed")]
    NotPublic { host: String, addr: IpAddr },
    #[error("the host {0} could not be resolved")]
    Unresolvable(String),
}

/// A URL that passed the check, with the addresses it was checked against.
#[derive(Clone, Debug)]
pub struct Target {
    pub url: Url,
    host: String,
    addrs: Vec<SocketAddr>,
}

impl Guard {
    /// A guard allowing the given hosts, IP addresses and CIDR blocks. Entries that parse as
    /// none of these are matched as host names.
    pub fn new<S: AsRef<str>>(allowed: &[S]) -> Guard {
        let allowed = allowed
            .iter()
            .map(|entry| parse_allowed(entry.as_ref().trim()))
            .collect();
        Guard { allowed }
    }

    /// Checks a URL a user is storing: syntax, then every address of its host.
    pub async fn check(&self, url: &str) -> Result<Url, Refusal> {
        self.target(url).await.map(|t| t.url)
    }

    /// Checks a URL right before a request and returns the addresses to connect to.
    pub async fn target(&self, url: &str) -> Result<Target, Refusal> {
        let url = parse(url)?;
        let host = url
            .host_str()
            .ok_or_else(|| Refusal::Invalid("the URL has no host".into()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let port = url
            .port_or_known_default()
            .ok_or_else(|| Refusal::Invalid("the URL has no port".into()))?;
        let host_allowed = self.allowed.contains(&Allowed::Host(host.clone()));
        let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|_| Refusal::Unresolvable(host.clone()))?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(Refusal::Unresolvable(host));
        }
        let refused = addrs
            .iter()
            .map(|a| a.ip())
            .find(|ip| !self.ip_allowed(*ip));
        if let (false, Some(addr)) = (host_allowed, refused) {
            return Err(Refusal::NotPublic { host, addr });
        }
        Ok(Target { url, host, addrs })
    }

    /// Whether a connection to `ip` may be made for `host` (a name or an address literal).
    pub fn permits(&self, host: &str, ip: IpAddr) -> bool {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        self.allowed.contains(&Allowed::Host(host)) || self.ip_allowed(ip)
    }

    /// A DNS resolver for HTTP clients whose every connection must pass the guard (clients of
    /// upstream registries, which follow token realms and redirects the upstream names): each
    /// name is resolved at connect time and refused if any of its addresses is not allowed,
    /// so a name that changes after a check cannot lead anywhere else. Address literals are
    /// not resolved: check them with [`Guard::check`] or [`Guard::redirect_policy`].
    pub fn resolver(&self) -> std::sync::Arc<Resolver> {
        std::sync::Arc::new(Resolver {
            guard: self.clone(),
        })
    }

    /// A redirect policy following at most `max` redirects, to `http`/`https` URLs whose
    /// address literal (if the host is one) the guard allows; names are left to
    /// [`Guard::resolver`].
    pub fn redirect_policy(&self, max: usize) -> reqwest::redirect::Policy {
        let guard = self.clone();
        reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= max {
                return attempt.error(format!("more than {max} redirects"));
            }
            let url = attempt.url();
            if !matches!(url.scheme(), "http" | "https") {
                return attempt.error(Refusal::Invalid(
                    "only http and https URLs are allowed".into(),
                ));
            }
            let host = url.host_str().unwrap_or_default().to_owned();
            let literal = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>();
            match literal {
                Ok(addr) if !guard.permits(&host, addr) => {
                    attempt.error(Refusal::NotPublic { host, addr })
                }
                _ => attempt.follow(),
            }
        })
    }

    fn ip_allowed(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        is_public(ip)
            || self.allowed.iter().any(|entry| match entry {
                Allowed::Host(_) => false,
                Allowed::Net(net, bits) => in_net(ip, *net, *bits),
            })
    }
}

impl Target {
    /// An HTTP client that reaches this target only at the checked addresses, follows no
    /// redirect, and gives up after `timeout`.
    pub fn client(&self, timeout: Duration) -> reqwest::Result<reqwest::Client> {
        let builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .timeout(timeout);
        let builder = if self.host.parse::<IpAddr>().is_ok() {
            builder
        } else {
            builder.resolve_to_addrs(&self.host, &self.addrs)
        };
        builder.build()
    }
}

/// See [`Guard::resolver`].
pub struct Resolver {
    guard: Guard,
}

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.guard.clone();
        let host = name.as_str().to_ascii_lowercase();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|_| Refusal::Unresolvable(host.clone()))?
                .collect();
            if addrs.is_empty() {
                return Err(Refusal::Unresolvable(host).into());
            }
            if let Some(refused) = addrs.iter().find(|a| !guard.permits(&host, a.ip())) {
                return Err(Refusal::NotPublic {
                    host,
                    addr: refused.ip(),
                }
                .into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

fn parse(url: &str) -> Result<Url, Refusal> {
    let url =
        Url::parse(url.trim()).map_err(|_| Refusal::Invalid("the URL is not valid".into()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Refusal::Invalid(
            "only http and https URLs are allowed".into(),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refusal::Invalid(
            "credentials in the URL are not allowed".into(),
        ));
    }
    Ok(url)
}

fn parse_allowed(entry: &str) -> Allowed {
    if let Some((net, bits)) = entry.split_once('/')
        && let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u8>())
    {
        let max = if net.is_ipv4() { 32 } else { 128 };
        return Allowed::Net(canonical(net), bits.min(max));
    }
    match entry
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        Ok(ip) => {
            let ip = canonical(ip);
            Allowed::Net(ip, if ip.is_ipv4() { 32 } else { 128 })
        }
        Err(_) => Allowed::Host(entry.to_ascii_lowercase()),
    }
}

/// IPv4 addresses written as IPv6 (`::ffff:127.0.0.1`) are judged as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    const NOT_PUBLIC: &[(Ipv4Addr, u8)] = &[
        (Ipv4Addr::new(0, 0, 0, 0), 8),       // "this network"
        (Ipv4Addr::new(10, 0, 0, 0), 8),      // private
        (Ipv4Addr::new(100, 64, 0, 0), 10),   // carrier-grade NAT
        (Ipv4Addr::new(127, 0, 0, 0), 8),     // loopback
        (Ipv4Addr::new(169, 254, 0, 0), 16),  // link-local, cloud metadata
        (Ipv4Addr::new(172, 16, 0, 0), 12),   // private
        (Ipv4Addr::new(192, 0, 0, 0), 24),    // protocol assignments
        (Ipv4Addr::new(192, 0, 2, 0), 24),    // documentation
        (Ipv4Addr::new(192, 168, 0, 0), 16),  // private
        (Ipv4Addr::new(198, 18, 0, 0), 15),   // benchmarking
        (Ipv4Addr::new(198, 51, 100, 0), 24), // documentation
        (Ipv4Addr::new(203, 0, 113, 0), 24),  // documentation
        (Ipv4Addr::new(224, 0, 0, 0), 4),     // multicast
        (Ipv4Addr::new(240, 0, 0, 0), 4),     // reserved, broadcast
    ];
    !NOT_PUBLIC
        .iter()
        .any(|(net, bits)| in_net(IpAddr::V4(ip), IpAddr::V4(*net), *bits))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    const NOT_PUBLIC: &[(Ipv6Addr, u8)] = &[
        (Ipv6Addr::UNSPECIFIED, 128),
        (Ipv6Addr::LOCALHOST, 128),
        (Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96), // NAT64 (embeds IPv4)
        (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64),     // discard
        (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
        (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7),     // unique local
        (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10),    // link-local
        (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8),     // multicast
    ];
    !NOT_PUBLIC
        .iter()
        .any(|(net, bits)| in_net(IpAddr::V6(ip), IpAddr::V6(*net), *bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn non_public_targets_are_refused_unless_allowed() {
        let guard = Guard::default();
        for url in [
            "http://127.0.0.1:9/hook",
            "http://localhost/hook",
            "http://10.1.2.3/",
            "http://172.20.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://100.64.0.1/",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/",
        ] {
            assert!(
                matches!(guard.check(url).await, Err(Refusal::NotPublic { .. })),
                "{url} must be refused"
            );
        }
        for url in [
            "ftp://example.com/",
            "http://user:pw@example.com/",
            "not a url",
            "file:///etc/passwd",
        ] {
            assert!(
                matches!(guard.check(url).await, Err(Refusal::Invalid(_))),
                "{url} is not a valid target"
            );
        }
        // Public literals pass without a lookup.
        assert!(guard.check("https://93.184.216.34/hook").await.is_ok());
        assert!(guard.check("https://[2606:4700::1111]/").await.is_ok());
    }

    #[tokio::test]
    async fn allowed_hosts_addresses_and_blocks_are_exceptions() {
        let guard = Guard::new(&["127.0.0.1", "10.0.0.0/8", "localhost", "[::1]"]);
        assert!(guard.check("http://127.0.0.1:8080/hook").await.is_ok());
        assert!(guard.check("http://10.200.3.4/hook").await.is_ok());
        assert!(guard.check("http://[::1]:80/").await.is_ok());
        assert!(guard.check("http://LOCALHOST:1/").await.is_ok());
        assert!(matches!(
            guard.check("http://127.0.0.2/").await,
            Err(Refusal::NotPublic { .. })
        ));
        assert!(matches!(
            guard.check("http://192.168.0.1/").await,
            Err(Refusal::NotPublic { .. })
        ));
    }

    #[tokio::test]
    async fn a_target_is_pinned_to_the_addresses_checked() {
        let guard = Guard::new(&["localhost"]);
        let target = guard.target("http://localhost:1234/x").await.unwrap();
        assert!(
            target
                .addrs
                .iter()
                .all(|a| a.port() == 1234 && a.ip().is_loopback())
        );
        assert!(target.client(Duration::from_secs(1)).is_ok());
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_non_public_addresses() {
        use reqwest::dns::Resolve;
        let refused = Guard::default()
            .resolver()
            .resolve("localhost".parse().unwrap())
            .await;
        let message = refused.err().expect("localhost is refused").to_string();
        assert!(message.contains("non-public address"), "{message}");
        let allowed = Guard::new(&["localhost"])
            .resolver()
            .resolve("localhost".parse().unwrap())
            .await
            .expect("an allowed name resolves");
        assert!(allowed.into_iter().all(|a| a.ip().is_loopback()));
        let by_block = Guard::new(&["127.0.0.0/8", "::1"])
            .resolver()
            .resolve("localhost".parse().unwrap())
            .await;
        assert!(by_block.is_ok(), "allowed by its addresses");
    }

    #[tokio::test]
    async fn redirects_to_refused_literals_are_not_followed() {
        // A server that redirects to the link-local metadata address.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf).await;
                let _ = conn
                    .write_all(
                        b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/latest/\r\nContent-Length: 0\r\n\r\n",
                    )
                    .await;
            }
        });
        let guard = Guard::new(&["127.0.0.1"]);
        let client = reqwest::Client::builder()
            .redirect(guard.redirect_policy(5))
            .dns_resolver(guard.resolver())
            .build()
            .unwrap();
        let err = client
            .get(format!("http://{addr}/"))
            .send()
            .await
            .expect_err("the redirect is refused");
        assert!(err.is_redirect(), "{err}");
        assert!(
            format!("{err:?}").contains("169.254.169.254"),
            "names the refused address: {err:?}"
        );
    }

    #[test]
    fn cidr_arithmetic() {
        assert!(in_net(
            "10.255.0.1".parse().unwrap(),
            "10.0.0.0".parse().unwrap(),
            8
        ));
        assert!(!in_net(
            "11.0.0.1".parse().unwrap(),
            "10.0.0.0".parse().unwrap(),
            8
        ));
        assert!(in_net(
            "1.2.3.4".parse().unwrap(),
            "0.0.0.0".parse().unwrap(),
            0
        ));
        assert!(in_net(
            "fd12::1".parse().unwrap(),
            "fc00::".parse().unwrap(),
            7
        ));
        assert!(!in_net(
            "10.0.0.1".parse().unwrap(),
            "::".parse().unwrap(),
            0
        ));
    }
}
