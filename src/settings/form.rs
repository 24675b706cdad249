//! The options page's form as typed ([`SettingsForm`]), its fields, and the errors that mark
//! them ([`SettingsError`], all of a form's in [`SettingsErrors`]).

use super::{Mode, UrlError};
use crate::ids::{Field, InputError};
use crate::kinds::kinds;
use crate::zone::TimezoneError;
use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

/// The options page's fields, as typed. The page's element ids map one to one (see
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
    /// `in-flight`: queue mode's requests at once, 1 to 4; 0 (absent) means the default.
    pub in_flight: u8,
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
            .field("in_flight", &self.in_flight)
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
            in_flight: super::DEFAULT_IN_FLIGHT,
            ..SettingsForm::default()
        }
    }
}

/// What `{:?}` shows in place of a password.
pub(super) fn redacted(present: bool) -> &'static str {
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

impl crate::kinds::Kind for SettingsError {
    fn kind_name(&self) -> &'static str {
        self.kind()
    }
}

/// Every invalid field of a form, in the order of the page; never empty.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}", join(.0))]
pub struct SettingsErrors(pub(super) Vec<SettingsError>);

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
    pub(super) fn extend(
        mut self,
        more: impl IntoIterator<Item = SettingsError>,
    ) -> SettingsErrors {
        self.0.extend(more);
        self.0.sort_by_key(|e| e.field().rank());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_form_defaults() {
        let form = SettingsForm::initial("Europe/Vienna");
        assert_eq!(form.timezone, "Europe/Vienna");
        assert_eq!(form.mode, "queue");
        assert!(form.login_once);
        assert!(!form.remember_password);
        assert!(form.sounds, "sounds are on for a new desk");
    }
}
