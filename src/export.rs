//! The export plan: which transactions go into `.koc` files, and what the librarian must be
//! asked first.
//!
//! Koha has no deduplication (docs/koha.md 9.3): a transaction uploaded in two files, or
//! uploaded and also sent, is recorded twice, and a payment is credited twice. An export takes
//! what is new; repeating a file is the exception, asked for. Of the transactions Koha has not
//! accepted, it takes:
//!
//! | status | written to a file before | taken |
//! |---|---|---|
//! | `queued`, `applied` | – | never: Koha has them |
//! | `sending` | – | never: a request may be reaching Koha right now ([`LeftOut::sending`]) |
//! | `rejected` | – | never: Koha refused them ([`LeftOut::rejected`]) |
//! | `local`, `failed` | no | yes, without a question |
//! | `uncertain` | no | only once [`Question::Uncertain`] is confirmed |
//! | `local`, `failed`, `uncertain` | yes | while a row of the two lines above is left: no, and nothing is asked ([`LeftOut::already_exported`]); otherwise only once [`Question::AlreadyExported`] is confirmed, and for an `uncertain` row [`Question::Uncertain`] too |
//!
//! So a row recorded after an export goes into the next file without a question, and the rows
//! of the earlier file are not repeated; exporting with nothing new asks whether to repeat them.
//!
//! A question counts every row it concerns, so the two questions may count the same row. An
//! answer holds for exactly the question asked: when the rows change in between (another page
//! exported or sent), the new question is asked again instead of applying the old answer.
//!
//! # Example
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use koha_offline_circ::export::{self, Answers, Plan, Question};
//! use koha_offline_circ::sync::Level;
//! use koha_offline_circ::{Action, Barcode, Branchcode, Transaction, TransactionId};
//!
//! let at = Utc.with_ymd_and_hms(2026, 12, 3, 10, 15, 0).unwrap();
//! let checkin = |n| {
//!     let barcode = Barcode::parse(&format!("B{n}")).unwrap();
//!     let branch = Branchcode::parse("CPL").unwrap();
//!     Transaction::record(TransactionId::new(at, n), at, branch, Action::Return { barcode })
//! };
//! let mut rows = [checkin(1), checkin(2)];
//! rows[0].mark_exported(at);
//!
//! // Something new: only that, without a question.
//! let Plan::Take(chosen) = export::plan(&rows, &Answers::default()) else { panic!() };
//! assert_eq!(chosen.ids, vec![rows[1].id.clone()]);
//! assert_eq!(chosen.left_out.already_exported, 1);
//! assert_eq!(chosen.left_out.level(chosen.ids.len()), Level::Ok);
//!
//! // Nothing new: the question, naming how many and when.
//! rows[1].mark_exported(at);
//! let asked = Question::AlreadyExported { count: 2, payments: 0, at };
//! assert_eq!(export::plan(&rows, &Answers::default()), Plan::Ask(vec![asked.clone()]));
//!
//! // Confirmed: both again. Declined: nothing.
//! let yes = Answers { confirmed: vec![asked.clone()], declined: vec![] };
//! let Plan::Take(chosen) = export::plan(&rows, &yes) else { panic!() };
//! assert_eq!(chosen.ids.len(), 2);
//! let no = Answers { confirmed: vec![], declined: vec![asked] };
//! let Plan::Take(chosen) = export::plan(&rows, &no) else { panic!() };
//! assert!(chosen.ids.is_empty());
//! assert_eq!(chosen.left_out.level(0), Level::Warning);
//! ```

use crate::kinds::kinds;
use crate::koc::{self, KocFile, KocWriteError, Selection};
use crate::store::ExportRecord;
use crate::sync::Level;
use crate::transaction::{Action, Status, Transaction, TransactionId};
use crate::zone::ZoneRules;
use crate::Branchcode;
use chrono::{DateTime, Utc};

/// What the librarian is asked before some rows are exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Question {
    /// `count` rows (`payments` of them payments) were written to a `.koc` file before, the
    /// last time at `at` (whole milliseconds). If that file was uploaded, exporting them again
    /// records them twice.
    AlreadyExported {
        /// Rows concerned.
        count: usize,
        /// Of them, payments (credited twice if uploaded twice).
        payments: usize,
        /// The latest of their exports, in whole milliseconds.
        at: DateTime<Utc>,
    },
    /// `count` rows (`payments` of them payments) are `uncertain`: Koha may already have them.
    Uncertain {
        /// Rows concerned.
        count: usize,
        /// Of them, payments (credited twice if Koha has them).
        payments: usize,
    },
}

kinds!(Question {
    AlreadyExported => "already-exported",
    Uncertain => "uncertain",
});

/// The librarian's answers so far. A question counts as answered only when it is in one of the
/// lists exactly as it would be asked now; declined wins over confirmed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answers {
    /// Questions answered "export them".
    pub confirmed: Vec<Question>,
    /// Questions answered "leave them out".
    pub declined: Vec<Question>,
}

impl Answers {
    /// `Some(true)` confirmed, `Some(false)` declined, `None` not answered (as asked now).
    fn answer(&self, question: &Question) -> Option<bool> {
        if self.declined.contains(question) {
            Some(false)
        } else if self.confirmed.contains(question) {
            Some(true)
        } else {
            None
        }
    }
}

/// Rows not taken, by reason. A row whose uncertain question was declined counts under
/// `uncertain`, even when it was exported before too.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeftOut {
    /// `sending`: a request may be reaching Koha.
    pub sending: usize,
    /// `rejected`: Koha refused them.
    pub rejected: usize,
    /// Exported before and not repeated: newer rows went instead, or the librarian declined.
    pub already_exported: usize,
    /// `uncertain`, and the librarian declined exporting them.
    pub uncertain: usize,
}

impl LeftOut {
    /// How the message after an export that took `taken` rows reads: a warning when it took
    /// none, or left out an uncertain row (which may or may not be in Koha, and is in no file:
    /// it needs a later look); otherwise ok. What Koha refused, what is on its way and what was
    /// exported before are accounted for.
    pub fn level(&self, taken: usize) -> Level {
        if taken == 0 || self.uncertain > 0 {
            Level::Warning
        } else {
            Level::Ok
        }
    }
}

/// The rows an export takes, and those it leaves out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chosen {
    /// The rows to write, in the order given.
    pub ids: Vec<TransactionId>,
    /// What is not written, and why.
    pub left_out: LeftOut,
}

/// What an export does with the answers given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Ask these first (already-exported before uncertain); nothing is written yet.
    Ask(Vec<Question>),
    /// Every question is answered (or none arises): write these rows.
    Take(Chosen),
}

/// Where one row stands for an export.
enum Fate {
    Never,
    Sending,
    Rejected,
    /// Taken, perhaps after a question.
    Candidate {
        exported: bool,
        uncertain: bool,
    },
}

fn fate(tx: &Transaction) -> Fate {
    let exported = tx.exported_at.is_some();
    match tx.status() {
        Status::Queued | Status::Applied => Fate::Never,
        Status::Sending => Fate::Sending,
        Status::Rejected { .. } => Fate::Rejected,
        Status::Local | Status::Failed { .. } => Fate::Candidate {
            exported,
            uncertain: false,
        },
        Status::Uncertain { .. } => Fate::Candidate {
            exported,
            uncertain: true,
        },
    }
}

/// Whether the rows hold a candidate never exported: then the exported ones are not repeated.
fn anything_new<'a>(transactions: impl IntoIterator<Item = &'a Transaction>) -> bool {
    transactions.into_iter().any(|tx| {
        matches!(
            fate(tx),
            Fate::Candidate {
                exported: false,
                ..
            }
        )
    })
}

/// `at` cut to whole milliseconds, the precision a question crosses the page in.
fn millis(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at)
}

/// The questions the rows raise now, in asking order (see the module table).
pub fn questions<'a>(
    transactions: impl IntoIterator<Item = &'a Transaction> + Clone,
) -> Vec<Question> {
    let repeat = !anything_new(transactions.clone());
    let (mut exported, mut exported_payments, mut latest) = (0, 0, None);
    let (mut uncertain, mut uncertain_payments) = (0, 0);
    for tx in transactions {
        let Fate::Candidate {
            exported: was_exported,
            uncertain: is_uncertain,
        } = fate(tx)
        else {
            continue;
        };
        if was_exported && !repeat {
            continue; // not repeated, so nothing to ask
        }
        let payment = usize::from(matches!(tx.action, Action::Payment { .. }));
        if was_exported {
            exported += 1;
            exported_payments += payment;
            latest = latest.max(tx.exported_at);
        }
        if is_uncertain {
            uncertain += 1;
            uncertain_payments += payment;
        }
    }
    let mut asked = Vec::new();
    if let Some(at) = latest {
        asked.push(Question::AlreadyExported {
            count: exported,
            payments: exported_payments,
            at: millis(at),
        });
    }
    if uncertain > 0 {
        asked.push(Question::Uncertain {
            count: uncertain,
            payments: uncertain_payments,
        });
    }
    asked
}

/// Which rows an export takes given `answers`, or the questions still to ask (see the module
/// table). Never takes a `sending`, `rejected` or accepted row, and never an exported or
/// uncertain one without a confirmation of the question as it stands now.
pub fn plan<'a>(
    transactions: impl IntoIterator<Item = &'a Transaction> + Clone,
    answers: &Answers,
) -> Plan {
    let mut again = None;
    let mut uncertain = None;
    let mut unanswered = Vec::new();
    for question in questions(transactions.clone()) {
        let answer = answers.answer(&question);
        match question {
            Question::AlreadyExported { .. } => again = answer,
            Question::Uncertain { .. } => uncertain = answer,
        }
        if answer.is_none() {
            unanswered.push(question);
        }
    }
    if !unanswered.is_empty() {
        return Plan::Ask(unanswered);
    }
    // Every question that arose is answered here; one that did not arise is no confirmation.
    let mut chosen = Chosen::default();
    for tx in transactions {
        match fate(tx) {
            Fate::Never => {}
            Fate::Sending => chosen.left_out.sending += 1,
            Fate::Rejected => chosen.left_out.rejected += 1,
            Fate::Candidate {
                exported,
                uncertain: is_uncertain,
            } => {
                if exported && again.is_none() {
                    chosen.left_out.already_exported += 1; // something new goes instead
                } else if is_uncertain && uncertain != Some(true) {
                    chosen.left_out.uncertain += 1;
                } else if exported && again != Some(true) {
                    chosen.left_out.already_exported += 1;
                } else {
                    chosen.ids.push(tx.id.clone());
                }
            }
        }
    }
    Plan::Take(chosen)
}

/// An export's outcome: questions to ask, or the files to download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Export {
    /// Ask these first; nothing was written.
    Ask(Vec<Question>),
    /// One file per library (none when no row is taken), and what was left out.
    Files {
        /// `(library, file)`, in library order.
        files: Vec<(Branchcode, KocFile)>,
        /// What is not in the files, and why.
        left_out: LeftOut,
    },
}

impl Export {
    /// The record that marks the written rows exported at `at`; `None` when nothing was
    /// written.
    pub fn record(&self, at: DateTime<Utc>) -> Option<ExportRecord> {
        let Export::Files { files, .. } = self else {
            return None;
        };
        let ids: Vec<TransactionId> = files.iter().flat_map(|(_, f)| f.ids.clone()).collect();
        (!ids.is_empty()).then(|| ExportRecord::new(at, ids))
    }
}

/// [`plan`], then the files of the rows taken, one per library, times in `server_zone`.
pub fn write<'a>(
    transactions: impl IntoIterator<Item = &'a Transaction> + Clone,
    answers: &Answers,
    server_zone: &dyn ZoneRules,
) -> Result<Export, KocWriteError> {
    match plan(transactions.clone(), answers) {
        Plan::Ask(questions) => Ok(Export::Ask(questions)),
        Plan::Take(chosen) => Ok(Export::Files {
            files: koc::write_per_library(transactions, &Selection::Ids(chosen.ids), server_zone)?,
            left_out: chosen.left_out,
        }),
    }
}
