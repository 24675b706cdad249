//! The server address an admin types: parsed once into a normalised [`KohaUrl`], or refused with
//! a [`UrlError`] whose kind the options page translates.

use crate::ids::{single_token, TokenFlaw};
use crate::kinds::kinds;
use crate::koha::{AUTH_PATH, SERVICE_PATH};
use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

/// Why a server URL was refused. Each variant has a stable [`UrlError::kind`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UrlError {
    /// Nothing typed.
    #[error("server address is empty")]
    Empty,
    /// A space (or other white space) inside the address.
    #[error("server address contains a space")]
    Space,
    /// A control character inside the address.
    #[error("server address contains a control character")]
    ControlCharacter,
    /// No `https://` in front.
    #[error("server address must start with https://")]
    MissingScheme,
    /// A scheme other than `https` (or `http` for a local test server).
    #[error("server address uses the unsupported scheme {scheme:?}")]
    UnsupportedScheme {
        /// The scheme as typed, lower-cased.
        scheme: String,
    },
    /// `http://` to anything but `localhost`, `127.0.0.1` or `[::1]`.
    #[error("http:// is only allowed for localhost; use https://")]
    HttpNotAllowed,
    /// A user name or password in the address (`user:pw@host`).
    #[error("server address must not contain a user name or password")]
    Userinfo,
    /// No host after the scheme.
    #[error("server address has no host")]
    MissingHost,
    /// A host with characters a host name cannot have.
    #[error("server address has an invalid host")]
    InvalidHost,
    /// A port that is not a number from 1 to 65535.
    #[error("server address has an invalid port")]
    InvalidPort,
    /// A path with `.`/`..` segments, a backslash, or a character a URL path cannot hold.
    #[error("server address has an invalid path")]
    InvalidPath,
}

kinds!(UrlError {
    Empty => "empty",
    Space => "space",
    ControlCharacter => "control-character",
    MissingScheme => "missing-scheme",
    UnsupportedScheme => "unsupported-scheme",
    HttpNotAllowed => "http-not-allowed",
    Userinfo => "userinfo",
    MissingHost => "missing-host",
    InvalidHost => "invalid-host",
    InvalidPort => "invalid-port",
    InvalidPath => "invalid-path",
});

/// The base address of a Koha staff interface, normalised: scheme and host lower-case, no default
/// port, no trailing slash, no query or fragment, no `/cgi-bin/koha/...` tail. A port and a path
/// prefix are kept. `https` always, `http` only for `localhost`, `127.0.0.1` and `[::1]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KohaUrl {
    /// The normalised base, e.g. `https://koha.example.org:8443/lib`.
    base: String,
    /// Length of `<scheme>://`.
    scheme_len: usize,
    /// The host as it appears in the base (IPv6 literals keep their brackets).
    host: String,
    /// An explicit, non-default port.
    port: Option<u16>,
}

/// Hosts for which `http://` is accepted (test set-ups on the same machine).
const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

impl KohaUrl {
    /// Parses and normalises what an admin typed or pasted.
    pub fn parse(raw: &str) -> Result<Self, UrlError> {
        let text = single_token(raw).map_err(|flaw| match flaw {
            TokenFlaw::Empty => UrlError::Empty,
            TokenFlaw::Space => UrlError::Space,
            TokenFlaw::ControlCharacter => UrlError::ControlCharacter,
        })?;
        let (scheme, rest) = split_scheme(text)?;
        if scheme != "https" && scheme != "http" {
            return Err(UrlError::UnsupportedScheme { scheme });
        }
        let Some(rest) = rest.strip_prefix("//") else {
            return Err(UrlError::MissingHost);
        };
        // The authority ends at the first '/', '?' or '#'.
        let authority_end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        if authority.contains('@') {
            return Err(UrlError::Userinfo);
        }
        let (host, port) = split_host_port(authority)?;
        let default_port = if scheme == "https" { 443 } else { 80 };
        let port = port.filter(|&p| p != default_port);
        if scheme == "http" && !LOOPBACK_HOSTS.contains(&host.as_str()) {
            return Err(UrlError::HttpNotAllowed);
        }
        let path = normalise_path(tail)?;
        let mut base = format!("{scheme}://{host}");
        if let Some(port) = port {
            base.push_str(&format!(":{port}"));
        }
        base.push_str(&path);
        Ok(KohaUrl {
            base,
            scheme_len: scheme.len() + 3,
            host,
            port,
        })
    }

    /// The normalised base, without a trailing slash: `https://koha.example.org:8443/lib`.
    pub fn as_str(&self) -> &str {
        &self.base
    }

    /// `https` or `http`.
    pub fn scheme(&self) -> &str {
        &self.base[..self.scheme_len - 3]
    }

    /// The host, lower-case; an IPv6 literal keeps its brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// An explicit port other than the scheme's default.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The match pattern to pass to Firefox's `permissions.request`: `<scheme>://<host>/*`, without
    /// the port (a pattern with a port is granted but does not cover `fetch`).
    pub fn origin_pattern(&self) -> String {
        format!("{}://{}/*", self.scheme(), self.host)
    }

    /// `<base>/cgi-bin/koha/offline_circ/service.pl`.
    pub fn service_url(&self) -> String {
        format!("{}{SERVICE_PATH}", self.base)
    }

    /// `<base>/cgi-bin/koha/svc/authentication`.
    pub fn auth_url(&self) -> String {
        format!("{}{AUTH_PATH}", self.base)
    }
}

impl fmt::Display for KohaUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.base)
    }
}

impl Serialize for KohaUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.base)
    }
}

// Stored data goes through the same validation as typed data.
impl<'de> Deserialize<'de> for KohaUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        KohaUrl::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// Splits `scheme:rest`, lower-casing the scheme. Text without a scheme (`koha.example.org`,
/// `localhost:8080`) is [`UrlError::MissingScheme`].
fn split_scheme(text: &str) -> Result<(String, &str), UrlError> {
    let is_scheme = |s: &str| {
        let mut chars = s.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    };
    let Some(colon) = text.find(':') else {
        return Err(UrlError::MissingScheme);
    };
    let (candidate, rest) = (&text[..colon], &text[colon + 1..]);
    if !is_scheme(candidate) {
        return Err(UrlError::MissingScheme);
    }
    // `host:port` and `host.tld:...` without `//` are a forgotten scheme, not a scheme.
    let looks_like_host = candidate.contains('.') || rest.starts_with(|c: char| c.is_ascii_digit());
    if !rest.starts_with("//") && looks_like_host {
        return Err(UrlError::MissingScheme);
    }
    Ok((candidate.to_ascii_lowercase(), rest))
}

/// Splits `host[:port]`, lower-cases and checks the host, parses the port.
fn split_host_port(authority: &str) -> Result<(String, Option<u16>), UrlError> {
    let (host, port) = if authority.starts_with('[') {
        let close = authority.find(']').ok_or(UrlError::InvalidHost)?;
        let (host, after) = authority.split_at(close + 1);
        let inner = &host[1..host.len() - 1];
        if inner.is_empty()
            || !inner
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err(UrlError::InvalidHost);
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or(UrlError::InvalidHost)?),
        };
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(UrlError::MissingHost);
    }
    let host = host.to_ascii_lowercase();
    if !host.starts_with('[') {
        let label_ok = |l: &str| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        // One trailing dot (a fully qualified name) is allowed.
        let labels = host.strip_suffix('.').unwrap_or(&host);
        if !labels.split('.').all(label_ok) {
            return Err(UrlError::InvalidHost);
        }
    }
    let port = match port {
        None | Some("") => None,
        Some(p) if p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(UrlError::InvalidPort),
                Ok(n) => Some(n),
            }
        }
        Some(_) => return Err(UrlError::InvalidPort),
    };
    Ok((host, port))
}

/// Drops query and fragment, empty segments (trailing and doubled slashes) and a pasted
/// `/cgi-bin/...` tail. Returns `""` or `/seg/seg`.
fn normalise_path(tail: &str) -> Result<String, UrlError> {
    let path_end = tail.find(['?', '#']).unwrap_or(tail.len());
    let path = &tail[..path_end];
    if path.contains('\\') {
        return Err(UrlError::InvalidPath);
    }
    let mut out = String::new();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        if segment.eq_ignore_ascii_case("cgi-bin") {
            break;
        }
        let pchar = |c: char| c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@%".contains(c);
        if segment == "." || segment == ".." || !segment.chars().all(pchar) {
            return Err(UrlError::InvalidPath);
        }
        out.push('/');
        out.push_str(segment);
    }
    Ok(out)
}
