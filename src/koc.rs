//! Reading and writing Koha's `.koc` offline circulation files (version 1.0).
//!
//! Koha reads a `.koc` file's times verbatim as **its own local time**, so the writer converts
//! each instant into the Koha server's zone (a [`ZoneRules`] supplied by the caller), and the
//! reader converts back.
//!
//! What the writer produces (pinned by golden tests):
//!
//! - the header `Version=1.0<TAB>Generator=koha-offline-circ<TAB>GeneratorVersion=<version>`, no
//!   byte-order mark, no other keys;
//! - one line per transaction, ascending time: `<YYYY-MM-DD HH:MM:SS><TAB>issue<TAB><card><TAB><barcode>`,
//!   `…<TAB>return<TAB><barcode>`, `…<TAB>payment<TAB><card><TAB><amount>` (`12.50`); no
//!   trailing tab, no third time token;
//! - `<CR><LF>` **between** lines and none after the last: Koha splits at `<LF>`, and whatever
//!   its splitter does with a final empty piece, there is none, so a blank line (which makes
//!   Koha stop with HTTP 500) cannot appear.
//!
//! Since a local time in the hour that repeats when clocks go back stands for two instants, a
//! file cannot tell them apart: reading such a line gives the earlier instant and a warning.
//!
//! # Example: record, then export
//!
//! ```
//! use chrono::{FixedOffset, TimeZone, Utc};
//! use koha_offline_circ::journal::Journal;
//! use koha_offline_circ::koc::{self, WriteOptions};
//! use koha_offline_circ::zone::FixedZone;
//! use koha_offline_circ::{Action, Barcode, Branchcode, Cardnumber, Transaction, TransactionId};
//!
//! let at = Utc.with_ymd_and_hms(2026, 1, 31, 13, 5, 9).unwrap();
//! let mut journal = Journal::new();
//! journal
//!     .record(Transaction::record(
//!         TransactionId::new(at, 1),
//!         at,
//!         Branchcode::parse("CPL").unwrap(),
//!         Action::Issue {
//!             cardnumber: Cardnumber::parse("23529000035676").unwrap(),
//!             barcode: Barcode::parse("39999000001310").unwrap(),
//!         },
//!     ))
//!     .unwrap();
//!
//! // The Koha server runs at UTC+01:00.
//! let server = FixedZone(FixedOffset::east_opt(3600).unwrap());
//! let file = koc::write(journal.in_order(), &WriteOptions::default(), &server).unwrap();
//! assert_eq!(
//!     file.text,
//!     format!(
//!         "Version=1.0\tGenerator=koha-offline-circ\tGeneratorVersion={}\r\n\
//!          2026-01-31 14:05:09\tissue\t23529000035676\t39999000001310",
//!         env!("CARGO_PKG_VERSION")
//!     )
//! );
//! assert_eq!(file.ids, vec![TransactionId::new(at, 1)]);
//!
//! // Reading it back gives the same instant and action.
//! let read = koc::read(file.text.as_bytes(), &server, None);
//! assert!(read.errors.is_empty());
//! assert_eq!(read.rows[0].at, at);
//! ```

use crate::ids::{Amount, Barcode, Branchcode, Cardnumber, Field, InputError};
use crate::kinds::kinds;
use crate::transaction::{Action, Transaction, TransactionId};
use crate::zone::{from_local, to_local, LocalResolution, ZoneRules};
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use thiserror::Error;

/// Our `Generator` header value.
pub const GENERATOR: &str = "koha-offline-circ";
/// Our `GeneratorVersion` header value: the crate version.
pub const GENERATOR_VERSION: &str = env!("CARGO_PKG_VERSION");
/// The `Generator` of BibLibre's KOCT add-on, which writes UTC times.
pub const KOCT_GENERATOR: &str = "koct-firefox";
/// Earliest year written or read: Koha's queue column is a MySQL `TIMESTAMP`.
pub const MIN_YEAR: i32 = 1970;
/// Latest year written or read (a MySQL `TIMESTAMP` ends in January 2038).
pub const MAX_YEAR: i32 = 2037;

const LINE_END: &str = "\r\n";

// ---------------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------------

/// Which transactions go into a file. The desk's export chooses through
/// [`crate::export::plan`] (never `sending` or `rejected` rows, and exported or uncertain ones
/// only after a question) and writes [`Selection::Ids`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Selection {
    /// Those Koha has not accepted (everything but `queued` and `applied`). The default, so a
    /// file never silently repeats what Koha already holds.
    #[default]
    NotAccepted,
    /// Every transaction, accepted ones included.
    All,
    /// Exactly these (each must be among the transactions given).
    Ids(Vec<TransactionId>),
}

/// What to write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// Which transactions.
    pub selection: Selection,
    /// Only this library's transactions (Koha gives uploaded rows the uploader's library, so one
    /// file per library); `None` writes all libraries into one file.
    pub branchcode: Option<Branchcode>,
}

/// A written file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KocFile {
    /// The file's text (ASCII unless a field holds non-ASCII characters).
    pub text: String,
    /// The transactions written, in file order, so the caller can mark them exported.
    pub ids: Vec<TransactionId>,
}

/// Why a file could not be written.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KocWriteError {
    /// [`Selection::Ids`] names a transaction that was not given.
    #[error("transaction {id} is not in the journal")]
    UnknownTransaction {
        /// The id.
        id: TransactionId,
    },
    /// The local time falls outside [`MIN_YEAR`]..=[`MAX_YEAR`], which Koha cannot store.
    #[error("transaction {id} has a time outside 1970 to 2037")]
    OutOfRange {
        /// The id.
        id: TransactionId,
    },
}

kinds!(KocWriteError {
    UnknownTransaction => "unknown-transaction",
    OutOfRange => "out-of-range",
});

/// The header line, without its line end.
pub fn header() -> String {
    format!("Version=1.0\tGenerator={GENERATOR}\tGeneratorVersion={GENERATOR_VERSION}")
}

/// The selected transactions, oldest first (ties by id), and the first id of an
/// [`Selection::Ids`] list that is not among them.
fn selected<'a>(
    transactions: impl IntoIterator<Item = &'a Transaction>,
    options: &WriteOptions,
) -> (Vec<&'a Transaction>, Option<TransactionId>) {
    let wanted: HashSet<TransactionId> = match &options.selection {
        Selection::Ids(ids) => ids.iter().cloned().collect(),
        _ => HashSet::new(),
    };
    let mut found: HashSet<TransactionId> = HashSet::new();
    let mut chosen: Vec<&Transaction> = Vec::new();
    for tx in transactions {
        let take = match &options.selection {
            Selection::NotAccepted => !tx.status().is_accepted(),
            Selection::All => true,
            Selection::Ids(_) => wanted.contains(&tx.id),
        };
        if take {
            found.insert(tx.id.clone());
            chosen.push(tx);
        }
    }
    let missing = match &options.selection {
        Selection::Ids(ids) => ids.iter().find(|id| !found.contains(id)).cloned(),
        _ => None,
    };
    if let Some(branch) = &options.branchcode {
        chosen.retain(|tx| &tx.branchcode == branch);
    }
    chosen.sort_by(|a, b| (a.recorded_at, &a.id).cmp(&(b.recorded_at, &b.id)));
    (chosen, missing)
}

fn selected_or_error<'a>(
    transactions: impl IntoIterator<Item = &'a Transaction>,
    options: &WriteOptions,
) -> Result<Vec<&'a Transaction>, KocWriteError> {
    match selected(transactions, options) {
        (_, Some(id)) => Err(KocWriteError::UnknownTransaction { id }),
        (chosen, None) => Ok(chosen),
    }
}

/// Writes the selected transactions as a `.koc` file, times in `server_zone`, oldest first
/// (ties by id). All or nothing: an error writes no file.
pub fn write<'a>(
    transactions: impl IntoIterator<Item = &'a Transaction>,
    options: &WriteOptions,
    server_zone: &dyn ZoneRules,
) -> Result<KocFile, KocWriteError> {
    let chosen = selected_or_error(transactions, options)?;
    let mut text = String::with_capacity(64 + chosen.len() * 64);
    text.push_str(&header());
    let mut ids = Vec::with_capacity(chosen.len());
    for tx in chosen {
        let local = to_local(tx.recorded_at, server_zone);
        if !(MIN_YEAR..=MAX_YEAR).contains(&local.year()) {
            return Err(KocWriteError::OutOfRange { id: tx.id.clone() });
        }
        text.push_str(LINE_END);
        push_line(&mut text, local, &tx.action);
        ids.push(tx.id.clone());
    }
    Ok(KocFile { text, ids })
}

/// The libraries among the selected transactions, sorted and without repeats: one file each.
/// Ids of a [`Selection::Ids`] list that are not among the transactions are ignored here
/// ([`write()`] reports them).
pub fn branchcodes<'a>(
    transactions: impl IntoIterator<Item = &'a Transaction>,
    selection: &Selection,
) -> Vec<Branchcode> {
    let options = WriteOptions {
        selection: selection.clone(),
        branchcode: None,
    };
    let (chosen, _) = selected(transactions, &options);
    let mut codes: Vec<Branchcode> = chosen.into_iter().map(|tx| tx.branchcode.clone()).collect();
    codes.sort();
    codes.dedup();
    codes
}

/// Writes one file per library (see [`branchcodes`]), in library order.
pub fn write_per_library<'a>(
    transactions: impl IntoIterator<Item = &'a Transaction> + Clone,
    selection: &Selection,
    server_zone: &dyn ZoneRules,
) -> Result<Vec<(Branchcode, KocFile)>, KocWriteError> {
    // Surface an unknown id once, even if it would fall in no library.
    selected_or_error(
        transactions.clone(),
        &WriteOptions {
            selection: selection.clone(),
            branchcode: None,
        },
    )?;
    branchcodes(transactions.clone(), selection)
        .into_iter()
        .map(|branch| {
            let options = WriteOptions {
                selection: selection.clone(),
                branchcode: Some(branch.clone()),
            };
            write(transactions.clone(), &options, server_zone).map(|file| (branch, file))
        })
        .collect()
}

fn push_line(out: &mut String, local: NaiveDateTime, action: &Action) {
    // Writing into a String cannot fail.
    let _ = write!(
        out,
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}\t{}",
        local.year(),
        local.month(),
        local.day(),
        local.hour(),
        local.minute(),
        local.second(),
        action.koha_name()
    );
    let _ = match action {
        Action::Issue {
            cardnumber,
            barcode,
        } => write!(out, "\t{cardnumber}\t{barcode}"),
        Action::Return { barcode } => write!(out, "\t{barcode}"),
        Action::Payment { cardnumber, amount } => write!(out, "\t{cardnumber}\t{amount}"),
    };
}

// ---------------------------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------------------------

/// Which clock a file's times are read on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimeBasis {
    /// UTC (KOCT files).
    Utc,
    /// The zone passed to [`read`]: the Koha server's, which is also the zone our own files are
    /// written in.
    ServerZone,
}

impl TimeBasis {
    /// The other basis: what the import's "read the other way" reads the file with.
    pub fn other(self) -> TimeBasis {
        match self {
            TimeBasis::Utc => TimeBasis::ServerZone,
            TimeBasis::ServerZone => TimeBasis::Utc,
        }
    }
}

/// The header line, as found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KocHeader {
    /// `Version`, if present.
    pub version: Option<String>,
    /// `Generator`, if present.
    pub generator: Option<String>,
    /// `GeneratorVersion`, if present.
    pub generator_version: Option<String>,
}

/// The time basis a header implies: `koct-firefox` → UTC; ours, anything else, or no header →
/// the server's zone.
pub fn detect_basis(header: Option<&KocHeader>) -> TimeBasis {
    match header.and_then(|h| h.generator.as_deref()) {
        Some(KOCT_GENERATOR) => TimeBasis::Utc,
        _ => TimeBasis::ServerZone,
    }
}

/// One good line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KocRow {
    /// 1-based line number in the file.
    pub line: usize,
    /// The time as written.
    pub local: NaiveDateTime,
    /// The instant it stands for, on the file's [`TimeBasis`].
    pub at: DateTime<Utc>,
    /// What happened.
    pub action: Action,
    /// A stored transaction identical to this row (same second, action and fields), set by
    /// [`KocImport::mark_duplicates`].
    pub duplicate_of: Option<TransactionId>,
}

impl KocRow {
    /// A new `local` transaction for this row, recorded for `branchcode`.
    pub fn to_transaction(&self, id: TransactionId, branchcode: Branchcode) -> Transaction {
        Transaction::record(id, self.at, branchcode, self.action.clone())
    }
}

/// Why a line was not imported.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LineErrorReason {
    /// The line is not valid UTF-8.
    #[error("not valid UTF-8 text")]
    InvalidUtf8,
    /// Only a time stamp, no command.
    #[error("no command")]
    MissingCommand,
    /// A command other than exactly `issue`, `return` or `payment`.
    #[error("unknown command {command:?}")]
    UnknownCommand {
        /// The command as found.
        command: String,
    },
    /// A required field is missing.
    #[error("{field} is missing")]
    MissingField {
        /// Which one.
        field: Field,
    },
    /// An amount with `,` (Koha would read `1,50` as 1).
    #[error("amount has a comma")]
    CommaInAmount,
    /// The time stamp is not `YYYY-MM-DD HH:MM:SS` (or `HH-MM-SS`), optionally with a token.
    #[error("time stamp {text:?} is not YYYY-MM-DD HH:MM:SS")]
    BadTimestamp {
        /// The field as found.
        text: String,
    },
    /// The year is outside [`MIN_YEAR`]..=[`MAX_YEAR`].
    #[error("time stamp {text:?} is outside 1970 to 2037")]
    TimestampOutOfRange {
        /// The field as found.
        text: String,
    },
    /// A field that the desk would refuse (too long, control characters, bad amount…).
    #[error("{0}")]
    Invalid(InputError),
}

kinds!(LineErrorReason {
    InvalidUtf8 => "invalid-utf8",
    MissingCommand => "missing-command",
    UnknownCommand => "unknown-command",
    MissingField => "missing-field",
    CommaInAmount => "comma-in-amount",
    BadTimestamp => "bad-timestamp",
    TimestampOutOfRange => "timestamp-out-of-range",
    Invalid => "invalid-field",
});

/// A line that was not imported.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}: {reason}")]
pub struct LineError {
    /// 1-based line number.
    pub line: usize,
    /// Why.
    pub reason: LineErrorReason,
}

impl LineError {
    /// The reason's stable kind.
    pub fn kind(&self) -> &'static str {
        self.reason.kind()
    }
}

/// Something the librarian should know, though the lines concerned were imported.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KocWarning {
    /// The first line with content does not start with `Version=`; it was read as a transaction.
    #[error("the file has no header")]
    NoHeader,
    /// `Version` is not `1.0` (or missing from the header).
    #[error("file version {version:?} is not 1.0")]
    UnknownVersion {
        /// The version found (empty if missing).
        version: String,
    },
    /// Blank lines were skipped.
    #[error("{count} blank lines skipped")]
    BlankLines {
        /// How many.
        count: usize,
    },
    /// A line has fields after the ones its command uses; they were ignored.
    #[error("line {line}: {count} extra fields ignored")]
    ExtraFields {
        /// 1-based line number.
        line: usize,
        /// How many.
        count: usize,
    },
    /// The local time occurs twice in the zone (clocks went back); the earlier instant was taken.
    #[error("line {line}: the time occurs twice; the earlier one was taken")]
    AmbiguousTime {
        /// 1-based line number.
        line: usize,
    },
    /// The local time never occurs in the zone (clocks went forward); it was moved forward by
    /// the gap.
    #[error("line {line}: the time does not exist; it was moved forward")]
    SkippedTime {
        /// 1-based line number.
        line: usize,
    },
}

kinds!(KocWarning {
    NoHeader => "no-header",
    UnknownVersion => "unknown-version",
    BlankLines => "blank-lines",
    ExtraFields => "extra-fields",
    AmbiguousTime => "ambiguous-time",
    SkippedTime => "skipped-time",
});

/// The result of reading a file: every line is either a row, an error, the header, or a counted
/// blank line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KocImport {
    /// The header, if the first line with content is one (blank lines before it are counted).
    pub header: Option<KocHeader>,
    /// The basis the header implies (see [`detect_basis`]).
    pub detected_basis: TimeBasis,
    /// The basis actually used (the caller's override, else the detected one).
    pub basis: TimeBasis,
    /// The good lines, in file order.
    pub rows: Vec<KocRow>,
    /// The bad lines, in file order.
    pub errors: Vec<LineError>,
    /// Warnings, in file order (the blank-line count last).
    pub warnings: Vec<KocWarning>,
}

impl KocImport {
    /// Marks rows identical to a stored transaction (same second, action and fields), because
    /// importing a file twice would otherwise send everything twice. Returns how many were
    /// marked.
    pub fn mark_duplicates<'a>(
        &mut self,
        existing: impl IntoIterator<Item = &'a Transaction>,
    ) -> usize {
        let stored: HashMap<(i64, &Action), &TransactionId> = existing
            .into_iter()
            .map(|tx| ((tx.recorded_at.timestamp(), &tx.action), &tx.id))
            .collect();
        let mut marked = 0;
        for row in &mut self.rows {
            row.duplicate_of = stored
                .get(&(row.at.timestamp(), &row.action))
                .map(|id| (*id).clone());
            marked += usize::from(row.duplicate_of.is_some());
        }
        marked
    }
}

/// Splits at `\r\n`, `\n` or a lone `\r`. A final line end does not start another line.
fn lines(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                out.push(&bytes[start..i]);
                start = i + 1;
            }
            b'\r' => {
                out.push(&bytes[start..i]);
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < bytes.len() {
        out.push(&bytes[start..]);
    }
    out
}

fn parse_header(line: &str) -> KocHeader {
    let mut header = KocHeader::default();
    for part in line.split('\t') {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        let slot = match key {
            "Version" => &mut header.version,
            "Generator" => &mut header.generator,
            "GeneratorVersion" => &mut header.generator_version,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(value.to_owned());
        }
    }
    header
}

fn digits<T: std::str::FromStr>(s: &str, len: usize) -> Option<T> {
    (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// `YYYY-MM-DD HH:MM:SS` or `HH-MM-SS`, optionally a space and one non-empty token.
fn parse_timestamp(text: &str) -> Result<NaiveDateTime, LineErrorReason> {
    let bad = || LineErrorReason::BadTimestamp {
        text: text.to_owned(),
    };
    let mut parts = text.split(' ');
    let (date, time) = (parts.next().ok_or_else(bad)?, parts.next().ok_or_else(bad)?);
    match (parts.next(), parts.next()) {
        (None, None) => {}
        (Some(token), None) if !token.is_empty() && !token.chars().any(char::is_whitespace) => {}
        _ => return Err(bad()),
    }
    let d: Vec<&str> = date.split('-').collect();
    let sep = if time.contains(':') { ':' } else { '-' };
    let t: Vec<&str> = time.split(sep).collect();
    if d.len() != 3 || t.len() != 3 {
        return Err(bad());
    }
    let date = NaiveDate::from_ymd_opt(
        digits(d[0], 4).ok_or_else(bad)?,
        digits(d[1], 2).ok_or_else(bad)?,
        digits(d[2], 2).ok_or_else(bad)?,
    )
    .ok_or_else(bad)?;
    let time = NaiveTime::from_hms_opt(
        digits(t[0], 2).ok_or_else(bad)?,
        digits(t[1], 2).ok_or_else(bad)?,
        digits(t[2], 2).ok_or_else(bad)?,
    )
    .ok_or_else(bad)?;
    if !(MIN_YEAR..=MAX_YEAR).contains(&date.year()) {
        return Err(LineErrorReason::TimestampOutOfRange {
            text: text.to_owned(),
        });
    }
    Ok(date.and_time(time))
}

/// Parses one transaction line (already split into fields, trailing empty ones dropped).
/// Returns the local time, the action and how many extra fields were ignored.
fn parse_fields(fields: &[&str]) -> Result<(NaiveDateTime, Action, usize), LineErrorReason> {
    let command = match fields.get(1) {
        None => return Err(LineErrorReason::MissingCommand),
        Some(c) => *c,
    };
    let (needed, names): (usize, [Field; 2]) = match command {
        "issue" => (4, [Field::Cardnumber, Field::Barcode]),
        "return" => (3, [Field::Barcode, Field::Barcode]),
        "payment" => (4, [Field::Cardnumber, Field::Amount]),
        other => {
            return Err(LineErrorReason::UnknownCommand {
                command: other.to_owned(),
            })
        }
    };
    if fields.len() < needed {
        return Err(LineErrorReason::MissingField {
            field: names[fields.len() - 2],
        });
    }
    let local = parse_timestamp(fields[0])?;
    let invalid = LineErrorReason::Invalid;
    let action = match command {
        "issue" => Action::Issue {
            cardnumber: Cardnumber::parse(fields[2]).map_err(invalid)?,
            barcode: Barcode::parse(fields[3]).map_err(invalid)?,
        },
        "return" => Action::Return {
            barcode: Barcode::parse(fields[2]).map_err(invalid)?,
        },
        _ => {
            let cardnumber = Cardnumber::parse(fields[2]).map_err(invalid)?;
            if fields[3].contains(',') {
                return Err(LineErrorReason::CommaInAmount);
            }
            Action::Payment {
                cardnumber,
                amount: Amount::parse(fields[3]).map_err(invalid)?,
            }
        }
    };
    Ok((local, action, fields.len() - needed))
}

/// Reads a `.koc` file from raw bytes. Never panics, never drops a line silently: each line is
/// the header, a row, a line error or a counted blank line.
///
/// `server_zone` is the Koha server's zone. Times are read on the basis the header implies
/// ([`detect_basis`]) unless `basis` overrides it.
pub fn read(bytes: &[u8], server_zone: &dyn ZoneRules, basis: Option<TimeBasis>) -> KocImport {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut import = KocImport {
        header: None,
        detected_basis: TimeBasis::ServerZone,
        basis: basis.unwrap_or(TimeBasis::ServerZone),
        rows: Vec::new(),
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let mut blank = 0;
    let mut seen_content = false;
    for (index, raw) in lines(bytes).into_iter().enumerate() {
        let line = index + 1;
        let text = match std::str::from_utf8(raw) {
            Ok(text) => text,
            Err(_) => {
                seen_content = true;
                import.errors.push(LineError {
                    line,
                    reason: LineErrorReason::InvalidUtf8,
                });
                continue;
            }
        };
        if text.trim().is_empty() {
            blank += 1;
            continue;
        }
        if !seen_content {
            // The first line with content: the header, or else a transaction.
            seen_content = true;
            if text.starts_with("Version=") {
                let header = parse_header(text);
                if header.version.as_deref() != Some("1.0") {
                    import.warnings.push(KocWarning::UnknownVersion {
                        version: header.version.clone().unwrap_or_default(),
                    });
                }
                import.detected_basis = detect_basis(Some(&header));
                import.basis = basis.unwrap_or(import.detected_basis);
                import.header = Some(header);
                continue;
            }
            import.warnings.push(KocWarning::NoHeader);
        }
        let mut fields: Vec<&str> = text.split('\t').collect();
        while fields.last().is_some_and(|f| f.is_empty()) {
            fields.pop();
        }
        match parse_fields(&fields) {
            Err(reason) => import.errors.push(LineError { line, reason }),
            Ok((local, action, extra)) => {
                if extra > 0 {
                    import
                        .warnings
                        .push(KocWarning::ExtraFields { line, count: extra });
                }
                let at = match import.basis {
                    TimeBasis::Utc => local.and_utc(),
                    TimeBasis::ServerZone => {
                        let resolved = from_local(local, server_zone);
                        match resolved {
                            LocalResolution::Unique(_) => {}
                            LocalResolution::Ambiguous { .. } => {
                                import.warnings.push(KocWarning::AmbiguousTime { line })
                            }
                            LocalResolution::Skipped { .. } => {
                                import.warnings.push(KocWarning::SkippedTime { line })
                            }
                        }
                        resolved.instant()
                    }
                };
                import.rows.push(KocRow {
                    line,
                    local,
                    at,
                    action,
                    duplicate_of: None,
                });
            }
        }
    }
    if blank > 0 {
        import
            .warnings
            .push(KocWarning::BlankLines { count: blank });
    }
    import
}
