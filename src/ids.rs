//! Validated values typed at the desk: card numbers, barcodes, library codes, amounts.
//!
//! Each newtype has one constructor that trims and validates, so a value that exists is
//! acceptable to Koha's columns and can never corrupt a `.koc` line.

use crate::kinds::kinds;
use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

/// Koha's `items.barcode` and queue `barcode` column width.
pub const BARCODE_MAX: usize = 20;
/// Koha's `borrowers.cardnumber` and queue `cardnumber` column width.
pub const CARDNUMBER_MAX: usize = 32;
/// Koha's `branchcode` column width.
pub const BRANCHCODE_MAX: usize = 10;
/// Koha's queue `userid` column width.
pub const USERID_MAX: usize = 30;
/// Largest amount accepted at the desk, in cents (a guard against a scanner typing into the field).
pub const AMOUNT_MAX_CENTS: u64 = 100_000_000;

/// Why a typed value was refused. Each variant has a stable [`InputError::kind`] that the UI maps to
/// a translated message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InputError {
    /// Nothing left after trimming.
    #[error("{field} is empty")]
    Empty {
        /// Which field.
        field: Field,
    },
    /// A tab, line break or other control character (would corrupt a `.koc` line).
    #[error("{field} contains a control character")]
    ControlCharacter {
        /// Which field.
        field: Field,
    },
    /// Longer than Koha's column, which would silently cut it.
    #[error("{field} is longer than {max} characters")]
    TooLong {
        /// Which field.
        field: Field,
        /// The column width.
        max: usize,
    },
    /// Not a number with at most two decimals.
    #[error("amount is not a number with at most two decimals")]
    AmountFormat,
    /// Zero or negative.
    #[error("amount must be greater than zero")]
    AmountNotPositive,
    /// Above [`AMOUNT_MAX_CENTS`].
    #[error("amount is too large")]
    AmountTooLarge,
}

kinds!(InputError {
    Empty => "empty",
    ControlCharacter => "control-character",
    TooLong => "too-long",
    AmountFormat => "amount-format",
    AmountNotPositive => "amount-not-positive",
    AmountTooLarge => "amount-too-large",
});

impl InputError {
    /// The kinds a text field (card number, barcode, library code, user name) can have: the
    /// others are about amounts.
    pub const TEXT_KINDS: &'static [&'static str] = &["empty", "control-character", "too-long"];

    /// The field the error is about, if any.
    pub fn field(&self) -> Option<Field> {
        match self {
            InputError::Empty { field }
            | InputError::ControlCharacter { field }
            | InputError::TooLong { field, .. } => Some(*field),
            _ => Some(Field::Amount),
        }
    }
}

/// The fields the desk and the options page validate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Field {
    /// Item barcode.
    Barcode,
    /// Patron card number.
    Cardnumber,
    /// Library code.
    Branchcode,
    /// Koha user name.
    Userid,
    /// Payment amount.
    Amount,
}

kinds!(Field: name, NAMES {
    Barcode => "barcode",
    Cardnumber => "cardnumber",
    Branchcode => "branchcode",
    Userid => "userid",
    Amount => "amount",
});

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Trims outer whitespace, then refuses empty, control characters and over-long text.
fn checked_text(raw: &str, field: Field, max: usize) -> Result<String, InputError> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(InputError::Empty { field });
    }
    if text.chars().any(char::is_control) {
        return Err(InputError::ControlCharacter { field });
    }
    if text.chars().count() > max {
        return Err(InputError::TooLong { field, max });
    }
    Ok(text.to_owned())
}

/// Why typed text is not one clean token (a server address, a time zone name).
pub(crate) enum TokenFlaw {
    Empty,
    Space,
    ControlCharacter,
}

/// Trims, then refuses empty text, inner whitespace and control characters (checked in this
/// order, so each field reports the same first flaw).
pub(crate) fn single_token(raw: &str) -> Result<&str, TokenFlaw> {
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

/// Deserialises text straight from the input where the format allows (no `String` in
/// between): a desk opening 50,000 stored reads 150,000 of these.
pub(crate) fn deserialize_text<'de, D, T, F>(d: D, make: F) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    F: FnOnce(&str) -> Result<T, String>,
{
    struct Text<F>(F);
    impl<T, F: FnOnce(&str) -> Result<T, String>> serde::de::Visitor<'_> for Text<F> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<T, E> {
            (self.0)(text).map_err(E::custom)
        }
    }
    d.deserialize_str(Text(make))
}

macro_rules! text_newtype {
    ($(#[$doc:meta])* $name:ident, $field:expr, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Trims and validates; the only way to make one.
            pub fn parse(raw: &str) -> Result<Self, InputError> {
                checked_text(raw, $field, $max).map($name)
            }

            /// The validated text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        // Stored data goes through the same validation as typed data.
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                deserialize_text(d, |raw| $name::parse(raw).map_err(|e| e.to_string()))
            }
        }
    };
}

text_newtype!(
    /// An item barcode: 1 to 20 characters, no control characters.
    Barcode,
    Field::Barcode,
    BARCODE_MAX
);
text_newtype!(
    /// A patron card number: 1 to 32 characters, no control characters.
    Cardnumber,
    Field::Cardnumber,
    CARDNUMBER_MAX
);
text_newtype!(
    /// A Koha library code (for example an ISIL such as `DE-627`): 1 to 10 characters.
    Branchcode,
    Field::Branchcode,
    BRANCHCODE_MAX
);
text_newtype!(
    /// A Koha login name: 1 to 30 characters (the queue's `userid` column).
    Userid,
    Field::Userid,
    USERID_MAX
);

/// A positive amount of money in cents. Exact: never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Amount(u64);

impl Amount {
    /// Parses `12`, `12.5`, `12,50`: digits, optionally one `.` or `,` and one or two decimals.
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        let text = raw.trim();
        if text.is_empty() {
            return Err(InputError::Empty {
                field: Field::Amount,
            });
        }
        if text.starts_with('-') {
            return Err(InputError::AmountNotPositive);
        }
        let (whole, fraction) = match text.find(['.', ',']) {
            Some(at) => (&text[..at], &text[at + 1..]),
            None => (text, ""),
        };
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        let has_separator = whole.len() != text.len();
        if whole.is_empty()
            || !digits(whole)
            || !digits(fraction)
            || fraction.len() > 2
            || (has_separator && fraction.is_empty())
        {
            return Err(InputError::AmountFormat);
        }
        // Length bound first, so parsing cannot overflow.
        if whole.trim_start_matches('0').len() > 9 {
            return Err(InputError::AmountTooLarge);
        }
        let whole: u64 = whole.parse().map_err(|_| InputError::AmountFormat)?;
        let fraction: u64 = format!("{fraction:0<2}")
            .parse()
            .map_err(|_| InputError::AmountFormat)?;
        Self::from_cents(whole * 100 + fraction)
    }

    /// An amount from cents; refuses zero and amounts above [`AMOUNT_MAX_CENTS`].
    pub fn from_cents(cents: u64) -> Result<Self, InputError> {
        match cents {
            0 => Err(InputError::AmountNotPositive),
            c if c > AMOUNT_MAX_CENTS => Err(InputError::AmountTooLarge),
            c => Ok(Amount(c)),
        }
    }

    /// The amount in cents.
    pub fn cents(self) -> u64 {
        self.0
    }
}

/// Koha's form: `.` as the decimal separator and two decimals, e.g. `12.50`.
impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Amount::from_cents(u64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_and_checked() {
        assert_eq!(Barcode::parse("  3901234 \n").unwrap().as_str(), "3901234");
        assert_eq!(Barcode::parse(" ").unwrap_err().kind(), "empty");
        assert_eq!(
            Barcode::parse("39\t01").unwrap_err().kind(),
            "control-character"
        );
        assert_eq!(
            Barcode::parse(&"1".repeat(21)).unwrap_err(),
            InputError::TooLong {
                field: Field::Barcode,
                max: 20
            }
        );
        assert!(Barcode::parse(&"1".repeat(20)).is_ok());
        assert!(Cardnumber::parse(&"ä".repeat(32)).is_ok());
        assert_eq!(
            Cardnumber::parse(&"1".repeat(33)).unwrap_err().to_string(),
            "cardnumber is longer than 32 characters"
        );
        assert_eq!(
            Branchcode::parse("DE-627-XYZ1").unwrap_err().kind(),
            "too-long"
        );
    }

    #[test]
    fn amounts_are_exact() {
        let cases = [
            ("12", Ok(1200)),
            ("12.5", Ok(1250)),
            ("12,50", Ok(1250)),
            (" 0.01 ", Ok(1)),
            ("0", Err("amount-not-positive")),
            ("0,00", Err("amount-not-positive")),
            ("-3", Err("amount-not-positive")),
            ("1.234", Err("amount-format")),
            ("1.", Err("amount-format")),
            (".5", Err("amount-format")),
            ("1.2.3", Err("amount-format")),
            ("1 000", Err("amount-format")),
            ("abc", Err("amount-format")),
            ("", Err("empty")),
            ("1000001", Err("amount-too-large")),
            ("99999999999999999999999", Err("amount-too-large")),
        ];
        for (input, expected) in cases {
            let got = Amount::parse(input)
                .map(Amount::cents)
                .map_err(|e| e.kind());
            assert_eq!(got, expected, "input {input:?}");
        }
        assert_eq!(Amount::parse("7,5").unwrap().to_string(), "7.50");
    }
}
