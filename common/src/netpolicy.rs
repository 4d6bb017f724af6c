//! Which network addresses a runner may fetch from (SSRF protection).
//!
//! Loopback, private, link-local (including the cloud metadata address), CGNAT, multicast,
//! reserved and unspecified addresses are refused unless an allow-list names them. IPv6
//! forms that embed an IPv4 address are judged by that address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;

/// Why an address is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{host} resolves to {ip}, a {class} address, which runners may not fetch from; if that \
     network is really meant, add a CIDR containing it to the Helm value runner.allowedNetworks \
     (job-runner --allow-network)"
)]
pub struct BlockedAddress {
    pub host: String,
    pub ip: IpAddr,
    pub class: &'static str,
}

/// A failure to resolve or admit a host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Blocked(#[from] BlockedAddress),
    #[error("cannot resolve host {host}: {reason}")]
    Lookup { host: String, reason: String },
}

/// The allow-list on top of the built-in block-list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkPolicy {
    allowed: Vec<IpNet>,
}

impl NetworkPolicy {
    pub fn new(allowed: Vec<IpNet>) -> Self {
        Self { allowed }
    }

    pub fn allowed(&self) -> &[IpNet] {
        &self.allowed
    }

    /// Admits `ip` unless it is in a blocked class and no allowed network contains it.
    pub fn check(&self, host: &str, ip: IpAddr) -> Result<(), BlockedAddress> {
        let Some(class) = blocked_class(ip) else {
            return Ok(());
        };
        if self
            .allowed
            .iter()
            .any(|net| net.contains(&ip) || net.contains(&canonical(ip)))
        {
            return Ok(());
        }
        Err(BlockedAddress {
            host: host.to_string(),
            ip,
            class,
        })
    }

    /// Resolves `host` and admits it only if every address it resolves to is admitted, so a
    /// name with one public and one private address cannot be used to reach the private one.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, ResolveError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((bare, port))
                .await
                .map_err(|e| ResolveError::Lookup {
                    host: host.to_string(),
                    reason: e.to_string(),
                })?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(ResolveError::Lookup {
                host: host.to_string(),
                reason: "no addresses".into(),
            });
        }
        for addr in &addrs {
            self.check(host, addr.ip())?;
        }
        Ok(addrs)
    }
}

/// IPv4 addresses embedded in IPv6 (mapped, compatible, NAT64, 6to4) are judged as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    let o = v6.octets();
    let last = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    // IPv4-compatible ::a.b.c.d (deprecated, still routed by some stacks); :: and ::1 are
    // IPv6's own unspecified and loopback addresses.
    if s[..6] == [0; 6] && u32::from(last) > 1 {
        return Some(last);
    }
    // NAT64 well-known prefix 64:ff9b::/96.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return Some(last);
    }
    // 6to4 2002:a.b.c.d::/48 reaches the IPv4 host a.b.c.d.
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    None
}

/// The blocked class an address belongs to, or `None` for a public address.
pub fn blocked_class(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => blocked_v4(v4),
        IpAddr::V6(v6) => blocked_v6(v6),
    }
}

/// Cloud metadata and platform services on public-looking addresses: Azure's wireserver
/// (168.63.129.16) and Alibaba Cloud's metadata service (100.100.100.200, also in CGNAT).
const METADATA_V4: [Ipv4Addr; 2] = [Ipv4Addr::new(168, 63, 129, 16), Ipv4Addr::new(100, 100, 100, 200)];

fn blocked_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match () {
        _ if ip.is_unspecified() || a == 0 => "unspecified",
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_private() => "private",
        _ if ip.is_link_local() => "link-local",
        _ if METADATA_V4.contains(&ip) => "cloud metadata",
        _ if a == 100 && (64..128).contains(&b) => "CGNAT",
        _ if a == 198 && (18..20).contains(&b) => "benchmarking",
        _ if a == 192 && b == 0 && c == 0 => "IETF protocol assignment",
        _ if ip.is_multicast() => "multicast",
        _ if ip.is_broadcast() || a >= 240 => "reserved",
        _ => return None,
    })
}

fn blocked_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let first = s[0];
    Some(match () {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_loopback() => "loopback",
        _ if first & 0xfe00 == 0xfc00 => "private (unique local)",
        _ if first & 0xffc0 == 0xfe80 => "link-local",
        _ if first & 0xffc0 == 0xfec0 => "site-local",
        _ if ip.is_multicast() => "multicast",
        // NAT64 local-use 64:ff9b:1::/48 translates to networks of the operator's choosing.
        _ if first == 0x64 && s[1] == 0xff9b && s[2] == 1 => "NAT64 local-use",
        // Teredo 2001::/32 tunnels to an IPv4 host through a relay.
        _ if first == 0x2001 && s[1] == 0 => "Teredo",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> Option<&'static str> {
        blocked_class(s.parse().unwrap())
    }

    #[test]
    fn blocks_every_internal_class() {
        for (ip, want) in [
            ("127.0.0.1", "loopback"),
            ("127.8.9.10", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("100.64.0.1", "CGNAT"),
            ("100.127.255.254", "CGNAT"),
            ("224.0.0.1", "multicast"),
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "unspecified"),
            ("255.255.255.255", "reserved"),
            ("240.0.0.1", "reserved"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fd00::1", "private (unique local)"),
            ("fc00::1", "private (unique local)"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "link-local"),
            ("64:ff9b::a00:1", "private"),
            ("64:ff9b::7f00:1", "loopback"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
            ("::127.0.0.1", "loopback"),
            ("::10.0.0.1", "private"),
            ("::169.254.169.254", "link-local"),
            ("2002:7f00:1::", "loopback"),
            ("2002:a00:1::1", "private"),
            ("2002:a9fe:a9fe::", "link-local"),
            ("64:ff9b:1::1", "NAT64 local-use"),
            ("64:ff9b:1:ffff::8.8.8.8", "NAT64 local-use"),
            ("2001::1", "Teredo"),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
            ("fec0::1", "site-local"),
            ("feff::1", "site-local"),
            ("198.18.0.1", "benchmarking"),
            ("198.19.255.255", "benchmarking"),
            ("192.0.0.8", "IETF protocol assignment"),
            ("192.0.0.170", "IETF protocol assignment"),
            ("168.63.129.16", "cloud metadata"),
            ("100.100.100.200", "cloud metadata"),
            ("::ffff:168.63.129.16", "cloud metadata"),
        ] {
            assert_eq!(class(ip), Some(want), "{ip}");
        }
    }

    #[test]
    fn admits_public_addresses() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "::8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "198.20.0.1",
            "198.17.255.255",
            "192.0.1.1",
            "192.0.2.1",
            "168.63.129.17",
            "2001:db8::1",
            "2001:4860:4860::8888",
        ] {
            assert_eq!(class(ip), None, "{ip}");
        }
    }

    #[test]
    fn allow_list_admits_named_networks_only() {
        let policy = NetworkPolicy::new(vec!["10.244.0.0/24".parse().unwrap()]);
        assert!(policy.check("h", "10.244.0.1".parse().unwrap()).is_ok());
        let err = policy.check("h", "10.245.0.1".parse().unwrap()).unwrap_err();
        assert_eq!(err.class, "private");
        assert!(err.to_string().contains("runner.allowedNetworks"), "{err}");
        // An allowed IPv4 network also admits its IPv4-mapped IPv6 form.
        assert!(policy.check("h", "::ffff:10.244.0.9".parse().unwrap()).is_ok());
    }

    #[tokio::test]
    async fn resolve_checks_literal_and_named_hosts() {
        let policy = NetworkPolicy::default();
        let err = policy.resolve("localhost", 80).await.unwrap_err();
        assert!(
            matches!(err, ResolveError::Blocked(ref b) if b.class == "loopback"),
            "{err}"
        );
        let err = policy.resolve("[::1]", 80).await.unwrap_err();
        assert!(matches!(err, ResolveError::Blocked(_)), "{err}");
        let allowed = NetworkPolicy::new(vec!["127.0.0.0/8".parse().unwrap()]);
        assert_eq!(
            allowed.resolve("127.0.0.1", 8080).await.unwrap(),
            vec!["127.0.0.1:8080".parse().unwrap()]
        );
    }
}
