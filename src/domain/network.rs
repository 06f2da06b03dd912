//! Where the service's own outbound requests (webhook deliveries, JWKS fetches) may go: URLs
//! checked once when they are configured, and the rule for the addresses their names resolve
//! to, checked again at every connection.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::DomainError;

/// Longest accepted URL of an outbound target.
const MAX_URL_BYTES: usize = 2_048;

/// What a target URL may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetRules {
    /// Whether private, loopback and other non-global addresses are allowed (development and
    /// tests: `WEBHOOK_ALLOW_PRIVATE_TARGETS`).
    pub allow_private: bool,
    /// Whether the URL must be `https` (plain `http` is then allowed only with `allow_private`).
    pub require_https: bool,
}

/// Checks an outbound URL given as `field`: absolute http(s) (https when `rules` say so), a
/// host, no credentials, and unless private targets are allowed no `localhost` name and no
/// literal address that is not globally reachable (see [`is_global`]). Names are checked again
/// when they resolve, at each connection.
pub fn parse_target_url(
    raw: &str,
    field: &str,
    rules: TargetRules,
) -> Result<url::Url, DomainError> {
    let invalid = |message: String| DomainError::invalid(field, message);
    let raw = raw.trim();
    if raw.len() > MAX_URL_BYTES {
        return Err(invalid(format!("a URL is at most {MAX_URL_BYTES} bytes")));
    }
    let url =
        url::Url::parse(raw).map_err(|error| invalid(format!("`{raw}` is not a URL: {error}")))?;
    let https_only = rules.require_https && !rules.allow_private;
    match url.scheme() {
        "https" => {}
        "http" if !https_only => {}
        "http" => {
            return Err(invalid(format!(
                "`{raw}` must be https (plain http only with WEBHOOK_ALLOW_PRIVATE_TARGETS=true, for development)"
            )));
        }
        other => {
            return Err(invalid(format!(
                "a URL here is http or https, not `{other}`"
            )));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(format!(
            "`{field}` carries no credentials in its URL"
        )));
    }
    let Some(host) = url.host() else {
        return Err(invalid(format!("`{raw}` names no host")));
    };
    if !rules.allow_private {
        let refused = match host {
            url::Host::Ipv4(ip) => !is_global(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => !is_global(IpAddr::V6(ip)),
            url::Host::Domain(name) => {
                let name = name.trim_end_matches('.');
                name.eq_ignore_ascii_case("localhost")
                    || name.to_ascii_lowercase().ends_with(".localhost")
            }
        };
        if refused {
            return Err(invalid(format!(
                "`{raw}` points at an address that is not publicly reachable (private, loopback, \
                 link-local or special-purpose); targets must be public (WEBHOOK_ALLOW_PRIVATE_TARGETS=true \
                 allows others, for development)"
            )));
        }
    }
    Ok(url)
}

/// Whether `ip` is globally reachable, by the IANA special-purpose address registries: every
/// private, shared, loopback, link-local, documentation, benchmarking, multicast and reserved
/// range is refused. IPv6 is global only inside 2000::/3 (so site-local, unique-local and the
/// deprecated IPv4-compatible `::a.b.c.d` are refused) minus its special blocks; the forms that
/// carry an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, 6to4
/// `2002:aabb:ccdd::`) are judged by that address.
pub fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_global_v4(ip),
        IpAddr::V6(ip) => is_global_v6(ip),
    }
}

/// IPv4 blocks that are not globally reachable: (first address, prefix length).
const NON_GLOBAL_V4: [([u8; 4], u8); 15] = [
    ([0, 0, 0, 0], 8),       // "this network"
    ([10, 0, 0, 0], 8),      // private
    ([100, 64, 0, 0], 10),   // shared (carrier-grade NAT)
    ([127, 0, 0, 0], 8),     // loopback
    ([169, 254, 0, 0], 16),  // link-local (cloud metadata)
    ([172, 16, 0, 0], 12),   // private
    ([192, 0, 0, 0], 24),    // IETF protocol assignments
    ([192, 0, 2, 0], 24),    // documentation (TEST-NET-1)
    ([192, 88, 99, 0], 24),  // deprecated 6to4 relay anycast
    ([192, 168, 0, 0], 16),  // private
    ([198, 18, 0, 0], 15),   // benchmarking
    ([198, 51, 100, 0], 24), // documentation (TEST-NET-2)
    ([203, 0, 113, 0], 24),  // documentation (TEST-NET-3)
    ([224, 0, 0, 0], 4),     // multicast
    ([240, 0, 0, 0], 4),     // reserved, broadcast included
];

fn is_global_v4(ip: Ipv4Addr) -> bool {
    let address = u32::from(ip);
    !NON_GLOBAL_V4.iter().any(|(first, prefix)| {
        let mask = u32::MAX << (32 - u32::from(*prefix));
        address & mask == u32::from_be_bytes(*first)
    })
}

/// IPv6 blocks inside 2000::/3 that are not globally reachable: (first address, prefix length).
const NON_GLOBAL_V6: [(u128, u8); 3] = [
    (0x2001_0000 << 96, 23), // IETF protocol assignments (Teredo, benchmarking, ORCHID...)
    (0x2001_0db8 << 96, 32), // documentation
    (0x3fff_0000 << 96, 20), // documentation (RFC 9637)
];

fn is_global_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_v4(ip) {
        return is_global_v4(v4);
    }
    let address = u128::from(ip);
    let in_global_unicast = address >> 125 == 0b001;
    in_global_unicast
        && !NON_GLOBAL_V6.iter().any(|(first, prefix)| {
            let mask = u128::MAX << (128 - u32::from(*prefix));
            address & mask == *first
        })
}

/// The IPv4 address an IPv4-mapped, NAT64 (well-known prefix) or 6to4 address carries.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let segments = ip.segments();
    let low = (ip.to_bits() & 0xffff_ffff) as u32;
    let nat64 = segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
    if nat64 {
        return Some(Ipv4Addr::from(low));
    }
    if segments[0] == 0x2002 {
        let carried = (u32::from(segments[1]) << 16) | u32::from(segments[2]);
        return Some(Ipv4Addr::from(carried));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global(text: &str) -> bool {
        is_global(text.parse().unwrap())
    }

    #[test]
    fn special_purpose_addresses_are_not_global() {
        for refused in [
            "0.0.0.0",
            "10.1.2.3",
            "100.64.0.1",
            "127.0.0.1",
            "169.254.169.254",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "::8.8.8.8",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "100::1",
            "2001::1",
            "2001:db8::1",
            "2002:7f00:1::1",
            "3fff::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
        ] {
            assert!(!global(refused), "{refused} counted as global");
        }
    }

    #[test]
    fn public_addresses_are_global() {
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "100.128.0.1",
            "172.32.0.1",
            "192.0.3.1",
            "198.20.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(global(public), "{public} counted as not global");
        }
    }

    #[test]
    fn urls_are_checked_for_scheme_credentials_and_targets() {
        let public = TargetRules {
            allow_private: false,
            require_https: false,
        };
        assert!(parse_target_url("https://hooks.example.com/in", "url", public).is_ok());
        for bad in [
            "ftp://example.com/",
            "not a url",
            "https://user:pw@example.com/",
            "http://127.0.0.1:8080/",
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://10.1.2.3/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[::127.0.0.1]/",
            "http://[fec0::1]/",
            "http://[64:ff9b::7f00:1]/",
            "http://[fd00::1]/",
            "http://localhost:3000/",
            "http://LOCALHOST./",
            "http://api.localhost/",
            "http://[::ffff:192.168.0.1]/",
        ] {
            assert!(
                parse_target_url(bad, "url", public).is_err(),
                "{bad} was accepted"
            );
        }
        let private = TargetRules {
            allow_private: true,
            require_https: true,
        };
        assert!(parse_target_url("http://127.0.0.1:8080/", "url", private).is_ok());
        let https = TargetRules {
            allow_private: false,
            require_https: true,
        };
        let error = parse_target_url("http://keys.example.com/jwks", "jwksUrl", https)
            .unwrap_err()
            .to_string();
        assert!(error.contains("must be https"), "{error}");
        for tricky in [
            "https://127.0.0.1.example.com/",
            "https://localhostevil.example/",
        ] {
            assert!(
                parse_target_url(tricky, "jwksUrl", https).is_ok(),
                "{tricky}: a public name, checked when it resolves"
            );
        }
        assert!(parse_target_url("https://127.0.0.1@example.com/", "jwksUrl", https).is_err());
    }
}
