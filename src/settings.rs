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

pub mod connection;
mod form;
mod managed;
mod plan;
mod stored;
mod url;

pub use crate::koha::Mode;
pub use form::{SettingsError, SettingsErrors, SettingsField, SettingsForm};
pub use managed::{enforce_managed, merge_managed, Managed, ManagedSettings};
pub use plan::{
    forget_credentials, plan_save, plan_test, PasswordKept, SavePlan, SessionPassword,
    SESSION_PASSWORD_KEY,
};
pub use stored::{koha_zone_name, Settings};
pub use url::{KohaUrl, UrlError};

/// Queue mode's requests in flight at once when nothing else is set.
pub const DEFAULT_IN_FLIGHT: u8 = 3;
/// The most requests in flight at once the options page offers.
pub const MAX_IN_FLIGHT: u8 = 4;
