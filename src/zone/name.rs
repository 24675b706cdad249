//! The name of Koha's time zone, as the options page takes it: checked for shape here, for
//! existence by the shell (which asks the browser).

use crate::ids::{single_token, TokenFlaw};
use crate::kinds::kinds;
use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

/// Longest accepted time zone name (the longest IANA name is 32 characters).
pub const TIMEZONE_MAX: usize = 64;

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
