//! The automatic download: after a successful send or connection test the snapshot is downloaded
//! again once it is older than a setting, [`DEFAULT_AUTO_HOURS`] unless changed on the options
//! page. The first download is always the librarian's: without a stored snapshot nothing is
//! downloaded by itself (deleting the snapshot stops the automatic downloads too).

use super::model::Snapshot;
use crate::store::keys::{CHECKS_AUTO_KEY, CHECKS_VERSION};
use crate::store::Change;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

/// Hours after which a snapshot is downloaded again, when nothing else is set.
pub const DEFAULT_AUTO_HOURS: u32 = 24;

/// The longest age the setting takes: a year.
pub const AUTO_HOURS_MAX: u32 = 24 * 366;

/// How old a snapshot may get before it is downloaded again by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum AutoDownload {
    /// Never by itself (the setting is 0).
    Never,
    /// Once older than this many hours.
    After {
        /// Hours, from 1 to [`AUTO_HOURS_MAX`].
        hours: u32,
    },
}

impl Default for AutoDownload {
    fn default() -> Self {
        AutoDownload::After {
            hours: DEFAULT_AUTO_HOURS,
        }
    }
}

impl AutoDownload {
    /// As the options page shows it: the hours, `0` for never.
    pub fn hours(self) -> u32 {
        match self {
            AutoDownload::Never => 0,
            AutoDownload::After { hours } => hours,
        }
    }
}

/// Why the setting was refused; nothing is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("not a whole number of hours from 0 to {AUTO_HOURS_MAX}")]
pub struct AutoHoursError;

/// Reads the options page's field: a whole number of hours, 0 for never. Empty means the
/// default.
pub fn parse_auto_hours(text: &str) -> Result<AutoDownload, AutoHoursError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(AutoDownload::default());
    }
    match text.parse::<u32>() {
        Ok(0) => Ok(AutoDownload::Never),
        Ok(hours) if hours <= AUTO_HOURS_MAX => Ok(AutoDownload::After { hours }),
        _ => Err(AutoHoursError),
    }
}

#[derive(Serialize, Deserialize)]
struct StoredAuto {
    v: u64,
    hours: u32,
}

/// The stored form of the setting (under [`CHECKS_AUTO_KEY`]).
pub fn auto_download_change(setting: AutoDownload) -> Change {
    let stored = StoredAuto {
        v: CHECKS_VERSION,
        hours: setting.hours(),
    };
    Change::Put {
        key: CHECKS_AUTO_KEY.to_owned(),
        value: Value::String(serde_json::to_string(&stored).unwrap_or_default()),
    }
}

/// The stored setting; the default when absent or unreadable.
pub fn read_auto_download(value: Option<&Value>) -> AutoDownload {
    let stored = value
        .and_then(Value::as_str)
        .and_then(|text| serde_json::from_str::<StoredAuto>(text).ok())
        .filter(|stored| stored.v == CHECKS_VERSION);
    match stored {
        None => AutoDownload::default(),
        Some(StoredAuto { hours: 0, .. }) => AutoDownload::Never,
        Some(StoredAuto { hours, .. }) => AutoDownload::After {
            hours: hours.min(AUTO_HOURS_MAX),
        },
    }
}

/// Whether to download again by itself now: a snapshot is stored and is at least the setting's
/// hours old (or dated in the future: the desk's clock was wrong when it was taken).
pub fn auto_download_due(
    setting: AutoDownload,
    stored: Option<&Snapshot>,
    now: DateTime<Utc>,
) -> bool {
    let (AutoDownload::After { hours }, Some(snapshot)) = (setting, stored) else {
        return false;
    };
    let age = now - snapshot.taken_at();
    age >= Duration::hours(i64::from(hours)) || age < Duration::zero()
}
