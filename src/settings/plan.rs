//! What Save and "Test connection" do with a form: where the password goes, what is kept from
//! the previous settings, which fields are locked. Plans are values; the shell carries them out.

use super::{
    merge_managed, KohaUrl, ManagedSettings, Settings, SettingsError, SettingsErrors,
    SettingsField, SettingsForm,
};
use crate::ids::{Field, InputError};
use crate::kinds::kinds;
use crate::koha::Credentials;
use serde::Serialize;
use std::fmt;

/// The `browser.storage.session` key under which the options page keeps a password that is not
/// remembered (memory only: Firefox forgets it when it closes). The desk's send reads it from
/// there and may write it there after asking; "Forget credentials" removes it.
pub const SESSION_PASSWORD_KEY: &str = "koha-offline-circ:password";

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
