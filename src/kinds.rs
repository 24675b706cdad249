//! Stable kinds: the machine-readable names of enum variants that the pages turn into i18n keys
//! (`error_<kind>`, `sendStopped_<kind>`, …).

/// Implements, from one table, the method naming each variant and a constant listing every
/// name. The method matches exhaustively, so a new variant does not compile until it has a name,
/// and then the list has it too: `tests/i18n_keys.rs` checks every name has its translations.
///
/// `kinds!(Type { Variant => "name", … })` gives `Type::kind()` and `Type::KINDS`;
/// `kinds!(Type: method, CONST { … })` names them.
macro_rules! kinds {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        $crate::kinds::kinds!($ty: kind, KINDS { $($variant => $name),+ });
    };
    ($ty:ident: $method:ident, $all:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            #[doc = concat!(
                "Every [`", stringify!($ty), "::", stringify!($method),
                "`], in declaration order (the pages build i18n keys from them)."
            )]
            pub const $all: &'static [&'static str] = &[$($name),+];

            /// The stable, machine-readable name of this value.
            pub fn $method(&self) -> &'static str {
                match self {
                    $(Self::$variant { .. } => $name),+
                }
            }
        }

        impl $crate::kinds::Kind for $ty {
            fn kind_name(&self) -> &'static str {
                self.$method()
            }
        }
    };
}

pub(crate) use kinds;

// Only the browser shell's DTOs use `Kind` and `AsKind`, and native builds have no shell.

/// A value with a stable kind: what the pages get in place of the value itself.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) trait Kind {
    /// The stable, machine-readable name of this value.
    fn kind_name(&self) -> &'static str;
}

/// A DTO field that holds the core's value and reaches the pages as its kind, a plain string
/// (`"wrong-credentials"`, `"rejected"`): the shell's DTOs stay typed while what crosses to JS
/// is exactly the kind the pages build i18n keys from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) struct AsKind<T>(pub T);

impl<T: Kind> serde::Serialize for AsKind<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.kind_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{ClockCheck, DateError};
    use crate::koha::{ConnectionProblem, Transport};
    use crate::sync::run::StopReason;
    use crate::sync::{NotReady, ResendQuestion};
    use crate::transaction::{Status, UncertainReason};
    use serde_json::json;

    fn wire<T: serde::Serialize>(value: T) -> serde_json::Value {
        serde_json::to_value(value).unwrap()
    }

    #[test]
    fn as_kind_is_the_kind_string() {
        let problem = ConnectionProblem::ServerError { http_status: 502 };
        assert_eq!(wire(AsKind(problem)), json!("server-error"));
        let missing = NotReady::Permission {
            origin: "https://koha.example.org/*".into(),
        };
        assert_eq!(wire(AsKind(missing)), json!("permission"));
        let rejected = Status::Rejected {
            message: "Item not found.".into(),
        };
        assert_eq!(wire(AsKind(rejected)), json!("rejected"));
        assert_eq!(
            wire(AsKind(UncertainReason::ConnectionLost)),
            json!("connection-lost")
        );
        let clock = ClockCheck::Unknown(DateError::Missing);
        assert_eq!(wire(AsKind(clock)), json!("unknown"));
        assert_eq!(
            wire(Some(AsKind(ConnectionProblem::NotFound))),
            json!("not-found")
        );
    }

    /// The DTOs put these in as they are: their serde names must be their kinds.
    #[test]
    fn serde_names_of_plain_enums_are_their_kinds() {
        for name in Transport::NAMES {
            let transport: Transport = serde_json::from_value(json!(name)).unwrap();
            assert_eq!(wire(transport), json!(transport.name()));
        }
        for name in StopReason::KINDS {
            let reason: StopReason = serde_json::from_value(json!(name)).unwrap();
            assert_eq!(wire(reason), json!(reason.kind()));
        }
        for question in [
            ResendQuestion::ResendUncertain,
            ResendQuestion::ResendPayment,
        ] {
            assert_eq!(wire(question), json!(question.kind()));
        }
    }
}
