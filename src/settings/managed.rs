//! Values an admin presets through Firefox's enterprise policies (`storage.managed`): they
//! replace what was typed and lock their fields.

use super::{Settings, SettingsErrors, SettingsField, SettingsForm};
use serde::{Deserialize, Serialize};

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
