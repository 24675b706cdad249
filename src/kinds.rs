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
    };
}

pub(crate) use kinds;
