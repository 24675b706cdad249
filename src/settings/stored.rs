//! The saved connection settings ([`Settings`]) and their storage form: always valid, and the
//! password written only when the user asked for it to be remembered.

use super::form::redacted;
use super::{KohaUrl, Mode, SettingsError, SettingsErrors, SettingsForm};
use crate::ids::{Branchcode, Userid};
use crate::zone::{TimezoneError, TimezoneName};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The name of Koha's time zone as set up, or before any setup the desk's own (`desk_zone`): the
/// zone of a `.koc` file's times and of the day Koha's dates are compared with.
pub fn koha_zone_name(settings: Option<&Settings>, desk_zone: impl FnOnce() -> String) -> String {
    settings.map_or_else(desk_zone, |s| s.timezone.as_str().to_owned())
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
    /// Koha's time zone: of a `.koc` file's times, and of the day the offline checks compare
    /// Koha's dates with.
    pub timezone: TimezoneName,
    /// Whether the desk plays sounds.
    pub sounds: bool,
    /// Log in once per send run and reuse that session where Koha allows it.
    pub login_once: bool,
    /// Queue mode: how many requests may be in flight at once (1 to 4; see
    /// [`crate::sync::run`]). Apply mode always sends one at a time.
    pub in_flight: u8,
    /// The way of talking to Koha found by the last connection test (a name defined by the koha
    /// module, e.g. `P1`), kept so a send run can start with it. Cleared when the server changes.
    pub detected_transport: Option<String>,
}

fn default_on() -> bool {
    true
}

fn default_in_flight() -> u8 {
    super::DEFAULT_IN_FLIGHT
}

/// 1 to 4 requests at once; 0 (not given) means the default.
fn in_flight_within_bounds(n: u8) -> u8 {
    match n {
        0 => super::DEFAULT_IN_FLIGHT,
        n => n.min(super::MAX_IN_FLIGHT),
    }
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
    #[serde(default = "default_in_flight")]
    in_flight: u8,
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
            in_flight: s.in_flight,
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
            in_flight: in_flight_within_bounds(s.in_flight),
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
            .field("in_flight", &self.in_flight)
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
                    in_flight: in_flight_within_bounds(form.in_flight),
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
            in_flight: self.in_flight,
        }
    }

    /// These settings with the transport a connection test of `server` found, when they are for
    /// that server (the transport is the server's, whoever logged in); `None` when they are not,
    /// or already have it: nothing to store.
    pub fn with_detected_transport(&self, server: &KohaUrl, transport: &str) -> Option<Settings> {
        if self.server != *server || self.detected_transport.as_deref() == Some(transport) {
            return None;
        }
        let mut updated = self.clone();
        updated.detected_transport = Some(transport.to_owned());
        Some(updated)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::SettingsField;

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

    fn valid_form() -> SettingsForm {
        SettingsForm {
            server: "https://koha.example.org/".into(),
            branchcode: "DE-627".into(),
            userid: "desk".into(),
            ..SettingsForm::initial("Europe/Berlin")
        }
    }

    #[test]
    fn unknown_zone_is_reported_with_the_other_errors_in_page_order() {
        let form = SettingsForm {
            server: "ftp://x".into(),
            timezone: "Mars/Olympus_Mons".into(),
            ..valid_form()
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
            ..valid_form()
        };
        let errors = Settings::from_form_checked(&only_zone, &|_| false).unwrap_err();
        assert_eq!(errors.fields(), vec![(SettingsField::Timezone, "unknown")]);
        // A malformed zone is reported once, by shape, without asking the browser.
        let bad = SettingsForm {
            timezone: "Berlin".into(),
            ..valid_form()
        };
        let errors = Settings::from_form_checked(&bad, &|_| panic!("not asked")).unwrap_err();
        assert_eq!(errors.fields(), vec![(SettingsField::Timezone, "shape")]);
        assert!(Settings::from_form_checked(&valid_form(), &|_| true).is_ok());
    }
}
