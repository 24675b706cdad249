//! The desk's own rules: what a typed form means, which library a transaction is recorded for
//! when none is set up yet, how exported files are named, and which rows of an import are added.
//!
//! ```
//! use koha_offline_circ::desk::{DeskForm, PLACEHOLDER_BRANCHCODE, desk_branchcode};
//!
//! let form = DeskForm::payment("C0001", "2,50");
//! let action = form.parse().unwrap();
//! assert_eq!(action.amount().unwrap().cents(), 250);
//! assert_eq!(desk_branchcode(None).as_str(), PLACEHOLDER_BRANCHCODE);
//! ```

use crate::ids::{Amount, Barcode, Branchcode, Cardnumber, InputError};
use crate::journal::Journal;
use crate::kinds::kinds;
use crate::koc::KocImport;
use crate::settings::Settings;
use crate::transaction::{Action, Transaction, TransactionId};
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The library code recorded when no settings are stored yet. Sending refuses rows with it
/// until a library is set (see [`effective_branchcode`]); a `.koc` file carries no library, so
/// export takes them as they are.
pub const PLACEHOLDER_BRANCHCODE: &str = "NOT-SET";

/// How many rows the desk's table shows a page (the page's `PAGE_SIZE`): a desk's start reads
/// the archive chunks the first page needs and leaves the rest for after it is ready.
pub const TABLE_PAGE_ROWS: usize = 50;

/// The desk's library: the one in the settings, else [`PLACEHOLDER_BRANCHCODE`].
pub fn desk_branchcode(settings: Option<&Settings>) -> Branchcode {
    match settings {
        Some(s) => s.branchcode.clone(),
        None => placeholder(),
    }
}

fn placeholder() -> Branchcode {
    // A constant that satisfies Branchcode's rules (7 characters, no control characters).
    Branchcode::parse(PLACEHOLDER_BRANCHCODE).unwrap_or_else(|_| unreachable!())
}

/// Whether a transaction was recorded before any library was set up.
pub fn has_placeholder_branch(tx: &Transaction) -> bool {
    tx.branchcode.as_str() == PLACEHOLDER_BRANCHCODE
}

/// The library a transaction is sent for: its own, or for a placeholder row the desk's library
/// now; `None` while no library is set up (the row must wait).
pub fn effective_branchcode(tx: &Transaction, settings: Option<&Settings>) -> Option<Branchcode> {
    match (has_placeholder_branch(tx), settings) {
        (false, _) => Some(tx.branchcode.clone()),
        (true, Some(s)) => Some(s.branchcode.clone()),
        (true, None) => None,
    }
}

/// A form of the desk page, as typed. `action` is `issue`, `return` or `payment`; the fields an
/// action does not use are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeskForm {
    /// `issue`, `return` or `payment`.
    pub action: String,
    /// Patron card number (checkout, payment).
    pub cardnumber: String,
    /// Item barcode (checkout, checkin).
    pub barcode: String,
    /// Amount (payment), `.` or `,` as decimal separator.
    pub amount: String,
}

/// Why a form could not become an action.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FormError {
    /// A field is not acceptable.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The action name is none of `issue`, `return`, `payment` (a page bug).
    #[error("unknown action {0:?}")]
    UnknownAction(String),
}

impl DeskForm {
    /// A checkout form.
    pub fn checkout(cardnumber: &str, barcode: &str) -> Self {
        DeskForm {
            action: "issue".into(),
            cardnumber: cardnumber.into(),
            barcode: barcode.into(),
            ..Self::default()
        }
    }

    /// A checkin form.
    pub fn checkin(barcode: &str) -> Self {
        DeskForm {
            action: "return".into(),
            barcode: barcode.into(),
            ..Self::default()
        }
    }

    /// A payment form.
    pub fn payment(cardnumber: &str, amount: &str) -> Self {
        DeskForm {
            action: "payment".into(),
            cardnumber: cardnumber.into(),
            amount: amount.into(),
            ..Self::default()
        }
    }

    /// Parses the fields the action uses, card number first.
    pub fn parse(&self) -> Result<Action, FormError> {
        Ok(match self.action.as_str() {
            "issue" => Action::Issue {
                cardnumber: Cardnumber::parse(&self.cardnumber)?,
                barcode: Barcode::parse(&self.barcode)?,
            },
            "return" => Action::Return {
                barcode: Barcode::parse(&self.barcode)?,
            },
            "payment" => Action::Payment {
                cardnumber: Cardnumber::parse(&self.cardnumber)?,
                amount: Amount::parse(&self.amount)?,
            },
            other => return Err(FormError::UnknownAction(other.to_owned())),
        })
    }
}

/// The name of an exported file: `koha-offline-<library>-<YYYYMMDD-HHMMSS>.koc` in the desk's
/// local time, without the library part for rows recorded before a library was set.
pub fn export_file_name(branchcode: &Branchcode, local_now: NaiveDateTime) -> String {
    let stamp = crate::zone::local_text(local_now, "", "-", "");
    if branchcode.as_str() == PLACEHOLDER_BRANCHCODE {
        format!("koha-offline-{stamp}.koc")
    } else {
        // Keep file names portable: letters, digits, `-` and `_` only.
        let safe: String = branchcode
            .as_str()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("koha-offline-{safe}-{stamp}.koc")
    }
}

/// The transactions an import adds: every good row that is not a duplicate of one in `journal`,
/// in file order, status `local`, recorded for `branchcode`. `random` supplies 64 random bits
/// per row for the new ids.
///
/// Duplicates are marked again against the journal as it is now, not as it was when the file
/// was read: while the librarian looked at the report, another desk may have imported the same
/// file, and adding its rows again would send everything to Koha twice.
pub fn imported_transactions(
    mut import: KocImport,
    journal: &Journal,
    branchcode: &Branchcode,
    mut random: impl FnMut() -> u64,
) -> Vec<Transaction> {
    import.mark_duplicates(journal.in_order());
    import
        .rows
        .iter()
        .filter(|row| row.duplicate_of.is_none())
        .map(|row| row.to_transaction(TransactionId::new(row.at, random()), branchcode.clone()))
        .collect()
}

/// Whether a desk form is recorded now. `asked_now` names what fires for it now (the journal's
/// warnings and the offline checks); `answered` names the question the librarian answered
/// "record anyway" to, if any. Recorded when nothing fires, or when everything that fires was
/// in that question: the answer stands for exactly what was asked, so a warning that fired
/// since (another desk's scan, a newer snapshot) is asked first.
pub fn may_record<'a>(
    asked_now: impl IntoIterator<Item = &'a str>,
    answered: Option<&[String]>,
) -> bool {
    asked_now
        .into_iter()
        .all(|name| answered.is_some_and(|answered| answered.iter().any(|a| a == name)))
}

/// Why the desk refused to clear everything.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ClearError {
    /// Requests are on their way to Koha; their answers must find their transactions.
    #[error("{count} transactions are being sent")]
    Sending {
        /// How many.
        count: usize,
    },
}

kinds!(ClearError {
    Sending => "sending",
});

/// What the librarian confirms before everything is deleted: how many rows, how many of them
/// Koha has not accepted (gone for good unless exported first), and the newest, so that a row
/// another desk tab records while the question is open is not deleted unseen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClearQuestion {
    /// Rows in all.
    pub total: usize,
    /// Rows Koha has not accepted.
    pub not_accepted: usize,
    /// The newest row.
    pub newest: TransactionId,
}

/// The question to ask before deleting everything; `None` when there is nothing to delete.
pub fn clear_question(journal: &Journal) -> Option<ClearQuestion> {
    let counts = journal.counts();
    journal.newest().map(|tx| ClearQuestion {
        total: counts.total,
        not_accepted: counts.not_accepted,
        newest: tx.id.clone(),
    })
}

/// What [`clear_all`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cleared {
    /// Everything was deleted: these.
    Removed(Vec<TransactionId>),
    /// The rows changed since the question the librarian answered (another tab recorded,
    /// deleted or sent): nothing was deleted. Ask this one (`None`: nothing left to delete).
    AskAgain(Option<ClearQuestion>),
}

/// Removes every transaction if they are still what the librarian was asked about (`answered`)
/// and none is being sent right now.
pub fn clear_all(journal: &mut Journal, answered: &ClearQuestion) -> Result<Cleared, ClearError> {
    let now = clear_question(journal);
    if now.as_ref() != Some(answered) {
        return Ok(Cleared::AskAgain(now));
    }
    match journal.counts().sending {
        0 => Ok(Cleared::Removed(journal.clear_all())),
        count => Err(ClearError::Sending { count }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::koc;
    use crate::zone::FixedZone;
    use chrono::{NaiveDate, TimeZone, Utc};

    #[test]
    fn forms_parse_only_the_fields_their_action_uses() {
        assert_eq!(
            DeskForm::checkin(" B1 ").parse().unwrap(),
            Action::Return {
                barcode: Barcode::parse("B1").unwrap()
            }
        );
        let mut form = DeskForm::checkout("", "B1");
        assert_eq!(form.parse().unwrap_err().to_string(), "cardnumber is empty");
        form.cardnumber = "C1".into();
        form.amount = "nonsense".into();
        assert!(form.parse().is_ok());
        assert_eq!(
            DeskForm::payment("C1", "1,234").parse().unwrap_err(),
            FormError::Input(InputError::AmountFormat)
        );
        assert_eq!(
            DeskForm::checkout("C1", "B\t1")
                .parse()
                .unwrap_err()
                .to_string(),
            "barcode contains a control character"
        );
        let bad = DeskForm {
            action: "renew".into(),
            ..DeskForm::default()
        };
        assert_eq!(
            bad.parse().unwrap_err().to_string(),
            "unknown action \"renew\""
        );
    }

    #[test]
    fn clear_all_waits_for_a_running_send() {
        let at = Utc.with_ymd_and_hms(2026, 3, 29, 9, 0, 0).unwrap();
        let mut journal = Journal::new();
        let id = TransactionId::new(at, 1);
        journal
            .record(Transaction::record(
                id.clone(),
                at,
                placeholder(),
                Action::Return {
                    barcode: Barcode::parse("B1").unwrap(),
                },
            ))
            .unwrap();
        journal
            .update(&id, |tx| tx.start_sending(at))
            .unwrap()
            .unwrap();
        let asked = clear_question(&journal).unwrap();
        assert_eq!(
            clear_all(&mut journal, &asked).unwrap_err().to_string(),
            "1 transactions are being sent"
        );
        assert_eq!(journal.len(), 1);
        journal
            .update(&id, |tx| tx.finish_sending(at, crate::Status::Queued))
            .unwrap()
            .unwrap();
        // Koha accepted it meanwhile: the question changed, so it is asked again.
        let again = clear_question(&journal).unwrap();
        assert_eq!((again.total, again.not_accepted), (1, 0));
        assert_eq!(
            clear_all(&mut journal, &asked).unwrap(),
            Cleared::AskAgain(Some(again.clone()))
        );
        assert_eq!(
            clear_all(&mut journal, &again).unwrap(),
            Cleared::Removed(vec![id])
        );
        assert!(journal.is_empty());
        assert_eq!(clear_question(&journal), None);
    }

    #[test]
    fn clear_all_deletes_nothing_the_librarian_was_not_asked_about() {
        let at = Utc.with_ymd_and_hms(2026, 3, 29, 9, 0, 0).unwrap();
        let checkin = |n: u64, barcode: &str| {
            let at = at + chrono::TimeDelta::seconds(n as i64);
            Transaction::record(
                TransactionId::new(at, n),
                at,
                placeholder(),
                Action::Return {
                    barcode: Barcode::parse(barcode).unwrap(),
                },
            )
        };
        let mut journal = Journal::new();
        journal.record(checkin(1, "B1")).unwrap();
        journal.record(checkin(2, "B2")).unwrap();
        let asked = clear_question(&journal).unwrap();
        assert_eq!((asked.total, asked.not_accepted), (2, 2));
        // Another tab deletes one and records one while the question is open: the same counts,
        // but not the rows the librarian saw.
        let first = journal.in_order().next().unwrap().id.clone();
        journal.forget_removed(&first);
        journal.record(checkin(3, "B3")).unwrap();
        let now = clear_question(&journal).unwrap();
        assert_eq!((now.total, now.not_accepted), (2, 2));
        assert_eq!(
            clear_all(&mut journal, &asked).unwrap(),
            Cleared::AskAgain(Some(now))
        );
        assert_eq!(journal.len(), 2, "nothing deleted");
        // All deleted elsewhere meanwhile: nothing left to ask about.
        let asked = clear_question(&journal).unwrap();
        for id in journal.clear_all() {
            assert!(journal.get(&id).is_none());
        }
        assert_eq!(
            clear_all(&mut journal, &asked).unwrap(),
            Cleared::AskAgain(None)
        );
    }

    #[test]
    fn file_names_carry_the_library_when_there_is_one() {
        let at = NaiveDate::from_ymd_opt(2026, 3, 29)
            .unwrap()
            .and_hms_opt(9, 5, 7)
            .unwrap();
        assert_eq!(
            export_file_name(&Branchcode::parse("DE-627").unwrap(), at),
            "koha-offline-DE-627-20260329-090507.koc"
        );
        assert_eq!(
            export_file_name(&Branchcode::parse("A/B").unwrap(), at),
            "koha-offline-A_B-20260329-090507.koc"
        );
        assert_eq!(
            export_file_name(&placeholder(), at),
            "koha-offline-20260329-090507.koc"
        );
    }

    #[test]
    fn placeholder_rows_wait_for_a_library() {
        let at = Utc.with_ymd_and_hms(2026, 3, 29, 9, 0, 0).unwrap();
        let tx = Transaction::record(
            TransactionId::new(at, 1),
            at,
            desk_branchcode(None),
            Action::Return {
                barcode: Barcode::parse("B1").unwrap(),
            },
        );
        assert!(has_placeholder_branch(&tx));
        assert_eq!(effective_branchcode(&tx, None), None);
    }

    #[test]
    fn a_form_is_recorded_when_nothing_fires_or_everything_firing_was_answered() {
        let answered = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert!(may_record([], None));
        assert!(!may_record(["expired"], None), "asked first");
        assert!(may_record(["expired"], Some(&answered(&["expired"]))));
        assert!(
            may_record([], Some(&answered(&["expired"]))),
            "what no longer fires needs nothing"
        );
        assert!(
            !may_record(["expired", "lost"], Some(&answered(&["expired"]))),
            "fired since the question: asked"
        );
        assert!(may_record(
            ["duplicate-scan", "lost"],
            Some(&answered(&["lost", "duplicate-scan"]))
        ));
    }

    #[test]
    fn imports_skip_duplicates_and_get_new_ids() {
        let zone = FixedZone::utc();
        let text = "Version=1.0\tGenerator=x\tGeneratorVersion=1\r\n\
                    2026-03-29 10:00:00\treturn\tB1\r\n\
                    2026-03-29 10:00:01\tissue\tC1\tB2\r\n\
                    bad line";
        let import = koc::read(text.as_bytes(), &zone, None);
        assert_eq!(import.errors.len(), 1);
        let at = Utc.with_ymd_and_hms(2026, 3, 29, 10, 0, 0).unwrap();
        let stored = Transaction::record(
            TransactionId::new(at, 9),
            at,
            placeholder(),
            Action::Return {
                barcode: Barcode::parse("B1").unwrap(),
            },
        );
        let mut journal = Journal::new();
        let library = Branchcode::parse("DE-25").unwrap();
        let mut n = 0;
        let mut random = || {
            n += 1;
            n
        };
        // The report was made before: nothing marked. Since then the row was recorded (another
        // desk imported the same file), so it is left out now.
        let mut reported = import.clone();
        assert_eq!(reported.mark_duplicates([]), 0);
        journal.record(stored).unwrap();
        let added = imported_transactions(reported, &journal, &library, &mut random);
        assert_eq!(added.len(), 1);
        assert_eq!(added[0].branchcode.as_str(), "DE-25");
        assert_eq!(added[0].status().name(), "local");
        assert_eq!(
            added[0].id,
            TransactionId::new(at + chrono::TimeDelta::seconds(1), 1)
        );
        // Importing what was just imported adds nothing.
        for tx in added {
            journal.record(tx).unwrap();
        }
        assert!(imported_transactions(import, &journal, &library, &mut random).is_empty());
        assert_eq!(koc::TimeBasis::Utc.other(), koc::TimeBasis::ServerZone);
        assert_eq!(koc::TimeBasis::ServerZone.other(), koc::TimeBasis::Utc);
    }
}
