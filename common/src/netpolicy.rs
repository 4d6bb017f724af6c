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

/// IPv4 addresses embedded in IPv6 (mapped, NAT64) are judged as IPv4.
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
    // NAT64 well-known prefix 64:ff9b::/96.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        let o = v6.octets();
        return Some(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
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

fn blocked_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    Some(match () {
        _ if ip.is_unspecified() || a == 0 => "unspecified",
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_private() => "private",
        _ if ip.is_link_local() => "link-local",
        _ if a == 100 && (64..128).contains(&b) => "CGNAT",
        _ if ip.is_multicast() => "multicast",
        _ if ip.is_broadcast() || a >= 240 => "reserved",
        _ => return None,
    })
}

fn blocked_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    Some(match () {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_loopback() => "loopback",
        _ if first & 0xfe00 == 0xfc00 => "private (unique local)",
        _ if first & 0xffc0 == 0xfe80 => "link-local",
        _ if ip.is_multicast() => "multicast",
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
