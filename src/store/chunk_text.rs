//! Reads an archive chunk's JSON text (see [`super::archive`]) straight into transactions.
//!
//! Through serde, reading the chunks was most of a desk's start with 50,000 stored: every value
//! went through a visitor, every row into an intermediate tuple and its history into a vector
//! of its own. This reader walks the text once and builds each transaction as it goes.
//!
//! It accepts exactly what serde_json reading the chunk's types accepted, and refuses the rest:
//! a chunk as an object (unknown fields skipped, a field twice refused) or as the array of its
//! two fields, as serde reads any struct; a status or action name as a string or as
//! `{"name": null}`; numbers only as integers (serde_json reads a fraction, an exponent, `-0` or
//! anything beyond `u64` as a float, which no field takes); strings with every JSON escape,
//! surrogates paired. The tests compare it with the serde reader on damaged and random text.

use super::archive::{ActionName, ChunkSummary, StatusName};
use crate::ids::{Amount, Barcode, Branchcode, Cardnumber, InputError};
use crate::transaction::{StatusChange, Transaction, TransactionId};
use crate::zone::parse_rfc3339;
use chrono::{DateTime, Utc};
use std::borrow::Cow;

/// A chunk's text, read.
pub(super) struct ChunkText {
    /// The format version, not yet checked.
    pub version: u64,
    /// The transactions, or why the first row that does not make one (its fields do not fit
    /// its action, a status without its detail) does not: checked after the version, as the
    /// serde reader did.
    pub transactions: Result<Vec<Transaction>, String>,
}

/// Reads a chunk's JSON text; an error names the first flaw in the JSON or in a field's type or
/// value (a barcode the desk would refuse, a time out of range).
pub(super) fn read_chunk(text: &str) -> Result<ChunkText, String> {
    let mut reader = Reader {
        text,
        at: 0,
        steps: Vec::new(),
    };
    let chunk = reader.chunk()?;
    match reader.peek() {
        None => Ok(chunk),
        Some(_) => Err(reader.error("trailing characters")),
    }
}

/// The summary at the start of a chunk's text, as [`super::archive::encode_chunk`] writes it
/// (`{"sum":[queued,applied,"first","last",newest],...`), without reading further; `None` when
/// the text does not start so. Whether the rest is readable is only known when it is read.
pub(super) fn read_summary(text: &str) -> Option<ChunkSummary> {
    let mut reader = Reader {
        text,
        at: 0,
        steps: Vec::new(),
    };
    reader.summary().ok()
}

/// A flaw in the JSON or a field: the chunk is unreadable.
type Read<T> = Result<T, String>;

struct Reader<'a> {
    text: &'a str,
    /// Byte offset of the next byte to read.
    at: usize,
    /// One row's history while it is read, reused from row to row, so each history is
    /// allocated once, at its size.
    steps: Vec<StatusChange>,
}

impl<'a> Reader<'a> {
    fn error(&self, what: &str) -> String {
        format!("{what} at byte {}", self.at)
    }

    fn byte(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    // `peek` and `eat` run for every value of every row: the shipped build is optimised for
    // size and inlines next to nothing by itself, so they are inlined by attribute (`eat` only
    // its check of the next byte: chunks have no whitespace) and the loops below walk the
    // bytes themselves instead of calling `byte`. Natively at that level, 98 chunks read in
    // 30 ms instead of 35 ms, for 2.9 KB more .wasm.

    /// The next byte that is not JSON whitespace, not consumed.
    #[inline(always)]
    fn peek(&mut self) -> Option<u8> {
        let bytes = self.text.as_bytes();
        let mut at = self.at;
        while at < bytes.len() && matches!(bytes[at], b' ' | b'\n' | b'\t' | b'\r') {
            at += 1;
        }
        self.at = at;
        bytes.get(at).copied()
    }

    #[inline(always)]
    fn eat(&mut self, byte: u8) -> Read<()> {
        if self.text.as_bytes().get(self.at) == Some(&byte) {
            self.at += 1;
            Ok(())
        } else {
            self.eat_spaced(byte)
        }
    }

    /// `eat` after whitespace.
    fn eat_spaced(&mut self, byte: u8) -> Read<()> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected `{}`", char::from(byte))))
        }
    }

    fn literal(&mut self, word: &str) -> Read<()> {
        let rest = &self.text.as_bytes()[self.at..];
        if rest.len() >= word.len() && word.bytes().zip(rest).all(|(a, &b)| a == b) {
            self.at += word.len();
            Ok(())
        } else {
            Err(self.error(&format!("expected `{word}`")))
        }
    }

    /// `{"v": …, "txs": […]}`, or `[v, […]]`.
    fn chunk(&mut self) -> Read<ChunkText> {
        match self.peek() {
            Some(b'{') => {
                self.at += 1;
                let (mut version, mut transactions) = (None, None);
                if self.peek() == Some(b'}') {
                    self.at += 1;
                } else {
                    loop {
                        let key = self.string()?;
                        self.eat(b':')?;
                        match &*key {
                            "v" if version.is_none() => version = Some(self.unsigned()?),
                            "txs" if transactions.is_none() => transactions = Some(self.rows()?),
                            "v" | "txs" => return Err(self.error(&format!("`{key}` twice"))),
                            _ => self.skip_value()?,
                        }
                        if self.comma_or(b'}')? {
                            break;
                        }
                    }
                }
                match (version, transactions) {
                    (Some(version), Some(transactions)) => Ok(ChunkText {
                        version,
                        transactions,
                    }),
                    (None, _) => Err(self.error("missing field `v`")),
                    (_, None) => Err(self.error("missing field `txs`")),
                }
            }
            Some(b'[') => {
                self.at += 1;
                let version = self.unsigned()?;
                self.eat(b',')?;
                let transactions = self.rows()?;
                self.eat(b']')?;
                Ok(ChunkText {
                    version,
                    transactions,
                })
            }
            _ => Err(self.error("expected a chunk")),
        }
    }

    fn summary(&mut self) -> Read<ChunkSummary> {
        self.eat(b'{')?;
        if self.string()? != "sum" {
            return Err(self.error("no summary"));
        }
        self.eat(b':')?;
        self.eat(b'[')?;
        let mut count = || -> Read<usize> {
            let n = self.unsigned()?;
            self.eat(b',')?;
            usize::try_from(n).map_err(|_| self.error("count out of range"))
        };
        let queued = count()?;
        let applied = count()?;
        let first = TransactionId::from_stored(&self.string()?);
        self.eat(b',')?;
        let last = TransactionId::from_stored(&self.string()?);
        self.eat(b',')?;
        let newest = self.time()?;
        self.eat(b']')?;
        Ok(ChunkSummary {
            queued,
            applied,
            first,
            last,
            newest,
        })
    }

    /// After an element: `true` at the end (`close`, consumed), `false` after a comma.
    fn comma_or(&mut self, close: u8) -> Read<bool> {
        match self.peek() {
            Some(b',') => {
                self.at += 1;
                Ok(false)
            }
            Some(byte) if byte == close => {
                self.at += 1;
                Ok(true)
            }
            _ => Err(self.error(&format!("expected `,` or `{}`", char::from(close)))),
        }
    }

    /// An array of any length, each element read by `element`.
    fn array(&mut self, mut element: impl FnMut(&mut Self) -> Read<()>) -> Read<()> {
        self.eat(b'[')?;
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(());
        }
        loop {
            element(self)?;
            if self.comma_or(b']')? {
                return Ok(());
            }
        }
    }

    fn rows(&mut self) -> Read<Result<Vec<Transaction>, String>> {
        let mut transactions = Ok(Vec::new());
        self.array(|reader| {
            match reader.row()? {
                Ok(tx) => {
                    if let Ok(list) = &mut transactions {
                        list.push(tx);
                    }
                }
                Err(reason) if transactions.is_ok() => transactions = Err(reason),
                Err(_) => {}
            }
            Ok(())
        })?;
        Ok(transactions)
    }

    /// `[id, recorded_at, branchcode, action, cardnumber, barcode, amount, history,
    /// exported_at]`: an error for a flaw in the JSON or a field, `Ok(Err(…))` for fields that
    /// do not fit together.
    fn row(&mut self) -> Read<Result<Transaction, String>> {
        self.eat(b'[')?;
        let id = TransactionId::from_stored(&self.string()?);
        self.eat(b',')?;
        let recorded_at = self.time()?;
        self.eat(b',')?;
        let branchcode = self.text(Branchcode::parse)?;
        self.eat(b',')?;
        let action = self.name(ActionName::from_name)?;
        self.eat(b',')?;
        let cardnumber = self.optional(|r| r.text(Cardnumber::parse))?;
        self.eat(b',')?;
        let barcode = self.optional(|r| r.text(Barcode::parse))?;
        self.eat(b',')?;
        let amount = self.optional(Reader::amount)?;
        self.eat(b',')?;
        let all_steps_fit = self.history()?;
        self.eat(b',')?;
        let exported_at = self.optional(Reader::time)?;
        self.eat(b']')?;
        let history: Vec<StatusChange> = self.steps.drain(..).collect();
        // In the serde reader's order, so a row with several flaws is refused for the same one.
        let Some(action) = action.with(cardnumber, barcode, amount) else {
            return Ok(Err(format!("{id}: fields do not fit the action")));
        };
        if !all_steps_fit {
            return Ok(Err(format!(
                "{id}: a status without its detail, or the reverse"
            )));
        }
        Ok(Transaction::from_parts(
            id.clone(),
            recorded_at,
            branchcode,
            action,
            history,
            exported_at,
        )
        .ok_or_else(|| format!("{id}: empty status history")))
    }

    /// `[[at, status, detail], ...]` into `self.steps`; `false` when a status's detail does not
    /// fit it (that step is left out: the row is refused).
    fn history(&mut self) -> Read<bool> {
        self.steps.clear();
        let mut all_fit = true;
        self.array(|reader| {
            reader.eat(b'[')?;
            let at = reader.time()?;
            reader.eat(b',')?;
            let name = reader.name(StatusName::from_name)?;
            reader.eat(b',')?;
            let detail = reader.optional(Reader::string)?;
            reader.eat(b']')?;
            match name.with(detail.as_deref()) {
                Some(status) => reader.steps.push(StatusChange { at, status }),
                None => all_fit = false,
            }
            Ok(())
        })?;
        Ok(all_fit)
    }

    /// `null`, or what `read` reads.
    fn optional<T>(&mut self, read: impl FnOnce(&mut Self) -> Read<T>) -> Read<Option<T>> {
        if self.peek() == Some(b'n') {
            self.literal("null").map(|()| None)
        } else {
            read(self).map(Some)
        }
    }

    /// A unit variant: `"name"`, or `{"name": null}` as serde_json also reads one.
    fn name<T>(&mut self, from_name: fn(&str) -> Option<T>) -> Read<T> {
        let braced = self.peek() == Some(b'{');
        if braced {
            self.at += 1;
        }
        let name = self.string()?;
        let Some(variant) = from_name(&name) else {
            return Err(self.error(&format!("unknown name `{name}`")));
        };
        if braced {
            self.eat(b':')?;
            self.peek();
            self.literal("null")?;
            self.eat(b'}')?;
        }
        Ok(variant)
    }

    /// A string checked as the desk checks typed text.
    fn text<T>(&mut self, parse: fn(&str) -> Result<T, InputError>) -> Read<T> {
        let raw = self.string()?;
        parse(&raw).map_err(|e| self.error(&e.to_string()))
    }

    fn amount(&mut self) -> Read<Amount> {
        let cents = self.unsigned()?;
        Amount::from_cents(cents).map_err(|e| self.error(&e.to_string()))
    }

    /// Milliseconds since 1970, or RFC 3339 text.
    fn time(&mut self) -> Read<DateTime<Utc>> {
        if self.peek() == Some(b'"') {
            let text = self.string()?;
            return parse_rfc3339(&text).ok_or_else(|| self.error("not an RFC 3339 date and time"));
        }
        let (negative, magnitude) = self.integer()?;
        let millis = match (negative, magnitude) {
            // `-0` is a float to serde_json.
            (true, 0) => None,
            (true, magnitude) => 0i64.checked_sub_unsigned(magnitude),
            (false, magnitude) => i64::try_from(magnitude).ok(),
        };
        millis
            .and_then(DateTime::from_timestamp_millis)
            .ok_or_else(|| self.error("time out of range"))
    }

    fn unsigned(&mut self) -> Read<u64> {
        match self.integer()? {
            (false, n) => Ok(n),
            (true, _) => Err(self.error("expected a number of at least 0")),
        }
    }

    /// An integer as its sign and magnitude. A fraction, an exponent or more than `u64` holds
    /// is refused: serde_json reads those as floats, which no field of a chunk takes.
    fn integer(&mut self) -> Read<(bool, u64)> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at += 1;
        }
        let bytes = self.text.as_bytes();
        let start = self.at;
        let mut at = start;
        let mut magnitude = 0u64;
        while at < bytes.len() && bytes[at].is_ascii_digit() {
            magnitude = magnitude
                .wrapping_mul(10)
                .wrapping_add(u64::from(bytes[at] - b'0'));
            at += 1;
        }
        self.at = at;
        let digits = at - start;
        if digits == 0
            || (digits > 1 && bytes[start] == b'0')
            || matches!(bytes.get(at), Some(b'.' | b'e' | b'E'))
        {
            return Err(self.error("expected an integer"));
        }
        // 19 digits always fit in a u64; longer ones may have wrapped.
        if digits > 19 {
            magnitude = self.text[start..at]
                .parse()
                .map_err(|_| self.error("integer too large"))?;
        }
        Ok((negative, magnitude))
    }

    /// A string, unescaped; borrowed from the text when it has no escapes (nearly always).
    fn string(&mut self) -> Read<Cow<'a, str>> {
        if self.peek() != Some(b'"') {
            return Err(self.error("expected a string"));
        }
        let bytes = self.text.as_bytes();
        let start = self.at + 1;
        let mut at = start;
        while at < bytes.len() && !matches!(bytes[at], b'"' | b'\\' | 0..=0x1f) {
            at += 1;
        }
        self.at = at;
        match bytes.get(at) {
            Some(b'"') => {
                self.at += 1;
                Ok(Cow::Borrowed(&self.text[start..at]))
            }
            Some(b'\\') => self.escaped(start).map(Cow::Owned),
            Some(_) => Err(self.error("control character in a string")),
            None => Err(self.error("unterminated string")),
        }
    }

    /// The rest of a string that has escapes, from `start` (after its opening quote); `self.at`
    /// is at the first backslash.
    #[cold]
    fn escaped(&mut self, start: usize) -> Read<String> {
        let mut out = String::from(&self.text[start..self.at]);
        loop {
            let plain = self.at;
            while self
                .byte()
                .is_some_and(|b| !matches!(b, b'"' | b'\\' | 0..=0x1f))
            {
                self.at += 1;
            }
            // Stopped at an ASCII byte, so at a character boundary.
            out.push_str(&self.text[plain..self.at]);
            match self.byte() {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.at += 1;
                    out.push(self.escape()?);
                }
                Some(_) => return Err(self.error("control character in a string")),
                None => return Err(self.error("unterminated string")),
            }
        }
    }

    /// The character an escape stands for, after its backslash. A surrogate must be the first
    /// of a pair, directly followed by the second.
    fn escape(&mut self) -> Read<char> {
        let byte = self.byte();
        self.at += 1;
        let simple = match byte {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let first = self.hex4()?;
                let code = match first {
                    0xD800..=0xDBFF => {
                        if !self.text[self.at..].starts_with("\\u") {
                            return Err(self.error("unpaired surrogate"));
                        }
                        self.at += 2;
                        let second = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&second) {
                            return Err(self.error("unpaired surrogate"));
                        }
                        0x1_0000
                            + ((u32::from(first) - 0xD800) << 10)
                            + (u32::from(second) - 0xDC00)
                    }
                    code => u32::from(code),
                };
                return char::from_u32(code).ok_or_else(|| self.error("unpaired surrogate"));
            }
            _ => return Err(self.error("invalid escape")),
        };
        Ok(simple)
    }

    /// The four hex digits of a `\u` escape.
    fn hex4(&mut self) -> Read<u16> {
        let digits = self
            .text
            .as_bytes()
            .get(self.at..self.at + 4)
            .ok_or_else(|| self.error("unterminated string"))?;
        let mut code = 0u16;
        for &digit in digits {
            let value = char::from(digit)
                .to_digit(16)
                .ok_or_else(|| self.error("invalid escape"))?;
            code = code * 16 + value as u16;
        }
        self.at += 4;
        Ok(code)
    }

    /// Skips the value of a field this version does not know, checking only that it is JSON
    /// (strings' escapes by their form: serde_json does not pair surrogates it skips). A loop,
    /// not recursion, so nesting of any depth cannot overflow the stack.
    fn skip_value(&mut self) -> Read<()> {
        // The closing brackets of the arrays and objects open around the next value.
        let mut open: Vec<u8> = Vec::new();
        loop {
            match self.peek() {
                Some(b'[') => {
                    self.at += 1;
                    if self.peek() != Some(b']') {
                        open.push(b']');
                        continue;
                    }
                    self.at += 1;
                }
                Some(b'{') => {
                    self.at += 1;
                    if self.peek() != Some(b'}') {
                        open.push(b'}');
                        self.skip_key()?;
                        continue;
                    }
                    self.at += 1;
                }
                Some(b'"') => self.skip_string()?,
                Some(b'n') => self.literal("null")?,
                Some(b't') => self.literal("true")?,
                Some(b'f') => self.literal("false")?,
                Some(b'-' | b'0'..=b'9') => self.skip_number()?,
                _ => return Err(self.error("expected a value")),
            }
            // After a value: close what ends here, up to the next element.
            loop {
                let Some(&close) = open.last() else {
                    return Ok(());
                };
                if !self.comma_or(close)? {
                    if close == b'}' {
                        self.skip_key()?;
                    }
                    break;
                }
                open.pop();
            }
        }
    }

    fn skip_key(&mut self) -> Read<()> {
        self.skip_string()?;
        self.eat(b':')
    }

    fn skip_string(&mut self) -> Read<()> {
        self.eat(b'"')?;
        loop {
            match self.byte() {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.at += 1;
                    let byte = self.byte();
                    self.at += 1;
                    match byte {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {}
                        Some(b'u') => {
                            self.hex4()?;
                        }
                        _ => return Err(self.error("invalid escape")),
                    }
                }
                Some(0..=0x1f) => return Err(self.error("control character in a string")),
                Some(_) => self.at += 1,
                None => return Err(self.error("unterminated string")),
            }
        }
    }

    /// A number of any form JSON allows.
    fn skip_number(&mut self) -> Read<()> {
        let digits = |reader: &mut Self| {
            let start = reader.at;
            while reader.byte().is_some_and(|b| b.is_ascii_digit()) {
                reader.at += 1;
            }
            reader.at - start
        };
        if self.byte() == Some(b'-') {
            self.at += 1;
        }
        let leading_zero = self.byte() == Some(b'0');
        let whole = digits(self);
        if whole == 0 || (leading_zero && whole > 1) {
            return Err(self.error("invalid number"));
        }
        if self.byte() == Some(b'.') {
            self.at += 1;
            if digits(self) == 0 {
                return Err(self.error("invalid number"));
            }
        }
        if matches!(self.byte(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.byte(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if digits(self) == 0 {
                return Err(self.error("invalid number"));
            }
        }
        Ok(())
    }
}

// proptest is a native dev-dependency only.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is a failure with a message

    use super::read_summary;
    use crate::store::archive::{decode_chunk, decode_chunk_serde, encode_chunk, ChunkSummary};
    use crate::store::StoreError;
    use crate::transaction::{
        Action, FailReason, Status, StatusChange, Transaction, TransactionId, UncertainReason,
    };
    use crate::{Amount, Barcode, Branchcode, Cardnumber};
    use chrono::{DateTime, TimeDelta, Utc};
    use proptest::prelude::*;
    use serde_json::Value;

    fn read(text: &str) -> Result<Vec<Transaction>, StoreError> {
        decode_chunk("archive:x", &Value::String(text.to_owned()))
    }

    /// Reads `text` with both readers: they must agree on whether it is readable, on what it
    /// holds, on the error's kind (and version), and on the reason for a row whose fields do
    /// not fit (the reasons for flaws in the JSON differ: serde_json names line and column).
    fn agree(text: &str) -> Result<Result<Vec<Transaction>, StoreError>, String> {
        let value = Value::String(text.to_owned());
        let new = decode_chunk("archive:x", &value);
        let old = decode_chunk_serde("archive:x", &value);
        let same = match (&new, &old) {
            (Ok(a), Ok(b)) => a == b,
            (
                Err(StoreError::Corrupt { reason: a, .. }),
                Err(StoreError::Corrupt { reason: b, .. }),
            ) => b.contains(" at line ") || a == b,
            (Err(a), Err(b)) => a == b,
            _ => false,
        };
        if same {
            Ok(new)
        } else {
            Err(format!("{text:?}\n  read:  {new:?}\n  serde: {old:?}"))
        }
    }

    fn ms(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ms).unwrap()
    }

    /// Every action and status, a time finer than milliseconds, an export mark, and text that
    /// needs escapes.
    fn varied() -> Vec<Transaction> {
        let at = ms(1_774_771_200_000);
        let fine = at + TimeDelta::nanoseconds(123_456);
        let step = |at, status| StatusChange { at, status };
        let tx = |id: &str, recorded_at, action, history, exported_at| {
            Transaction::from_parts(
                TransactionId::from_stored(id),
                recorded_at,
                Branchcode::parse("DE-627").unwrap(),
                action,
                history,
                exported_at,
            )
            .unwrap()
        };
        vec![
            tx(
                "019d3a5b2c000-00000000000000a1",
                at,
                Action::Issue {
                    cardnumber: Cardnumber::parse("P0001").unwrap(),
                    barcode: Barcode::parse("39001").unwrap(),
                },
                vec![
                    step(at, Status::Local),
                    step(at, Status::Sending),
                    step(at, Status::Applied),
                ],
                Some(at + TimeDelta::milliseconds(1)),
            ),
            tx(
                "id \"q\" \\ é",
                fine,
                Action::Return {
                    barcode: Barcode::parse("B\u{e9} 1").unwrap(),
                },
                vec![
                    step(fine, Status::Local),
                    step(at, Status::Sending),
                    step(
                        at,
                        Status::Failed {
                            reason: FailReason::Network,
                        },
                    ),
                    step(at, Status::Sending),
                    step(
                        at,
                        Status::Uncertain {
                            reason: UncertainReason::Timeout,
                        },
                    ),
                    step(at, Status::Queued),
                ],
                None,
            ),
            tx(
                "019d3a5b2c000-00000000000000a3",
                ms(-1),
                Action::Payment {
                    cardnumber: Cardnumber::parse("C\u{1F600}").unwrap(),
                    amount: Amount::from_cents(150).unwrap(),
                },
                vec![step(
                    ms(0),
                    Status::Rejected {
                        message: "Borrower \"x\" not found\\\n\t\u{1}\u{7f}\u{2028}".to_owned(),
                    },
                )],
                None,
            ),
        ]
    }

    /// Chunks serde reads in forms the writer never uses: the chunk as an array, names as
    /// `{"name": null}`, escaped keys and text, unknown fields, whitespace everywhere, times as
    /// text.
    const HAND_WRITTEN: [&str; 3] = [
        r#"[1,[["a",0,"B",{"return":null},null,"X",null,[[-1,{ "applied" : null },null]],"2026-03-29T08:00:00.5Z"]]]"#,
        r#"{"x":[{"a":[1,-2.5e-3,true,false,null,"\ud800 \" \\"]}],"v":1,"t\u0078s":[["\u0041\ud83d\ude00",1000,"  DE-627 ","payment","C\u00e9",null,150,[[1000,"rejected","x\"y\\z\/\b\f\n\r\t"]],null]],"y":{}}"#,
        " { \"v\" : 1 ,\n\t\"txs\" : [ [ \"a\" , 1000 , \"B\" , \"issue\" , \"C\" , \"D\" , null , [ [ \"2026-03-29T08:00:00Z\" , \"local\" , null ] ] , null ] ] } \r\n",
    ];

    /// The accepted ones of [`varied`]: their chunk starts with a summary.
    fn accepted() -> Vec<Transaction> {
        varied()
            .into_iter()
            .filter(|tx| tx.status().is_accepted())
            .collect()
    }

    fn bases() -> Vec<String> {
        let summarized = encode_chunk(&accepted());
        assert!(summarized.starts_with("{\"sum\":["), "{summarized}");
        let mut all = vec![encode_chunk(&varied()), summarized];
        all.extend(HAND_WRITTEN.map(str::to_owned));
        all
    }

    /// What damage inserts: JSON's punctuation, escapes, numbers at the edges of each field's
    /// range, names, and whitespace JSON does not allow.
    const SNIPPETS: &[&str] = &[
        "\"",
        "\\",
        "\\u",
        "\\ud800",
        "\\udc00",
        "\\u00e9",
        "\\x",
        ",",
        ":",
        "[",
        "]",
        "{",
        "}",
        "[]",
        "{}",
        "null",
        "true",
        "-",
        "-0",
        "0",
        "01",
        "1.5",
        "1e3",
        " ",
        "\n",
        "\u{b}",
        "\u{a0}",
        "\u{1}",
        "é",
        "\"x\"",
        "\"x\":1,",
        ",\"x\":1",
        "{\"issue\":null}",
        "\"issue\"",
        "\"rejected\"",
        "\"failed\"",
        "\"network\"",
        "\"v\":2,",
        "\"txs\":[],",
        "2",
        "100000001",
        "18446744073709551615",
        "18446744073709551616",
        "9223372036854775808",
        "-9223372036854775808",
        "8640000000000000",
        "\"2026-03-29T08:00:00Z\"",
    ];

    fn boundaries(text: &str) -> impl Iterator<Item = usize> + '_ {
        (0..=text.len()).filter(|&i| text.is_char_boundary(i))
    }

    #[test]
    fn the_bases_are_read_as_serde_reads_them() {
        for text in bases() {
            let read = agree(&text).unwrap();
            assert!(read.is_ok_and(|txs| !txs.is_empty()), "{text}");
        }
        assert_eq!(read(&encode_chunk(&varied())).unwrap(), varied());
    }

    /// Every cut, every character removed and every snippet inserted anywhere: read as serde
    /// reads it.
    #[test]
    fn every_small_damage_is_read_as_serde_reads_it() {
        let (mut readable, mut refused) = (0, 0);
        for base in bases() {
            for at in boundaries(&base) {
                let mut texts = vec![base[..at].to_owned()];
                if let Some(c) = base[at..].chars().next() {
                    texts.push(format!("{}{}", &base[..at], &base[at + c.len_utf8()..]));
                }
                for snippet in SNIPPETS {
                    texts.push(format!("{}{snippet}{}", &base[..at], &base[at..]));
                }
                for text in texts {
                    match agree(&text).unwrap() {
                        Ok(_) => readable += 1,
                        Err(_) => refused += 1,
                    }
                }
            }
        }
        // Both outcomes are common: the comparison covers each.
        assert!(
            readable > 1_000 && refused > 10_000,
            "{readable} read, {refused} refused"
        );
    }

    #[test]
    fn escapes_are_read_and_lone_surrogates_refused() {
        let row = |message: &str| {
            format!(
                r#"{{"v":1,"txs":[["a",0,"B","return",null,"X",null,[[0,"rejected","{message}"]],null]]}}"#
            )
        };
        let message = |text: &str| {
            let txs = agree(text).unwrap().unwrap();
            txs[0].status().detail().unwrap().to_owned()
        };
        assert_eq!(message(&row(r#"a\"b\\c\/"#)), "a\"b\\c/");
        assert_eq!(message(&row(r"\b\f\n\r\t")), "\u{8}\u{c}\n\r\t");
        assert_eq!(message(&row(r"caf\u00e9 \u00E9")), "café é");
        assert_eq!(message(&row(r"\ud83d\ude00 \uD83D\uDE00")), "😀 😀");
        assert_eq!(message(&row(r"\u0000")), "\u{0}");
        for bad in [
            r"\ud83d",
            r"\ude00",
            r"\ud83d\u0041",
            r"\ud83dx",
            r"\ud83d\ud83d",
            r"\x",
            r"\u12",
            r"\u12g4",
            "tab\there",
        ] {
            let error = agree(&row(bad)).unwrap().unwrap_err();
            assert_eq!(error.kind(), "corrupt", "{bad}");
        }
        // In a field that is skipped, serde_json checks an escape's form only.
        assert!(agree(r#"{"x":"\ud800","v":1,"txs":[]}"#).unwrap().is_ok());
        // Escaped names and keys are names and keys.
        let escaped = r#"{"\u0076":1,"txs":[["\u0061",0,"\u0042","ret\u0075rn",null,"X",null,[[0,"appl\u0069ed",null]],null]]}"#;
        let txs = agree(escaped).unwrap().unwrap();
        assert_eq!(txs[0].id.as_str(), "a");
        assert_eq!(txs[0].status(), &Status::Applied);
    }

    #[test]
    fn whitespace_is_read_between_tokens_only() {
        let compact =
            r#"{"v":1,"txs":[["a",0,"B","return",null,"X",null,[[0,"applied",null]],null]]}"#;
        let want = agree(compact).unwrap().unwrap();
        let mut spaced = String::from(" \t\n\r");
        for c in compact.chars() {
            spaced.push(c);
            if !c.is_alphanumeric() && c != '"' {
                spaced.push_str(" \r\n\t");
            }
        }
        // Inside strings, added spaces would change the text: the quotes above are left alone,
        // so no string gained any.
        assert_eq!(agree(&spaced).unwrap().unwrap(), want);
        for other in ["\u{b}", "\u{c}", "\u{a0}", "\u{2028}", "\u{feff}"] {
            let text = format!("{other}{compact}");
            assert_eq!(agree(&text).unwrap().unwrap_err().kind(), "corrupt");
        }
        assert_eq!(
            agree(&format!("{compact} x")).unwrap().unwrap_err().kind(),
            "corrupt"
        );
    }

    #[test]
    fn another_version_is_unknown_unless_the_rest_is_malformed() {
        let chunk = |v: &str, barcode: &str, status: &str| {
            format!(
                r#"{{"v":{v},"txs":[["a",0,"B","return",null,"{barcode}",null,[[0,"{status}",null]],null]]}}"#
            )
        };
        let unknown = agree(&chunk("2", "X", "applied")).unwrap().unwrap_err();
        assert_eq!(
            unknown,
            StoreError::UnknownEnvelope {
                key: "archive:x".into(),
                version: 2
            }
        );
        // A status without its detail is checked after the version, a barcode the desk would
        // refuse while reading.
        let misfit = agree(&chunk("0", "X", "rejected")).unwrap().unwrap_err();
        assert_eq!(misfit.kind(), "unknown-envelope");
        let misfit = agree(&chunk("1", "X", "rejected")).unwrap().unwrap_err();
        assert_eq!(
            misfit,
            StoreError::Corrupt {
                key: "archive:x".into(),
                reason: "a: a status without its detail, or the reverse".into()
            }
        );
        let bad_barcode = agree(&chunk("2", " ", "applied")).unwrap().unwrap_err();
        assert_eq!(bad_barcode.kind(), "corrupt");
        let max = agree(&chunk("18446744073709551615", "X", "applied"))
            .unwrap()
            .unwrap_err();
        assert_eq!(max.kind(), "unknown-envelope");
        for v in [
            "-1",
            "-0",
            "1.0",
            "1e0",
            "\"1\"",
            "null",
            "18446744073709551616",
        ] {
            let error = agree(&chunk(v, "X", "applied")).unwrap().unwrap_err();
            assert_eq!(error.kind(), "corrupt", "{v}");
        }
        for missing in [r#"{"txs":[]}"#, r#"{"v":1}"#, "{}", "[1]", "[]"] {
            assert_eq!(agree(missing).unwrap().unwrap_err().kind(), "corrupt");
        }
    }

    #[test]
    fn truncated_text_is_corrupt() {
        let text = encode_chunk(&varied());
        for at in boundaries(&text).filter(|&at| at < text.len()) {
            let error = agree(&text[..at]).unwrap().unwrap_err();
            assert_eq!(error.kind(), "corrupt", "cut at {at}");
        }
    }

    #[test]
    fn unknown_fields_are_skipped_and_known_ones_twice_refused() {
        let txs = r#"[["a",0,"B","return",null,"X",null,[[0,"applied",null]],null]]"#;
        for extra in [
            r#""x":null"#,
            r#""x":[1,-2.5e-3,0.0E+1,true,false,{"a":{"b":[]}},"s\n"]"#,
            r#""":{}"#,
            r#""x" : [ ] "#,
        ] {
            let text = format!(r#"{{{extra},"v":1,"txs":{txs},{extra}}}"#);
            assert_eq!(agree(&text).unwrap().unwrap().len(), 1, "{text}");
        }
        // Nesting deeper than any recursion could follow: serde_json skips it in a loop too.
        let deep = format!(
            r#"{{"v":1,"x":{}1{},"txs":[]}}"#,
            "[{\"a\":".repeat(100_000),
            "}]".repeat(100_000)
        );
        assert!(agree(&deep).unwrap().unwrap().is_empty());
        for bad in [
            r#""x":01"#,
            r#""x":1."#,
            r#""x":-"#,
            r#""x":[1,]"#,
            r#""x":{"a":1,}"#,
            r#""x":{"a"}"#,
            r#""x":{1:2}"#,
            r#""x":nul"#,
            r#""x":"\q""#,
            r#""x":[}"#,
            r#""v":1"#,
            r#""txs":[]"#,
        ] {
            let text = format!(r#"{{"v":1,"txs":{txs},{bad}}}"#);
            assert_eq!(
                agree(&text).unwrap().unwrap_err().kind(),
                "corrupt",
                "{bad}"
            );
        }
        // A row or a step has exactly its fields.
        for bad in [
            r#"[["a",0,"B","return",null,"X",null,[[0,"applied",null]],null,1]]"#,
            r#"[["a",0,"B","return",null,"X",null,[[0,"applied",null]]]]"#,
            r#"[["a",0,"B","return",null,"X",null,[[0,"applied",null,1]],null]]"#,
            r#"[["a",0,"B","return",null,"X",null,[[0,"applied"]],null]]"#,
            r#"[{"id":"a"}]"#,
        ] {
            let text = format!(r#"{{"v":1,"txs":{bad}}}"#);
            assert_eq!(
                agree(&text).unwrap().unwrap_err().kind(),
                "corrupt",
                "{bad}"
            );
        }
    }

    #[test]
    fn numbers_are_integers_in_each_fields_range() {
        let chunk = |at: &str, amount: &str| {
            format!(
                r#"{{"v":1,"txs":[["a",{at},"B","payment","C",null,{amount},[[0,"applied",null]],null]]}}"#
            )
        };
        for (at, amount) in [
            ("0", "1"),
            ("-1", "100000000"),
            ("8210266876799999", "150"),
            ("-8334601228800000", "150"),
        ] {
            assert!(agree(&chunk(at, amount)).unwrap().is_ok(), "{at} {amount}");
        }
        for (at, amount) in [
            ("-0", "150"),
            ("1.0", "150"),
            ("1e3", "150"),
            ("01", "150"),
            ("9223372036854775807", "150"),
            ("-9223372036854775808", "150"),
            ("99999999999999999999999", "150"),
            ("\"yesterday\"", "150"),
            ("null", "150"),
            ("0", "0"),
            ("0", "100000001"),
            ("0", "-1"),
            ("0", "1.5"),
            ("0", "\"1\""),
        ] {
            let error = agree(&chunk(at, amount)).unwrap().unwrap_err();
            assert_eq!(error.kind(), "corrupt", "{at} {amount}");
        }
    }

    /// A small JSON value of any kind, as text.
    fn any_json() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            prop::sample::select(vec![
                "null",
                "true",
                "false",
                "0",
                "-0",
                "1",
                "-1",
                "1.5",
                "1e3",
                "150",
                "\"\"",
                "\"x\"",
                "\"applied\"",
                "\"network\"",
                "\"2026-03-29T08:00:00Z\"",
                "\"\\ud800\"",
            ])
            .prop_map(str::to_owned),
            any::<i64>().prop_map(|n| n.to_string()),
            "\\PC{0,4}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        ];
        leaf.prop_recursive(3, 12, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec(("[a-z]{0,2}", inner), 0..3).prop_map(|v| {
                    let fields: Vec<String> =
                        v.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                    format!("{{{}}}", fields.join(","))
                }),
            ]
        })
    }

    /// Mostly a value of the field's type, near the edges of what it takes; sometimes any JSON.
    fn field(typed: Vec<&'static str>) -> impl Strategy<Value = String> {
        prop_oneof![
            6 => prop::sample::select(typed).prop_map(str::to_owned),
            1 => any_json(),
        ]
    }

    fn time() -> impl Strategy<Value = String> {
        field(vec![
            "0",
            "1000",
            "-1",
            "1774771200000",
            "\"2026-03-29T08:00:00.000123456Z\"",
            "\"2026-03-29 08:00:00+02:00\"",
            "\"2026-02-30T08:00:00Z\"",
            "-0",
            "1.0",
            "8210266876799999",
            "8210266876800000",
        ])
    }

    fn name(names: &[&'static str]) -> impl Strategy<Value = String> {
        let names = names.to_vec();
        (prop::sample::select(names), 0..4).prop_map(|(name, form)| match form {
            0 => format!("{{\"{name}\":null}}"),
            1 => format!("{{\"{name}\":1}}"),
            _ => format!("\"{name}\""),
        })
    }

    fn text() -> impl Strategy<Value = String> {
        field(vec![
            "null",
            "\"C1\"",
            "\" C1 \"",
            "\"\"",
            "\"123456789012345678901\"",
            "\"a\\u0001\"",
            "\"\\u00e9\"",
        ])
    }

    fn step() -> impl Strategy<Value = String> {
        let status = name(&[
            "local",
            "sending",
            "queued",
            "applied",
            "rejected",
            "failed",
            "uncertain",
            "lost",
        ]);
        let detail = field(vec![
            "null",
            "\"network\"",
            "\"timeout\"",
            "\"Koha says no\"",
            "\"\"",
        ]);
        (time(), status, detail)
            .prop_map(|(at, status, detail)| format!("[{at},{status},{detail}]"))
    }

    fn row() -> impl Strategy<Value = String> {
        let id = field(vec!["\"a\"", "\"\"", "\"\\\"q\\\"\"", "\"\\ud83d\\ude00\""]);
        let branch = field(vec!["\"DE-627\"", "\" B \"", "\"\"", "\"DE-627-XYZ1\""]);
        let action = name(&["issue", "return", "payment", "renew"]);
        let amount = field(vec!["null", "1", "150", "0", "100000001", "-1"]);
        let history =
            prop::collection::vec(step(), 0..4).prop_map(|s| format!("[{}]", s.join(",")));
        (
            (id, time(), branch, action),
            (text(), text(), amount, history, prop::option::of(time())),
        )
            .prop_map(|((id, at, branch, action), (card, barcode, amount, history, exported))| {
                let exported = exported.unwrap_or_else(|| "null".to_owned());
                format!("[{id},{at},{branch},{action},{card},{barcode},{amount},{history},{exported}]")
            })
    }

    /// Text shaped like a chunk, every part of it often of the wrong type or value.
    fn chunk_like() -> impl Strategy<Value = String> {
        let version = field(vec!["1", "1", "1", "2", "0"]);
        let rows = prop::collection::vec(row(), 0..4).prop_map(|r| format!("[{}]", r.join(",")));
        let extra = prop::option::of(any_json());
        (version, rows, extra, 0..4).prop_map(|(v, txs, extra, form)| {
            let extra = extra.map_or(String::new(), |x| format!(",\"x\":{x}"));
            match form {
                0 => format!("[{v},{txs}]"),
                1 => format!("{{\"txs\":{txs},\"v\":{v}{extra}}}"),
                _ => format!("{{\"v\":{v},\"txs\":{txs}{extra}}}"),
            }
        })
    }

    /// Up to four cuts, removals and insertions anywhere.
    fn damaged() -> impl Strategy<Value = String> {
        let edit = (
            0..3,
            any::<prop::sample::Index>(),
            0usize..6,
            prop_oneof![
                prop::sample::select(SNIPPETS.to_vec()).prop_map(str::to_owned),
                "\\PC{0,3}",
            ],
        );
        (
            prop::sample::select(bases()),
            prop::collection::vec(edit, 1..5),
        )
            .prop_map(|(mut text, edits)| {
                for (kind, at, len, snippet) in edits {
                    let mut at = at.index(text.len() + 1);
                    while !text.is_char_boundary(at) {
                        at -= 1;
                    }
                    match kind {
                        0 => text.truncate(at),
                        1 => {
                            let mut end = (at + len).min(text.len());
                            while !text.is_char_boundary(end) {
                                end -= 1;
                            }
                            text.replace_range(at..end, "");
                        }
                        _ => text.insert_str(at, &snippet),
                    }
                }
                text
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn chunk_like_text_is_read_as_serde_reads_it(text in chunk_like()) {
            agree(&text).map(drop).map_err(TestCaseError::fail)?;
        }

        #[test]
        fn damaged_chunks_are_read_as_serde_reads_them(text in damaged()) {
            agree(&text).map(drop).map_err(TestCaseError::fail)?;
        }
    }

    #[test]
    fn a_summary_is_read_back_from_the_start_of_the_text_alone() {
        let txs = accepted();
        assert!(txs.len() >= 2, "the summary covers several");
        let text = encode_chunk(&txs);
        let summary = ChunkSummary::of(&txs).unwrap();
        assert_eq!(read_summary(&text), Some(summary.clone()));
        assert_eq!(summary.rows(), txs.len());
        // Only the start is read: the rows may be anything after it.
        let rows = text.find(",\"v\"").unwrap();
        assert_eq!(read_summary(&text[..rows]), Some(summary));
    }

    #[test]
    fn a_chunk_without_a_summary_or_with_a_damaged_one_has_none() {
        assert_eq!(
            read_summary(&encode_chunk(&varied())),
            None,
            "not all accepted"
        );
        let text = encode_chunk(&accepted());
        for damaged in [
            text.replacen("\"sum\"", "\"sun\"", 1),
            text.replacen("{\"sum\":[", "{\"sum\":[-", 1),
            text.replacen("{\"sum\":[", "{\"v\":1,\"sum\":[", 1),
            text.replacen("{\"sum\":[", "[", 1),
            text[..12].to_owned(),
            String::new(),
        ] {
            assert_eq!(read_summary(&damaged), None, "{damaged:.40}");
        }
    }

    #[test]
    fn the_newest_time_is_rounded_up_to_the_millisecond() {
        let txs = accepted();
        let newest = txs.iter().map(|tx| tx.recorded_at).max().unwrap();
        let summary = ChunkSummary::of(&txs).unwrap();
        assert!(summary.newest >= newest);
        assert!(summary.newest - newest < TimeDelta::milliseconds(1));
        assert_eq!(summary.newest.timestamp_subsec_nanos() % 1_000_000, 0);
    }
}
