//! The client address guessing limits are keyed by: the peer's, unless the peer is a configured
//! trusted proxy, in which case `Forwarded` (RFC 7239) or else `X-Forwarded-For` name it. The
//! headers are read right to left, skipping trusted proxies: the first untrusted hop is the
//! client (whatever a client writes further left is its own claim and is not believed).

use std::net::IpAddr;

use actix_web::HttpRequest;
use ipnet::IpNet;

/// The client address of a request served by the app (its state names the trusted proxies).
pub fn of(req: &HttpRequest) -> Option<String> {
    match req.app_data::<actix_web::web::Data<crate::app::AppState>>() {
        Some(state) => state.proxies.client_addr(req),
        None => req.peer_addr().map(|a| ip_text(a.ip())),
    }
}

/// An address as `Display` writes it; an IPv4 address without the formatting machinery (a
/// twentieth of a cheap request's instructions went to `Ipv4Addr`'s `Display`).
fn ip_text(ip: IpAddr) -> String {
    let IpAddr::V4(v4) = ip else {
        return ip.to_string();
    };
    let mut text = String::with_capacity(15);
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            text.push('.');
        }
        if octet >= 100 {
            text.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            text.push(char::from(b'0' + octet / 10 % 10));
        }
        text.push(char::from(b'0' + octet % 10));
    }
    text
}

#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses `[limits] trusted_proxies`: CIDRs or single addresses.
    pub fn parse(list: &[String]) -> Result<Self, String> {
        list.iter()
            .map(|entry| {
                let entry = entry.trim();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!("limits.trusted_proxies: `{entry}` is not an address or CIDR")
                    })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    fn trusts(&self, addr: &IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(addr))
    }

    /// The client address of a request, as text.
    pub fn client_addr(&self, req: &HttpRequest) -> Option<String> {
        let peer = req.peer_addr()?.ip();
        if !self.trusts(&peer) {
            // Not a proxy of ours: its forwarding headers are not read at all.
            return Some(ip_text(peer));
        }
        Some(ip_text(self.resolve(peer, &forwarded_chain(req))))
    }

    /// The first untrusted hop, from the peer leftwards through `chain` (oldest hop first).
    fn resolve(&self, peer: IpAddr, chain: &[Option<IpAddr>]) -> IpAddr {
        let mut client = peer;
        if !self.trusts(&peer) {
            return client;
        }
        for hop in chain.iter().rev() {
            match hop {
                // A hop the proxy could not name: the proxy is the best we know.
                None => return client,
                Some(addr) => {
                    client = *addr;
                    if !self.trusts(addr) {
                        return client;
                    }
                }
            }
        }
        client
    }
}

/// The hops `Forwarded` names (or, without it, `X-Forwarded-For`), oldest first; `None` for a
/// hop that is not an address (`unknown`, an obfuscated name).
fn forwarded_chain(req: &HttpRequest) -> Vec<Option<IpAddr>> {
    let headers = req.headers();
    let forwarded: Vec<&str> = headers
        .get_all("forwarded")
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|v| v.split(','))
            .map(|element| {
                element.split(';').find_map(|pair| {
                    let (name, value) = pair.split_once('=')?;
                    name.trim()
                        .eq_ignore_ascii_case("for")
                        .then(|| parse_node(value))?
                })
            })
            .collect();
    }
    headers
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(parse_node)
        .collect()
}

/// `192.0.2.1`, `192.0.2.1:80`, `"[2001:db8::1]:80"`, `2001:db8::1`.
fn parse_node(value: &str) -> Option<IpAddr> {
    let v = value.trim().trim_matches('"');
    if let Ok(ip) = v.parse() {
        return Some(ip);
    }
    if let Some(rest) = v.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    v.rsplit_once(':')?.0.parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn ip_text_is_display() {
        for a in [0u8, 1, 9, 10, 42, 99, 100, 127, 199, 200, 255] {
            for b in [0u8, 7, 10, 100, 255] {
                let ip = IpAddr::from([a, b, a.wrapping_mul(3), 255 - b]);
                assert_eq!(ip_text(ip), ip.to_string());
            }
        }
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(ip_text(v6), "2001:db8::1");
    }

    fn addr(proxies: &[&str], headers: &[(&str, &str)]) -> String {
        let trusted =
            TrustedProxies::parse(&proxies.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        let mut req = TestRequest::default().peer_addr("10.0.0.5:4000".parse().unwrap());
        for (n, v) in headers {
            req = req.insert_header((*n, *v));
        }
        trusted.client_addr(&req.to_http_request()).unwrap()
    }

    #[test]
    fn headers_count_only_from_trusted_proxies() {
        let xff = [("x-forwarded-for", "198.51.100.7, 203.0.113.9")];
        // No trusted proxy: the headers are ignored.
        assert_eq!(addr(&[], &xff), "10.0.0.5");
        // The peer is trusted: the rightmost untrusted hop; what the client wrote is ignored.
        assert_eq!(addr(&["10.0.0.0/8"], &xff), "203.0.113.9");
        assert_eq!(addr(&["10.0.0.0/8", "203.0.113.9"], &xff), "198.51.100.7");
        let fwd = [(
            "forwarded",
            "for=192.0.2.60;proto=http, for=\"[2001:db8:cafe::17]:4711\"",
        )];
        assert_eq!(addr(&["10.0.0.5"], &fwd), "2001:db8:cafe::17");
        assert_eq!(
            addr(&["10.0.0.5"], &[("forwarded", "for=unknown")]),
            "10.0.0.5"
        );
        assert!(TrustedProxies::parse(&["not-a-net".into()]).is_err());
    }
}
