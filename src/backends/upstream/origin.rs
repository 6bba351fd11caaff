//! Where an upstream API lives, parsed once at start-up from its `api_base` setting.
//!
//! `http://host[:port][/base]` and `https://…` only. What the daemon cannot honour is an error
//! rather than a surprise later: user information (`user:pass@`, which would be sent nowhere),
//! a query or fragment (a path appended after them would be meaningless), bytes that cannot go
//! in a request line. With `api_socket` set the daemon connects to that Unix socket instead of
//! the host; the URL still gives the scheme (TLS or not), the path and the `Host` header.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Http,
    Https,
}

/// One upstream endpoint; equal origins can share pooled connections.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    pub scheme: Scheme,
    /// The host as written, IPv6 literals without their brackets (what DNS, `connect` and TLS
    /// server names want).
    pub host: String,
    pub port: u16,
    /// The path the API's endpoints hang from, without a trailing `/`; empty for the root.
    pub base_path: String,
    /// Connect here instead of `host:port`.
    pub unix_socket: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginError {
    /// Neither `http://` nor `https://`.
    Scheme,
    EmptyHost,
    BadHost,
    BadPort,
    /// `user:pass@host` is not supported.
    UserInfo,
    /// A `?query` or `#fragment`.
    QueryOrFragment,
    /// Whitespace or control bytes in the path.
    BadPath,
}

impl fmt::Display for OriginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let problem = match self {
            OriginError::Scheme => "it must start with http:// or https://",
            OriginError::EmptyHost => "it has no host",
            OriginError::BadHost => "its host holds characters a host name cannot have",
            OriginError::BadPort => "its port is not a number from 1 to 65535",
            OriginError::UserInfo => {
                "credentials in the URL (user:pass@) are not supported; use the api_key setting"
            }
            OriginError::QueryOrFragment => {
                "it has a query or fragment; endpoint paths are appended to it"
            }
            OriginError::BadPath => "its path holds spaces or control characters",
        };
        write!(f, "invalid API base URL: {problem}")
    }
}

impl std::error::Error for OriginError {}

impl Origin {
    /// Parses `api_base` (such as `https://api.openai.com/v1`); `unix_socket` comes from the
    /// matching `api_socket` setting.
    pub fn parse(api_base: &str, unix_socket: Option<PathBuf>) -> Result<Origin, OriginError> {
        let trimmed = api_base.trim();
        let (scheme, rest) = if let Some(rest) = strip_prefix_ignore_case(trimmed, "https://") {
            (Scheme::Https, rest)
        } else if let Some(rest) = strip_prefix_ignore_case(trimmed, "http://") {
            (Scheme::Http, rest)
        } else {
            return Err(OriginError::Scheme);
        };
        if rest.contains(['?', '#']) {
            return Err(OriginError::QueryOrFragment);
        }
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.contains('@') {
            return Err(OriginError::UserInfo);
        }
        let (host, port) = split_host_port(authority)?;
        if !path.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(OriginError::BadPath);
        }
        let port = match port {
            Some(port) => port,
            None if scheme == Scheme::Https => 443,
            None => 80,
        };
        Ok(Origin {
            scheme,
            host: host.to_string(),
            port,
            base_path: path.trim_end_matches('/').to_string(),
            unix_socket,
        })
    }

    /// The request target for an endpoint: the base path and `endpoint` concatenated, as the Go
    /// daemon did (`/v1` + `/chat/completions`). `endpoint` starts with `/`.
    pub fn join(&self, endpoint: &str) -> String {
        format!("{}{endpoint}", self.base_path)
    }

    /// The `Host` header: the port only when it is not the scheme's default, IPv6 in brackets.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default_port = match self.scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        };
        if self.port == default_port {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    pub fn is_tls(&self) -> bool {
        self.scheme == Scheme::Https
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), OriginError> {
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let close = bracketed.find(']').ok_or(OriginError::BadHost)?;
        let host = &bracketed[..close];
        let after = &bracketed[close + 1..];
        if !host
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(OriginError::BadHost);
        }
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(after.strip_prefix(':').ok_or(OriginError::BadHost)?),
            ),
        }
    } else {
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        // An IPv6 literal must be bracketed, or its colons would be read as a port.
        if host.contains(':') {
            return Err(OriginError::BadHost);
        }
        (host, port)
    };
    if host.is_empty() {
        return Err(OriginError::EmptyHost);
    }
    let host_ok = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~:".contains(&b));
    if !host_ok {
        return Err(OriginError::BadHost);
    }
    let port = match port {
        None => None,
        Some(digits) => {
            let valid = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
            let port = digits.parse::<u16>().ok().filter(|p| valid && *p > 0);
            Some(port.ok_or(OriginError::BadPort)?)
        }
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(api_base: &str) -> Origin {
        Origin::parse(api_base, None).unwrap()
    }

    #[test]
    fn default_bases() {
        let openai = origin("https://api.openai.com/v1");
        assert_eq!(openai.scheme, Scheme::Https);
        assert_eq!(openai.host, "api.openai.com");
        assert_eq!(openai.port, 443);
        assert_eq!(openai.join("/chat/completions"), "/v1/chat/completions");
        assert_eq!(openai.host_header(), "api.openai.com");
        assert!(openai.is_tls());
    }

    #[test]
    fn ports_paths_and_case() {
        let local = origin("HTTP://127.0.0.1:8080");
        assert_eq!((local.scheme, local.port), (Scheme::Http, 8080));
        assert_eq!(local.join("/chat/completions"), "/chat/completions");
        assert_eq!(local.host_header(), "127.0.0.1:8080");
        // A trailing slash does not double the slash in front of the endpoint.
        assert_eq!(
            origin("http://h/proxy/v1/").join("/chat/completions"),
            "/proxy/v1/chat/completions"
        );
        assert_eq!(origin("http://h:80/").host_header(), "h");
        assert_eq!(origin("https://h:80").host_header(), "h:80");
    }

    #[test]
    fn ipv6_literals() {
        let v6 = origin("http://[::1]:9000/v1");
        assert_eq!(v6.host, "::1");
        assert_eq!(v6.port, 9000);
        assert_eq!(v6.host_header(), "[::1]:9000");
        assert_eq!(origin("https://[fe80::1]").host_header(), "[fe80::1]");
    }

    #[test]
    fn unix_socket_keeps_the_url_parts() {
        let o = Origin::parse("http://localhost/v1", Some("/run/llm.sock".into())).unwrap();
        assert_eq!(
            o.unix_socket.as_deref(),
            Some(std::path::Path::new("/run/llm.sock"))
        );
        assert_eq!(o.host_header(), "localhost");
        assert_eq!(o.join("/chat/completions"), "/v1/chat/completions");
    }

    #[test]
    fn bad_urls() {
        let cases = [
            ("api.openai.com/v1", OriginError::Scheme),
            ("ftp://h/", OriginError::Scheme),
            ("", OriginError::Scheme),
            ("https://", OriginError::EmptyHost),
            ("https:///v1", OriginError::EmptyHost),
            ("https://:443/v1", OriginError::EmptyHost),
            ("https://user:pw@h/v1", OriginError::UserInfo),
            ("https://h/v1?x=1", OriginError::QueryOrFragment),
            ("https://h/v1#x", OriginError::QueryOrFragment),
            ("https://h:0", OriginError::BadPort),
            ("https://h:65536", OriginError::BadPort),
            ("https://h:", OriginError::BadPort),
            ("https://h:+80", OriginError::BadPort),
            ("https://h\r\nX: y/v1", OriginError::BadHost),
            ("https://h o/v1", OriginError::BadHost),
            ("https://[::1/v1", OriginError::BadHost),
            ("https://::1:443/v1", OriginError::BadHost),
            ("https://h/v 1", OriginError::BadPath),
        ];
        for (url, error) in cases {
            assert_eq!(Origin::parse(url, None), Err(error), "{url:?}");
        }
        assert!(OriginError::UserInfo.to_string().contains("api_key"));
    }
}
