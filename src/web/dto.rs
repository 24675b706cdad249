//! Plain data crossing into the pages. Separate from the domain types on purpose: the pages
//! see strings and numbers, never the core's invariants.

use crate::desk::{export_file_name, FormError, PLACEHOLDER_BRANCHCODE};
use crate::export::{Answers, Export, Question};
use crate::journal::{Counts, Page, Warning};
use crate::koc::{KocImport, KocWarning, LineErrorReason, TimeBasis};
use crate::settings::Settings;
use crate::sync::Level;
use crate::{koha, InputError, Transaction};
use chrono::{DateTime, NaiveDateTime};
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;

/// One row of the transactions table.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RowDto {
    pub id: String,
    pub action: &'static str,
    pub cardnumber: Option<String>,
    pub barcode: Option<String>,
    pub amount: Option<String>,
    pub status: &'static str,
    /// Koha's own text (a rejection), shown beside its translation.
    pub answer: Option<String>,
    /// The i18n key (kebab-case) of the answer or of the reason it failed.
    pub answer_key: Option<String>,
    /// Why it failed or is uncertain, as a stable kind (e.g. `connection-lost`).
    pub reason: Option<String>,
    pub recorded_at: f64,
    /// Not accepted by Koha and not being sent: the desk offers to delete it.
    pub deletable: bool,
    pub branchcode: String,
    /// Written to a `.koc` file at some point.
    pub exported: bool,
}

impl From<&Transaction> for RowDto {
    fn from(tx: &Transaction) -> Self {
        use crate::Status::*;
        let (answer, answer_key) = match tx.status() {
            Rejected { message } => (
                Some(message.clone()),
                koha::message_key(message).map(str::to_owned),
            ),
            Failed { .. } | Uncertain { .. } => (
                None,
                tx.status()
                    .detail()
                    .map(|reason| format!("reason-{reason}")),
            ),
            Queued => (None, Some("koha-added".to_owned())),
            Applied => (None, Some("koha-success".to_owned())),
            _ => (None, None),
        };
        RowDto {
            id: tx.id.to_string(),
            action: tx.action.koha_name(),
            cardnumber: tx.action.cardnumber().map(ToString::to_string),
            barcode: tx.action.barcode().map(ToString::to_string),
            amount: tx.action.amount().map(|a| a.to_string()),
            status: tx.status().name(),
            answer,
            answer_key,
            reason: match tx.status() {
                Failed { .. } | Uncertain { .. } => tx.status().detail().map(str::to_owned),
                _ => None,
            },
            recorded_at: tx.recorded_at.timestamp_millis() as f64,
            deletable: crate::journal::deletion_refused(tx).is_none(),
            branchcode: tx.branchcode.to_string(),
            exported: tx.exported_at.is_some(),
        }
    }
}

/// What `record` answers: `{recorded: false, warnings}` (nothing stored; the page asks) or
/// `{recorded: true, row}`.
#[derive(Serialize)]
pub struct RecordDto {
    pub recorded: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warnings: Option<Vec<Warning>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<Vec<crate::checks::DeskCheck>>,
    /// The question's names, for the page to pass back with the librarian's "record anyway".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asked: Option<Vec<&'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<RowDto>,
}

/// One exported `.koc` file for the page to download.
#[derive(Serialize)]
pub struct ExportFileDto {
    pub name: String,
    pub text: String,
    pub count: usize,
}

/// A question an export asks before taking some rows, as the page shows it and hands it back:
/// `{kind: "already-exported", count, payments, at}` (`at`: milliseconds since 1970, the latest
/// export of those rows) or `{kind: "uncertain", count, payments}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ExportQuestionDto {
    AlreadyExported {
        count: usize,
        payments: usize,
        at: f64,
    },
    Uncertain {
        count: usize,
        payments: usize,
    },
}

impl From<&Question> for ExportQuestionDto {
    fn from(q: &Question) -> Self {
        match *q {
            Question::AlreadyExported {
                count,
                payments,
                at,
            } => ExportQuestionDto::AlreadyExported {
                count,
                payments,
                at: at.timestamp_millis() as f64,
            },
            Question::Uncertain { count, payments } => {
                ExportQuestionDto::Uncertain { count, payments }
            }
        }
    }
}

impl ExportQuestionDto {
    /// The core's question; `None` for a time no question can hold (it then answers nothing).
    fn question(&self) -> Option<Question> {
        Some(match *self {
            ExportQuestionDto::AlreadyExported {
                count,
                payments,
                at,
            } => Question::AlreadyExported {
                count,
                payments,
                at: DateTime::from_timestamp_millis(at as i64)?,
            },
            ExportQuestionDto::Uncertain { count, payments } => {
                Question::Uncertain { count, payments }
            }
        })
    }
}

/// What `exportKoc` takes: the questions answered so far, each exactly as it was asked.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ExportOptionsDto {
    /// Answered "export them".
    pub confirmed: Vec<ExportQuestionDto>,
    /// Answered "leave them out".
    pub declined: Vec<ExportQuestionDto>,
}

impl From<ExportOptionsDto> for Answers {
    fn from(o: ExportOptionsDto) -> Self {
        let questions = |list: Vec<ExportQuestionDto>| {
            list.iter()
                .filter_map(ExportQuestionDto::question)
                .collect()
        };
        Answers {
            confirmed: questions(o.confirmed),
            declined: questions(o.declined),
        }
    }
}

/// Rows an export left out, by reason.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeftOutDto {
    pub sending: usize,
    pub rejected: usize,
    pub already_exported: usize,
    pub uncertain: usize,
}

/// What `exportKoc` answers: `{questions}` to ask first (nothing was written), or
/// `{files: [{name, text, count}], leftOut, level}`.
#[derive(Serialize)]
#[serde(untagged)]
pub enum ExportDto {
    Ask {
        questions: Vec<ExportQuestionDto>,
    },
    Files {
        files: Vec<ExportFileDto>,
        #[serde(rename = "leftOut")]
        left_out: LeftOutDto,
        /// How the page's message reads (`LeftOut::level`).
        level: Level,
    },
}

impl ExportDto {
    /// The page's view of an export done at `local_now` (the desk's local time, for the names).
    pub fn new(export: Export, local_now: NaiveDateTime) -> Self {
        match export {
            Export::Ask(questions) => ExportDto::Ask {
                questions: questions.iter().map(ExportQuestionDto::from).collect(),
            },
            Export::Files { files, left_out } => ExportDto::Files {
                level: left_out.level(files.iter().map(|(_, f)| f.ids.len()).sum()),
                files: files
                    .into_iter()
                    .map(|(branch, file)| ExportFileDto {
                        name: export_file_name(&branch, local_now),
                        count: file.ids.len(),
                        text: file.text,
                    })
                    .collect(),
                left_out: LeftOutDto {
                    sending: left_out.sending,
                    rejected: left_out.rejected,
                    already_exported: left_out.already_exported,
                    uncertain: left_out.uncertain,
                },
            },
        }
    }
}

/// An error the page maps to a translated message by `kind` (and `field`).
#[derive(Serialize)]
pub struct ErrorDto {
    pub kind: String,
    pub field: Option<String>,
    pub detail: String,
}

impl ErrorDto {
    pub fn new(kind: &str, field: Option<String>, detail: impl ToString) -> Self {
        ErrorDto {
            kind: kind.to_owned(),
            field,
            detail: detail.to_string(),
        }
    }
}

impl From<InputError> for ErrorDto {
    fn from(e: InputError) -> Self {
        ErrorDto::new(e.kind(), e.field().map(|f| f.to_string()), &e)
    }
}

impl From<FormError> for ErrorDto {
    fn from(e: FormError) -> Self {
        match e {
            FormError::Input(e) => e.into(),
            other => ErrorDto::new("unknown-action", None, &other),
        }
    }
}

/// What the desk shows above its forms.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeskInfoDto {
    /// Settings are stored (a Koha connection is set up).
    pub configured: bool,
    /// The desk's library, or the placeholder.
    pub branchcode: String,
    /// Play sounds (on when nothing is set up).
    pub sounds: bool,
}

impl From<Option<&Settings>> for DeskInfoDto {
    fn from(settings: Option<&Settings>) -> Self {
        DeskInfoDto {
            configured: settings.is_some(),
            branchcode: settings.map_or(PLACEHOLDER_BRANCHCODE.to_owned(), |s| {
                s.branchcode.to_string()
            }),
            sounds: settings.is_none_or(|s| s.sounds),
        }
    }
}

/// One page of the table.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageDto {
    pub rows: Vec<RowDto>,
    /// Rows matching the filter in all.
    pub total: usize,
    pub offset: usize,
    pub counts: Counts,
}

impl PageDto {
    pub fn new(page: Page<'_>, counts: Counts) -> Self {
        PageDto {
            rows: page.rows.into_iter().map(RowDto::from).collect(),
            total: page.total,
            offset: page.offset,
            counts,
        }
    }
}

/// A bad line, or a warning, of an import: `kind` maps to an `error_<kind>` or
/// `importWarning_<kind>` i18n key; `field` and `value` fill it.
#[derive(Serialize)]
pub struct ImportLineDto {
    pub line: Option<usize>,
    pub kind: String,
    pub field: Option<String>,
    pub value: Option<String>,
}

/// What a `.koc` file holds, shown before anything is added.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReportDto {
    /// Rows that will be added.
    pub good: usize,
    /// Rows identical to stored transactions; skipped.
    pub duplicates: usize,
    pub errors: Vec<ImportLineDto>,
    pub warnings: Vec<ImportLineDto>,
    /// `utc` or `server-zone`.
    pub basis: TimeBasis,
    /// The basis "read the other way" passes back to `readImport`.
    pub other_basis: TimeBasis,
    pub generator: Option<String>,
    /// The zone `server-zone` means (the settings', else the browser's).
    pub zone: String,
}

impl ImportReportDto {
    pub fn new(import: &KocImport, zone: String) -> Self {
        let duplicates = import
            .rows
            .iter()
            .filter(|r| r.duplicate_of.is_some())
            .count();
        let errors = import
            .errors
            .iter()
            .map(|e| {
                let (kind, field, value) = match &e.reason {
                    LineErrorReason::Invalid(input) => (
                        input.kind().to_owned(),
                        input.field().map(|f| f.to_string()),
                        None,
                    ),
                    LineErrorReason::MissingField { field } => (
                        "line-missing-field".to_owned(),
                        Some(field.to_string()),
                        None,
                    ),
                    LineErrorReason::UnknownCommand { command } => (
                        "line-unknown-command".to_owned(),
                        None,
                        Some(command.clone()),
                    ),
                    LineErrorReason::BadTimestamp { text }
                    | LineErrorReason::TimestampOutOfRange { text } => {
                        (format!("line-{}", e.kind()), None, Some(text.clone()))
                    }
                    other => (format!("line-{}", other.kind()), None, None),
                };
                ImportLineDto {
                    line: Some(e.line),
                    kind,
                    field,
                    value,
                }
            })
            .collect();
        let warnings = import
            .warnings
            .iter()
            .map(|w| {
                let (line, value) = match w {
                    KocWarning::NoHeader => (None, None),
                    KocWarning::UnknownVersion { version } => (None, Some(version.clone())),
                    KocWarning::BlankLines { count } => (None, Some(count.to_string())),
                    KocWarning::ExtraFields { line, .. }
                    | KocWarning::AmbiguousTime { line }
                    | KocWarning::SkippedTime { line } => (Some(*line), None),
                };
                ImportLineDto {
                    line,
                    kind: w.kind().to_owned(),
                    field: None,
                    value,
                }
            })
            .collect();
        ImportReportDto {
            good: import.rows.len() - duplicates,
            duplicates,
            errors,
            warnings,
            basis: import.basis,
            other_basis: import.basis.other(),
            generator: import.header.as_ref().and_then(|h| h.generator.clone()),
            zone,
        }
    }
}

/// Serialises plain data for the page (objects, not Maps).
pub fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(Into::into)
}

/// Turns any error into the `{kind, field, detail}` object the page expects.
pub fn js_error(e: impl Into<ErrorDto>) -> JsValue {
    let dto: ErrorDto = e.into();
    to_js(&dto).unwrap_or_else(|_| JsValue::from_str(&dto.detail))
}
