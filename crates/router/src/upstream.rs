//! Upstream base URLs: parsed and validated once, when they enter the router.
//!
//! An upstream is `http://host:port` and nothing more: no TLS, no user info, no
//! path prefix, no query. Everything the hot path needs (authority, `Host`
//! header value) is precomputed here so forwarding a request allocates nothing
//! for it.

use std::fmt;
use std::str::FromStr;

use hyper::Uri;
use hyper::header::HeaderValue;
use hyper::http::uri::Authority;

/// A validated upstream base URL such as `http://127.0.0.1:8080`.
#[derive(Clone, Debug)]
pub struct Upstream {
    url: String,
    authority: Authority,
    host_header: HeaderValue,
}

/// Why a string is not a usable upstream URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid upstream url {url:?}: {reason}")]
pub struct InvalidUpstream {
    /// The rejected input.
    pub url: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Upstream {
    /// Parses and validates `http://host:port` (a trailing `/` is accepted).
    pub fn parse(input: &str) -> Result<Self, InvalidUpstream> {
        let fail = |reason| InvalidUpstream { url: input.to_owned(), reason };
        let uri: Uri = input.parse().map_err(|_| fail("not a valid absolute URL"))?;
        match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("http") => {}
            Some(_) => return Err(fail("only http:// upstreams are supported")),
            None => return Err(fail("missing scheme, expected http://host:port")),
        }
        let authority = uri.authority().ok_or_else(|| fail("missing host, expected http://host:port"))?;
        if authority.as_str().contains('@') {
            return Err(fail("user info is not supported"));
        }
        if authority.host().is_empty() {
            return Err(fail("missing host, expected http://host:port"));
        }
        if authority.port_u16().is_none() {
            return Err(fail("missing port, expected http://host:port"));
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(fail("a path or query is not supported, expected http://host:port"));
        }
        let host_header =
            HeaderValue::from_str(authority.as_str()).map_err(|_| fail("host is not a valid Host header value"))?;
        Ok(Self { url: format!("http://{authority}"), authority: authority.clone(), host_header })
    }

    /// The normalized URL, `http://host:port`.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// `host:port`.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    pub(crate) fn host_header(&self) -> &HeaderValue {
        &self.host_header
    }
}

impl PartialEq for Upstream {
    fn eq(&self, other: &Self) -> bool {
        self.url == other.url
    }
}

impl Eq for Upstream {}

impl FromStr for Upstream {
    type Err = InvalidUpstream;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_host_and_port() {
        let up = Upstream::parse("http://127.0.0.1:8080").expect("valid");
        assert_eq!(up.as_str(), "http://127.0.0.1:8080");
        assert_eq!(up.authority().as_str(), "127.0.0.1:8080");
        assert_eq!(up.host_header(), "127.0.0.1:8080");
        let up = Upstream::parse("HTTP://localhost:1/").expect("valid");
        assert_eq!(up.as_str(), "http://localhost:1");
    }

    #[test]
    fn rejects_what_is_not_http_host_port() {
        for (input, reason) in [
            ("https://127.0.0.1:8443", "only http://"),
            ("127.0.0.1:8080", "missing scheme"),
            ("http://127.0.0.1", "missing port"),
            ("http://127.0.0.1:8080/api", "a path"),
            ("http://127.0.0.1:8080/?a=1", "a path or query"),
            ("http://user@127.0.0.1:8080", "user info"),
            ("not a url", "not a valid"),
            ("", "not a valid"),
        ] {
            let err = Upstream::parse(input).expect_err(input);
            assert!(err.reason.contains(reason), "{input}: {err}");
            assert!(err.to_string().starts_with("invalid upstream url"));
        }
    }
}
