//! Registry and service host names as both programs accept them:
//! `host[:port]`, where the host is DNS labels, an IPv4 address or a
//! bracketed IPv6 address (`[::1]:5000`), the form a URL's authority takes.
//! A URL parser is not needed for this grammar; the standard library parses
//! the IPv6 address.

/// Whether `h` is `host[:port]`: DNS labels (each 1–63 letters, digits or
/// `-`, not starting or ending with `-`; 253 characters at most), an IPv4
/// address or a bracketed IPv6 address, and an optional port 1–65535.
pub fn valid_host(h: &str) -> bool {
    let valid_port = |p: &str| p.parse::<u16>().is_ok_and(|n| n > 0);
    if let Some(rest) = h.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else {
            return false;
        };
        return addr.parse::<std::net::Ipv6Addr>().is_ok()
            && (after.is_empty() || after.strip_prefix(':').is_some_and(valid_port));
    }
    let (host, port) = match h.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (h, None),
    };
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
        && port.is_none_or(valid_port)
}

#[cfg(test)]
mod tests {
    use super::valid_host;

    #[test]
    fn hosts_ports_and_ipv6() {
        for ok in [
            "registry.example",
            "registry.example:5000",
            "127.0.0.1:5000",
            "localhost",
            "[::1]",
            "[::1]:5000",
            "[fd00::5]:443",
        ] {
            assert!(valid_host(ok), "{ok}");
        }
        for bad in [
            "",
            ":5000",
            "registry.example:0",
            "registry.example:70000",
            "registry.example:",
            "-bad.example",
            "bad-.example",
            "a..b",
            "::1",
            "[::1",
            "[::1]5000",
            "[nope]:5000",
            "host/path",
            "user@host",
            "host name",
        ] {
            assert!(!valid_host(bad), "{bad}");
        }
    }
}
