//! The connection settings an admin enters on the options page.
//!
//! The options page hands over a [`SettingsForm`] of raw strings; [`Settings::from_form`] parses it
//! once and reports every invalid field, so the page can mark each one and save nothing. A
//! [`Settings`] value is always valid, and its serialised form (what goes into extension storage)
//! never contains the password unless the user asked for it to be remembered.
//!
//! ```
//! use koha_offline_circ::settings::{Settings, SettingsForm};
//!
//! let form = SettingsForm {
//!     server: "HTTPS://Koha.Example.org:8443/lib/cgi-bin/koha/mainpage.pl?x=1".into(),
//!     branchcode: "DE-627".into(),
//!     userid: "desk1".into(),
//!     password: "s3cret".into(),
//!     remember_password: false,
//!     timezone: "Europe/Berlin".into(),
//!     ..SettingsForm::default()
//! };
//! let settings = Settings::from_form(&form).unwrap();
//! assert_eq!(settings.server.as_str(), "https://koha.example.org:8443/lib");
//! assert_eq!(settings.server.origin_pattern(), "https://koha.example.org/*");
//! assert_eq!(settings.password(), None); // not remembered
//! assert!(!serde_json::to_string(&settings).unwrap().contains("s3cret"));
//! ```

use crate::ids::{Branchcode, Field, InputError, Userid};
use crate::kinds::kinds;
use crate::koha::Credentials;
use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

/// The path of `service.pl` below the staff interface base.
pub const SERVICE_PATH: &str = "/cgi-bin/koha/offline_circ/service.pl";
/// The path of `svc/authentication` below the staff interface base.
pub const AUTH_PATH: &str = "/cgi-bin/koha/svc/authentication";
/// Longest accepted time zone name (the longest IANA name is 32 characters).
pub const TIMEZONE_MAX: usize = 64;
/// The `browser.storage.session` key under which the options page keeps a password that is not
/// remembered (memory only: Firefox forgets it when it closes). The desk's send reads it from
/// there and may write it there after asking; "Forget credentials" removes it.
pub const SESSION_PASSWORD_KEY: &str = "koha-offline-circ:password";

pub mod connection;

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

/// Why typed text is not one clean token.
enum TokenFlaw {
    Empty,
    Space,
    ControlCharacter,
}

/// Trims, then refuses empty text, inner whitespace and control characters (checked in this
/// order, so each field reports the same first flaw).
fn single_token(raw: &str) -> Result<&str, TokenFlaw> {
    let text = raw.trim();
    if text.is_empty() {
        Err(TokenFlaw::Empty)
    } else if text.chars().any(char::is_whitespace) {
        Err(TokenFlaw::Space)
    } else if text.chars().any(char::is_control) {
        Err(TokenFlaw::ControlCharacter)
    } else {
        Ok(text)
    }
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

/// How transactions are sent: queued for a librarian to process in Koha (recommended), or applied
/// at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `pending=true`: Koha stores each as a pending offline operation. The default.
    #[default]
    Queue,
    /// Koha applies each at once and answers with the result.
    Apply,
}

impl Mode {
    /// `queue` or `apply`, as in the options page's `mode` select.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Queue => "queue",
            Mode::Apply => "apply",
        }
    }
}

/// Why a time zone name was refused. Each variant has a stable [`TimezoneError::kind`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TimezoneError {
    /// Nothing given.
    #[error("time zone is empty")]
    Empty,
    /// White space inside.
    #[error("time zone contains a space")]
    Space,
    /// A control character inside.
    #[error("time zone contains a control character")]
    ControlCharacter,
    /// Longer than [`TIMEZONE_MAX`].
    #[error("time zone is longer than {TIMEZONE_MAX} characters")]
    TooLong,
    /// Neither `UTC` nor `Area/Location`.
    #[error("time zone must be UTC or look like Area/Location")]
    Shape,
    /// Well formed, but the browser does not know this zone.
    #[error("unknown time zone")]
    Unknown,
}

kinds!(TimezoneError {
    Empty => "empty",
    Space => "space",
    ControlCharacter => "control-character",
    TooLong => "too-long",
    Shape => "shape",
    Unknown => "unknown",
});

/// The name of an IANA time zone, checked for shape only: `UTC`, or `Area/Location` with one or more
/// `/`-separated parts of ASCII letters, digits, `_`, `-` and `+` (`Europe/Berlin`,
/// `America/Argentina/Buenos_Aires`, `Etc/GMT+5`). Whether the zone exists is checked by the
/// shell, which asks the browser.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct TimezoneName(String);

impl TimezoneName {
    /// Trims and checks the shape; the only way to make one.
    pub fn parse(raw: &str) -> Result<Self, TimezoneError> {
        let text = single_token(raw).map_err(|flaw| match flaw {
            TokenFlaw::Empty => TimezoneError::Empty,
            TokenFlaw::Space => TimezoneError::Space,
            TokenFlaw::ControlCharacter => TimezoneError::ControlCharacter,
        })?;
        if text.chars().count() > TIMEZONE_MAX {
            return Err(TimezoneError::TooLong);
        }
        let part_ok = |p: &str| {
            p.starts_with(|c: char| c.is_ascii_alphabetic())
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-+".contains(c))
        };
        let parts: Vec<&str> = text.split('/').collect();
        let ok = text == "UTC" || (parts.len() >= 2 && parts.iter().all(|p| part_ok(p)));
        if !ok {
            return Err(TimezoneError::Shape);
        }
        Ok(TimezoneName(text.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TimezoneName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TimezoneName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        TimezoneName::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// The options page's fields, as typed. The UI contract ids map one to one (see
/// [`SettingsField::id`]).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SettingsForm {
    /// `server`: the staff interface URL.
    pub server: String,
    /// `branchcode`: the library code.
    pub branchcode: String,
    /// `userid`: the staff user name; may be empty.
    pub userid: String,
    /// `password`: may be empty. Never trimmed.
    pub password: String,
    /// `remember-password`.
    pub remember_password: bool,
    /// `mode`: `queue`, `apply`, or empty for the default (`queue`).
    pub mode: String,
    /// `timezone`: an IANA name; the page fills in the browser's by default.
    pub timezone: String,
    /// Whether the desk plays sounds.
    pub sounds: bool,
    /// Log in once per send run and reuse that Koha session (needs `edit_catalogue`; replaces a
    /// Koha login in this browser), instead of one password check per transaction.
    pub login_once: bool,
}

// The password never reaches a log through `{:?}`.
impl fmt::Debug for SettingsForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SettingsForm")
            .field("server", &self.server)
            .field("branchcode", &self.branchcode)
            .field("userid", &self.userid)
            .field("password", &redacted(!self.password.is_empty()))
            .field("remember_password", &self.remember_password)
            .field("mode", &self.mode)
            .field("timezone", &self.timezone)
            .field("sounds", &self.sounds)
            .field("login_once", &self.login_once)
            .finish()
    }
}

impl SettingsForm {
    /// The form a first visit shows: the browser's time zone, queue mode, log in once on,
    /// sounds on (desk staff rely on them at scanner speed), nothing remembered.
    pub fn initial(timezone: &str) -> SettingsForm {
        SettingsForm {
            mode: Mode::Queue.as_str().to_owned(),
            timezone: timezone.to_owned(),
            login_once: true,
            sounds: true,
            ..SettingsForm::default()
        }
    }
}

fn redacted(present: bool) -> &'static str {
    if present {
        "<redacted>"
    } else {
        "<none>"
    }
}

/// A field of the options page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SettingsField {
    /// `server`.
    Server,
    /// `branchcode`.
    Branchcode,
    /// `userid`.
    Userid,
    /// `password`.
    Password,
    /// `mode`.
    Mode,
    /// `timezone`.
    Timezone,
}

kinds!(SettingsField: id, IDS {
    Server => "server",
    Branchcode => "branchcode",
    Userid => "userid",
    Password => "password",
    Mode => "mode",
    Timezone => "timezone",
});

impl SettingsField {
    /// Position on the page, top to bottom.
    fn rank(self) -> u8 {
        match self {
            SettingsField::Server => 0,
            SettingsField::Branchcode => 1,
            SettingsField::Userid => 2,
            SettingsField::Password => 3,
            SettingsField::Mode => 4,
            SettingsField::Timezone => 5,
        }
    }
}

impl fmt::Display for SettingsField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// One invalid field of the options page.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SettingsError {
    /// The server URL.
    #[error("{0}")]
    Server(UrlError),
    /// The library code.
    #[error("{0}")]
    Branchcode(InputError),
    /// The user name.
    #[error("{0}")]
    Userid(InputError),
    /// A password to remember, but no user name to go with it.
    #[error("a remembered password needs a user name")]
    PasswordWithoutUserid,
    /// Neither `queue` nor `apply`.
    #[error("mode must be queue or apply, not {0:?}")]
    UnknownMode(String),
    /// The time zone.
    #[error("{0}")]
    Timezone(TimezoneError),
    /// A connection test without a password: none typed, none remembered, none kept for the
    /// session.
    #[error("password is empty")]
    PasswordMissing,
}

impl SettingsError {
    /// The field to mark on the options page.
    pub fn field(&self) -> SettingsField {
        match self {
            SettingsError::Server(_) => SettingsField::Server,
            SettingsError::Branchcode(_) => SettingsField::Branchcode,
            SettingsError::Userid(_) | SettingsError::PasswordWithoutUserid => {
                SettingsField::Userid
            }
            SettingsError::UnknownMode(_) => SettingsField::Mode,
            SettingsError::Timezone(_) => SettingsField::Timezone,
            SettingsError::PasswordMissing => SettingsField::Password,
        }
    }

    /// A stable, machine-readable name, unique within the field: the inner error's kind, or
    /// `password-without-userid`, `unknown-mode`, or `empty` for [`SettingsError::PasswordMissing`].
    pub fn kind(&self) -> &'static str {
        match self {
            SettingsError::Server(e) => e.kind(),
            SettingsError::Branchcode(e) | SettingsError::Userid(e) => e.kind(),
            SettingsError::PasswordWithoutUserid => "password-without-userid",
            SettingsError::UnknownMode(_) => "unknown-mode",
            SettingsError::Timezone(e) => e.kind(),
            SettingsError::PasswordMissing => "empty",
        }
    }

    /// Every `(field, kind)` pair an invalid form can give, in the page's order: the options
    /// page builds its `opt_err_<field>_<kind>` i18n keys from them. A new variant must join the
    /// list of one value per variant below; the match then says which kinds it has.
    pub fn every_kind() -> Vec<(SettingsField, &'static str)> {
        let text = |field| InputError::Empty { field };
        let one_of_each = [
            SettingsError::Server(UrlError::Empty),
            SettingsError::Branchcode(text(Field::Branchcode)),
            SettingsError::Userid(text(Field::Userid)),
            SettingsError::PasswordWithoutUserid,
            SettingsError::UnknownMode(String::new()),
            SettingsError::Timezone(TimezoneError::Empty),
            SettingsError::PasswordMissing,
        ];
        let mut all: Vec<_> = one_of_each
            .iter()
            .flat_map(|e| {
                let kinds = match e {
                    SettingsError::Server(_) => UrlError::KINDS,
                    SettingsError::Branchcode(_) | SettingsError::Userid(_) => {
                        InputError::TEXT_KINDS
                    }
                    SettingsError::Timezone(_) => TimezoneError::KINDS,
                    SettingsError::PasswordWithoutUserid
                    | SettingsError::UnknownMode(_)
                    | SettingsError::PasswordMissing => &[][..],
                };
                let own = (!kinds.contains(&e.kind())).then(|| e.kind());
                kinds
                    .iter()
                    .copied()
                    .chain(own)
                    .map(|kind| (e.field(), kind))
            })
            .collect();
        all.sort_by_key(|(field, _)| field.rank());
        all
    }
}

/// Every invalid field of a form, in the order of the page; never empty.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}", join(.0))]
pub struct SettingsErrors(Vec<SettingsError>);

fn join(errors: &[SettingsError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl SettingsErrors {
    /// The errors, one or more, in the order of the page's fields.
    pub fn errors(&self) -> &[SettingsError] {
        &self.0
    }

    /// `(field, kind)` pairs, for the page to mark fields and pick translated messages.
    pub fn fields(&self) -> Vec<(SettingsField, &'static str)> {
        self.0.iter().map(|e| (e.field(), e.kind())).collect()
    }

    /// The error for one field, if that field is invalid.
    pub fn get(&self, field: SettingsField) -> Option<&SettingsError> {
        self.0.iter().find(|e| e.field() == field)
    }

    /// Adds errors and keeps the page's order (stable within a field).
    fn extend(mut self, more: impl IntoIterator<Item = SettingsError>) -> SettingsErrors {
        self.0.extend(more);
        self.0.sort_by_key(|e| e.field().rank());
        self
    }
}

/// The saved connection settings. Always valid; build them with [`Settings::from_form`] or by
/// deserialising (which validates the same way).
///
/// Invariant: a password is held only when `remember_password` is true. Serialising never writes
/// the password otherwise, and `{:?}` never shows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "StoredSettings", from = "StoredSettings")]
pub struct Settings {
    /// The Koha staff interface.
    pub server: KohaUrl,
    /// The desk's library; Koha's queue is filtered by it.
    pub branchcode: Branchcode,
    /// The staff login, if one was given.
    pub userid: Option<Userid>,
    remember_password: bool,
    password: Option<String>,
    /// Queue (recommended) or apply.
    pub mode: Mode,
    /// Koha's time zone, for `.koc` export.
    pub timezone: TimezoneName,
    /// Whether the desk plays sounds.
    pub sounds: bool,
    /// Log in once per send run and reuse that session where Koha allows it.
    pub login_once: bool,
    /// The way of talking to Koha found by the last connection test (a name defined by the koha
    /// module, e.g. `P1`), kept so a send run can start with it. Cleared when the server changes.
    pub detected_transport: Option<String>,
}

fn default_on() -> bool {
    true
}

/// The storage form of [`Settings`]: the same fields, camelCase, password only when remembered.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredSettings {
    server: KohaUrl,
    branchcode: Branchcode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    userid: Option<Userid>,
    #[serde(default)]
    remember_password: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    password: Option<String>,
    #[serde(default)]
    mode: Mode,
    timezone: TimezoneName,
    #[serde(default = "default_on")]
    sounds: bool,
    #[serde(default = "default_on")]
    login_once: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    detected_transport: Option<String>,
}

impl From<Settings> for StoredSettings {
    fn from(s: Settings) -> Self {
        StoredSettings {
            password: s.password.filter(|_| s.remember_password),
            server: s.server,
            branchcode: s.branchcode,
            userid: s.userid,
            remember_password: s.remember_password,
            mode: s.mode,
            timezone: s.timezone,
            sounds: s.sounds,
            login_once: s.login_once,
            detected_transport: s.detected_transport,
        }
    }
}

impl From<StoredSettings> for Settings {
    fn from(s: StoredSettings) -> Self {
        Settings {
            password: s.password.filter(|p| s.remember_password && !p.is_empty()),
            server: s.server,
            branchcode: s.branchcode,
            userid: s.userid,
            remember_password: s.remember_password,
            mode: s.mode,
            timezone: s.timezone,
            sounds: s.sounds,
            login_once: s.login_once,
            detected_transport: s.detected_transport,
        }
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("server", &self.server.as_str())
            .field("branchcode", &self.branchcode)
            .field("userid", &self.userid)
            .field("remember_password", &self.remember_password)
            .field("password", &redacted(self.password.is_some()))
            .field("mode", &self.mode)
            .field("timezone", &self.timezone)
            .field("sounds", &self.sounds)
            .field("login_once", &self.login_once)
            .field("detected_transport", &self.detected_transport)
            .finish()
    }
}

impl Settings {
    /// Parses the options page's form. Every invalid field is reported, so the page can mark
    /// each one and save nothing. Empty `userid` means none; empty `mode` means `queue`; the
    /// password is kept only when `remember_password` is ticked and it is non-empty (it is never
    /// trimmed). `detected_transport` starts empty (see [`Settings::carry_over`]).
    pub fn from_form(form: &SettingsForm) -> Result<Settings, SettingsErrors> {
        let mut errors = Vec::new();
        let server = KohaUrl::parse(&form.server)
            .map_err(|e| errors.push(SettingsError::Server(e)))
            .ok();
        let branchcode = Branchcode::parse(&form.branchcode)
            .map_err(|e| errors.push(SettingsError::Branchcode(e)))
            .ok();
        let password =
            Some(form.password.clone()).filter(|p| form.remember_password && !p.is_empty());
        let userid = if form.userid.trim().is_empty() {
            if password.is_some() {
                errors.push(SettingsError::PasswordWithoutUserid);
            }
            None
        } else {
            Userid::parse(&form.userid)
                .map_err(|e| errors.push(SettingsError::Userid(e)))
                .ok()
        };
        let mode = match form.mode.trim() {
            "" | "queue" => Some(Mode::Queue),
            "apply" => Some(Mode::Apply),
            other => {
                errors.push(SettingsError::UnknownMode(other.to_owned()));
                None
            }
        };
        let timezone = TimezoneName::parse(&form.timezone)
            .map_err(|e| errors.push(SettingsError::Timezone(e)))
            .ok();
        match (server, branchcode, mode, timezone) {
            (Some(server), Some(branchcode), Some(mode), Some(timezone)) if errors.is_empty() => {
                Ok(Settings {
                    server,
                    branchcode,
                    userid,
                    remember_password: form.remember_password,
                    password,
                    mode,
                    timezone,
                    sounds: form.sounds,
                    login_once: form.login_once,
                    detected_transport: None,
                })
            }
            _ => Err(SettingsErrors(errors)),
        }
    }

    /// [`Settings::from_form`], and also refuses a well-formed time zone that `zone_known` (the
    /// browser's time zone database) does not know, together with every other invalid field.
    pub fn from_form_checked(
        form: &SettingsForm,
        zone_known: &dyn Fn(&str) -> bool,
    ) -> Result<Settings, SettingsErrors> {
        let parsed = Settings::from_form(form);
        let unknown_zone = TimezoneName::parse(&form.timezone)
            .is_ok_and(|zone| !zone_known(zone.as_str()))
            .then_some(SettingsError::Timezone(TimezoneError::Unknown));
        match (parsed, unknown_zone) {
            (parsed, None) => parsed,
            (Ok(_), Some(error)) => Err(SettingsErrors(vec![error])),
            (Err(errors), Some(error)) => Err(errors.extend([error])),
        }
    }

    /// The form that shows these settings on the options page. The password field stays empty:
    /// the page never shows a stored password.
    pub fn to_form(&self) -> SettingsForm {
        SettingsForm {
            server: self.server.as_str().to_owned(),
            branchcode: self.branchcode.as_str().to_owned(),
            userid: self
                .userid
                .as_ref()
                .map(|u| u.as_str().to_owned())
                .unwrap_or_default(),
            password: String::new(),
            remember_password: self.remember_password,
            mode: self.mode.as_str().to_owned(),
            timezone: self.timezone.as_str().to_owned(),
            sounds: self.sounds,
            login_once: self.login_once,
        }
    }

    /// Keeps what a re-saved form cannot carry from the previous settings: the detected transport
    /// (when the server is unchanged) and the remembered password (when remembering is still on,
    /// the password field was left empty, and server and user are unchanged).
    pub fn carry_over(&mut self, previous: &Settings) {
        let same_server = self.server == previous.server;
        if same_server && self.detected_transport.is_none() {
            self.detected_transport = previous.detected_transport.clone();
        }
        if same_server
            && self.remember_password
            && self.password.is_none()
            && self.userid.is_some()
            && self.userid == previous.userid
        {
            self.password = previous.password.clone();
        }
    }

    /// Whether the password is kept in storage.
    pub fn remember_password(&self) -> bool {
        self.remember_password
    }

    /// The remembered password, if any (only when [`Settings::remember_password`] is true).
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// Turns remembering on or off; turning it off drops the password.
    pub fn set_remember_password(&mut self, remember: bool) {
        self.remember_password = remember;
        if !remember {
            self.password = None;
        }
    }

    /// Remembers a password. Refused (returns false, keeps nothing) unless remembering is on and
    /// a user name is set; an empty password clears it.
    pub fn remember(&mut self, password: &str) -> bool {
        if !self.remember_password || self.userid.is_none() {
            return false;
        }
        self.password = Some(password.to_owned()).filter(|p| !p.is_empty());
        true
    }

    /// "Forget credentials": clears the user name and the password and turns remembering off.
    pub fn forget_credentials(&mut self) {
        self.userid = None;
        self.password = None;
        self.remember_password = false;
    }

    /// A copy without the password, for anything that leaves the options page (an export, a
    /// log, a message to another page).
    pub fn without_secret(&self) -> Settings {
        Settings {
            password: None,
            ..self.clone()
        }
    }

    /// The JSON kept under the `settings` key: the password only when remembered.
    pub fn to_storage(&self) -> serde_json::Value {
        serde_json::to_value(StoredSettings::from(self.clone())).unwrap_or(serde_json::Value::Null)
    }
}

/// Values an admin preset through Firefox's enterprise policies (`storage.managed`). Empty values
/// count as not set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ManagedSettings {
    /// Preset server URL.
    pub server: Option<String>,
    /// Preset library code.
    pub branchcode: Option<String>,
}

/// A form with the managed presets applied, and which fields they lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Managed {
    /// The form, preset values in place of what was typed.
    pub form: SettingsForm,
    /// Fields set by policy: shown locked, not editable.
    pub locked: Vec<SettingsField>,
}

/// Applies the presets over a form: each non-empty preset replaces the typed value and locks the
/// field. An invalid preset is then reported by [`Settings::from_form`] on its (locked) field.
pub fn merge_managed(form: &SettingsForm, managed: &ManagedSettings) -> Managed {
    let mut form = form.clone();
    let mut locked = Vec::new();
    if let Some(server) = preset(&managed.server) {
        form.server = server.to_owned();
        locked.push(SettingsField::Server);
    }
    if let Some(branchcode) = preset(&managed.branchcode) {
        form.branchcode = branchcode.to_owned();
        locked.push(SettingsField::Branchcode);
    }
    Managed { form, locked }
}

fn preset(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// Applies the presets to saved settings (for example when the policy changed after they were
/// saved). Returns the settings with preset values in force, keeping the password and detected
/// transport where [`Settings::carry_over`] allows, and the locked fields.
pub fn enforce_managed(
    settings: &Settings,
    managed: &ManagedSettings,
) -> Result<(Settings, Vec<SettingsField>), SettingsErrors> {
    let merged = merge_managed(&settings.to_form(), managed);
    let mut enforced = Settings::from_form(&merged.form)?;
    enforced.carry_over(settings);
    Ok((enforced, merged.locked))
}

/// What the options page does with the password kept in `browser.storage.session` under
/// [`SESSION_PASSWORD_KEY`]. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub enum SessionPassword {
    /// Keep this password for the browser session (replacing what is there).
    Set(String),
    /// Remove the key.
    Clear,
}

impl fmt::Debug for SessionPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionPassword::Set(_) => f.write_str("Set(<redacted>)"),
            SessionPassword::Clear => f.write_str("Clear"),
        }
    }
}

/// Where a password is kept, for the hint beside the (always empty) password field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PasswordKept {
    /// Nowhere: the desk asks for it when sending.
    None,
    /// In extension storage (`remember-password` ticked), unencrypted in the Firefox profile.
    Remembered,
    /// In `browser.storage.session` until Firefox closes.
    Session,
}

kinds!(PasswordKept {
    None => "none",
    Remembered => "remembered",
    Session => "session",
});

impl PasswordKept {
    /// Where the password of these settings is kept, given the session's copy.
    pub fn of(settings: Option<&Settings>, session: Option<&str>) -> PasswordKept {
        match settings {
            Some(s) if s.password().is_some() => PasswordKept::Remembered,
            Some(s) if s.userid.is_some() && session.is_some_and(|p| !p.is_empty()) => {
                PasswordKept::Session
            }
            _ => PasswordKept::None,
        }
    }
}

/// The outcome of pressing Save with a valid form: what to store where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavePlan {
    /// What goes under the `settings` key (the password only when remembered).
    pub settings: Settings,
    /// What to do with the session copy of the password.
    pub session_password: SessionPassword,
    /// Where the password is kept afterwards.
    pub password_kept: PasswordKept,
    /// Fields preset by policy.
    pub locked: Vec<SettingsField>,
}

/// The password that goes with a form: the one typed, else the one already kept (remembered or
/// for the session) for the same server and user name. `None` without a user name.
fn known_password(
    form: &SettingsForm,
    settings: &Settings,
    previous: Option<&Settings>,
    session: Option<&str>,
) -> Option<String> {
    settings.userid.as_ref()?;
    if !form.password.is_empty() {
        return Some(form.password.clone());
    }
    let previous =
        previous.filter(|p| p.server == settings.server && p.userid == settings.userid)?;
    previous
        .password()
        .or(session)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
}

/// Save: applies the policy presets, validates every field (see
/// [`Settings::from_form_checked`]), keeps what the form cannot carry ([`Settings::carry_over`],
/// and a transport `detected` by a connection test of the same server), and decides where the
/// password goes. Remembered: in the settings, and the session copy is removed. Not remembered:
/// the typed password, or one kept before for the same server and user, goes to the session;
/// otherwise the session copy is removed.
pub fn plan_save(
    form: &SettingsForm,
    previous: Option<&Settings>,
    managed: &ManagedSettings,
    session: Option<&str>,
    detected: Option<(&KohaUrl, &str)>,
    zone_known: &dyn Fn(&str) -> bool,
) -> Result<SavePlan, SettingsErrors> {
    let merged = merge_managed(form, managed);
    let mut settings = Settings::from_form_checked(&merged.form, zone_known)?;
    if let Some(previous) = previous {
        settings.carry_over(previous);
    }
    if let Some((_, transport)) = detected.filter(|(server, _)| **server == settings.server) {
        settings.detected_transport = Some(transport.to_owned());
    }
    let password = known_password(&merged.form, &settings, previous, session);
    let session_password = match password {
        Some(password) if settings.remember_password() => {
            settings.remember(&password);
            SessionPassword::Clear
        }
        Some(password) => SessionPassword::Set(password),
        None => SessionPassword::Clear,
    };
    let password_kept = match &session_password {
        SessionPassword::Set(p) => PasswordKept::of(Some(&settings), Some(p)),
        SessionPassword::Clear => PasswordKept::of(Some(&settings), None),
    };
    Ok(SavePlan {
        settings,
        session_password,
        password_kept,
        locked: merged.locked,
    })
}

/// What "Test connection" needs before it sends anything: the form validated like Save (presets
/// applied), a user name, and a password (typed, or kept for the same server and user). Every
/// missing or invalid field is reported. Nothing is stored.
pub fn plan_test(
    form: &SettingsForm,
    previous: Option<&Settings>,
    managed: &ManagedSettings,
    session: Option<&str>,
    zone_known: &dyn Fn(&str) -> bool,
) -> Result<(Settings, Credentials), SettingsErrors> {
    let merged = merge_managed(form, managed);
    let settings = Settings::from_form_checked(&merged.form, zone_known)?;
    let mut errors = Vec::new();
    if settings.userid.is_none() {
        errors.push(SettingsError::Userid(InputError::Empty {
            field: Field::Userid,
        }));
    }
    let password = known_password(&merged.form, &settings, previous, session);
    if password.is_none() && merged.form.password.is_empty() {
        errors.push(SettingsError::PasswordMissing);
    }
    match (settings.userid.clone(), password) {
        (Some(userid), Some(password)) => Ok((settings, Credentials { userid, password })),
        _ => Err(SettingsErrors(Vec::new()).extend(errors)),
    }
}

/// "Forget credentials" on saved settings: the same settings without user name and password.
/// The page then removes the session copy ([`SessionPassword::Clear`]) too.
pub fn forget_credentials(settings: &Settings) -> Settings {
    let mut forgotten = settings.clone();
    forgotten.forget_credentials();
    forgotten
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The public API cannot build this state; the serialiser must still refuse to leak it.
    #[test]
    fn serialising_never_writes_an_unremembered_password() {
        let mut s = Settings::from_form(&SettingsForm {
            server: "https://koha.example.org".into(),
            branchcode: "DE-627".into(),
            userid: "desk1".into(),
            timezone: "UTC".into(),
            ..SettingsForm::default()
        })
        .unwrap();
        s.password = Some("hunter2-secret".into());
        assert!(!s.to_storage().to_string().contains("hunter2-secret"));
        assert!(!serde_json::to_string(&s)
            .unwrap()
            .contains("hunter2-secret"));
    }

    fn typed(password: &str, remember: bool) -> SettingsForm {
        SettingsForm {
            server: "https://koha.example.org/".into(),
            branchcode: "DE-627".into(),
            userid: "desk".into(),
            password: password.into(),
            remember_password: remember,
            timezone: "Europe/Berlin".into(),
            ..SettingsForm::initial("Europe/Berlin")
        }
    }

    fn any_zone(_: &str) -> bool {
        true
    }

    fn save(
        form: &SettingsForm,
        previous: Option<&Settings>,
        session: Option<&str>,
    ) -> Result<SavePlan, SettingsErrors> {
        plan_save(
            form,
            previous,
            &ManagedSettings::default(),
            session,
            None,
            &any_zone,
        )
    }

    #[test]
    fn initial_form_defaults() {
        let form = SettingsForm::initial("Europe/Vienna");
        assert_eq!(form.timezone, "Europe/Vienna");
        assert_eq!(form.mode, "queue");
        assert!(form.login_once);
        assert!(!form.remember_password);
        assert!(form.sounds, "sounds are on for a new desk");
    }

    #[test]
    fn unknown_zone_is_reported_with_the_other_errors_in_page_order() {
        let form = SettingsForm {
            server: "ftp://x".into(),
            timezone: "Mars/Olympus_Mons".into(),
            ..typed("", false)
        };
        let errors = Settings::from_form_checked(&form, &|z| z != "Mars/Olympus_Mons").unwrap_err();
        assert_eq!(
            errors.fields(),
            vec![
                (SettingsField::Server, "unsupported-scheme"),
                (SettingsField::Timezone, "unknown")
            ]
        );
        let only_zone = SettingsForm {
            timezone: "Mars/Olympus_Mons".into(),
            ..typed("", false)
        };
        let errors = Settings::from_form_checked(&only_zone, &|_| false).unwrap_err();
        assert_eq!(errors.fields(), vec![(SettingsField::Timezone, "unknown")]);
        // A malformed zone is reported once, by shape, without asking the browser.
        let bad = SettingsForm {
            timezone: "Berlin".into(),
            ..typed("", false)
        };
        let errors = Settings::from_form_checked(&bad, &|_| panic!("not asked")).unwrap_err();
        assert_eq!(errors.fields(), vec![(SettingsField::Timezone, "shape")]);
        assert!(Settings::from_form_checked(&typed("", false), &any_zone).is_ok());
    }

    #[test]
    fn unremembered_password_goes_to_the_session_only() {
        let plan = save(&typed("secret123", false), None, None).unwrap();
        assert_eq!(
            plan.session_password,
            SessionPassword::Set("secret123".into())
        );
        assert_eq!(plan.password_kept, PasswordKept::Session);
        assert_eq!(plan.settings.password(), None);
        assert!(!plan.settings.to_storage().to_string().contains("secret123"));
        assert!(!format!("{plan:?}").contains("secret123"));
    }

    #[test]
    fn remembered_password_is_stored_and_the_session_copy_removed() {
        let plan = save(&typed("secret123", true), None, Some("older")).unwrap();
        assert_eq!(plan.session_password, SessionPassword::Clear);
        assert_eq!(plan.password_kept, PasswordKept::Remembered);
        assert_eq!(plan.settings.password(), Some("secret123"));
    }

    #[test]
    fn resaving_with_an_empty_field_keeps_the_known_password() {
        // Remembered, then re-saved with the field left empty: still remembered.
        let first = save(&typed("pw1", true), None, None).unwrap().settings;
        let again = save(&first.to_form(), Some(&first), None).unwrap();
        assert_eq!(again.settings.password(), Some("pw1"));
        // Remember turned off: the password moves to the session.
        let off = SettingsForm {
            remember_password: false,
            ..first.to_form()
        };
        let moved = save(&off, Some(&first), None).unwrap();
        assert_eq!(moved.settings.password(), None);
        assert_eq!(moved.session_password, SessionPassword::Set("pw1".into()));
        // Remember turned on with the session copy: it moves to storage.
        let on = SettingsForm {
            remember_password: true,
            ..moved.settings.to_form()
        };
        let back = save(&on, Some(&moved.settings), Some("pw1")).unwrap();
        assert_eq!(back.settings.password(), Some("pw1"));
        assert_eq!(back.session_password, SessionPassword::Clear);
        // Another user: nothing carries over, the session copy goes.
        let other = SettingsForm {
            userid: "other".into(),
            ..moved.settings.to_form()
        };
        let plan = save(&other, Some(&moved.settings), Some("pw1")).unwrap();
        assert_eq!(plan.session_password, SessionPassword::Clear);
        assert_eq!(plan.password_kept, PasswordKept::None);
    }

    #[test]
    fn save_with_errors_plans_nothing() {
        let bad = SettingsForm {
            server: "javascript:alert(1)".into(),
            branchcode: "".into(),
            ..typed("secret123", false)
        };
        let errors = save(&bad, None, None).unwrap_err();
        assert_eq!(
            errors.fields(),
            vec![
                (SettingsField::Server, "unsupported-scheme"),
                (SettingsField::Branchcode, "empty")
            ]
        );
    }

    #[test]
    fn managed_presets_win_and_lock() {
        let managed = ManagedSettings {
            server: Some("https://policy.example.org".into()),
            branchcode: Some("DE-25".into()),
        };
        let plan = plan_save(&typed("", false), None, &managed, None, None, &any_zone).unwrap();
        assert_eq!(plan.settings.server.as_str(), "https://policy.example.org");
        assert_eq!(plan.settings.branchcode.as_str(), "DE-25");
        assert_eq!(
            plan.locked,
            vec![SettingsField::Server, SettingsField::Branchcode]
        );
    }

    #[test]
    fn a_detected_transport_is_kept_for_its_server_only() {
        let same = KohaUrl::parse("https://koha.example.org").unwrap();
        let other = KohaUrl::parse("https://other.example.org").unwrap();
        let form = typed("", false);
        let managed = ManagedSettings::default();
        let plan = plan_save(&form, None, &managed, None, Some((&same, "P3")), &any_zone).unwrap();
        assert_eq!(plan.settings.detected_transport.as_deref(), Some("P3"));
        let plan = plan_save(&form, None, &managed, None, Some((&other, "P3")), &any_zone).unwrap();
        assert_eq!(plan.settings.detected_transport, None);
    }

    #[test]
    fn a_test_needs_a_user_name_and_a_password() {
        let managed = ManagedSettings::default();
        let no_user = SettingsForm {
            userid: "".into(),
            ..typed("", false)
        };
        let errors = plan_test(&no_user, None, &managed, None, &any_zone).unwrap_err();
        assert_eq!(
            errors.fields(),
            vec![
                (SettingsField::Userid, "empty"),
                (SettingsField::Password, "empty")
            ]
        );
        let errors = plan_test(&typed("", false), None, &managed, None, &any_zone).unwrap_err();
        assert_eq!(errors.fields(), vec![(SettingsField::Password, "empty")]);
        let (_, creds) = plan_test(&typed("pw", false), None, &managed, None, &any_zone).unwrap();
        assert_eq!(creds.password, "pw");
        // The session copy serves for the saved server and user.
        let saved = save(&typed("", false), None, None).unwrap().settings;
        let (_, creds) = plan_test(
            &saved.to_form(),
            Some(&saved),
            &managed,
            Some("kept"),
            &any_zone,
        )
        .unwrap();
        assert_eq!(creds.password, "kept");
        // ... but not for another server.
        let moved = SettingsForm {
            server: "https://elsewhere.example.org".into(),
            ..saved.to_form()
        };
        assert!(plan_test(&moved, Some(&saved), &managed, Some("kept"), &any_zone).is_err());
    }

    #[test]
    fn forgetting_drops_user_and_password() {
        let saved = save(&typed("pw", true), None, None).unwrap().settings;
        let forgotten = forget_credentials(&saved);
        assert_eq!(forgotten.userid, None);
        assert_eq!(forgotten.password(), None);
        assert!(!forgotten.remember_password());
        assert_eq!(forgotten.server, saved.server);
        let json = forgotten.to_storage().to_string();
        assert!(!json.contains("desk") && !json.contains("\"pw\""));
        assert_eq!(
            PasswordKept::of(Some(&forgotten), Some("pw")),
            PasswordKept::None
        );
    }
}
