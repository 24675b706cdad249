//! What the desk page calls: record, list a page, delete with undo, clear, export and import.

use super::dto::{
    js_error, to_js, DeskInfoDto, ErrorDto, ExportDto, ExportOptionsDto, ImportReportDto, PageDto,
    RecordDto, RowDto,
};
use super::zone::IntlZone;
use super::{browser, checks, state};
use crate::desk::{self, DeskForm};
use crate::export;
use crate::journal::{self, Filter};
use crate::koc::{self, KocImport, TimeBasis};
use crate::settings::koha_zone_name;
use crate::zone::to_local;
use crate::{Transaction, TransactionId};
use serde::Serialize;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use wasm_bindgen::prelude::*;

thread_local! {
    /// Transactions deleted from this page, kept for Undo.
    static DELETED: RefCell<HashMap<TransactionId, Transaction>> = RefCell::new(HashMap::new());
    /// A file read but not yet added (the import report is on screen).
    static PENDING_IMPORT: RefCell<Option<KocImport>> = const { RefCell::new(None) };
}

fn storage_error(e: state::StorageFailure) -> JsValue {
    js_error(ErrorDto::new("storage", None, e.0))
}

fn kind_error(kind: &str, detail: impl ToString) -> JsValue {
    js_error(ErrorDto::new(kind, None, detail))
}

/// What the desk shows above its forms after opening the stores.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OpenedDeskDto {
    #[serde(flatten)]
    info: DeskInfoDto,
    /// Entries that could not be read, kept aside (`quarantine:` keys): the desk says so.
    quarantine: QuarantineDto,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct QuarantineDto {
    count: usize,
    keys: Vec<String>,
}

/// Loads both stores (reconciling them); returns what the desk shows above its forms: the desk
/// info (as [`desk_info`]) and `quarantine: {count, keys}`, the stored entries that could not be
/// read and are kept aside, found at this start or an earlier one.
#[wasm_bindgen(js_name = openDesk)]
pub async fn open_desk() -> Result<JsValue, JsValue> {
    let opened = state::open(true, Some(desk::TABLE_PAGE_ROWS))
        .await
        .map_err(storage_error)?;
    opened_desk(opened.quarantined)
}

/// The desk's settings and the entries kept aside (`quarantined`, their keys).
fn opened_desk(quarantined: Vec<String>) -> Result<JsValue, JsValue> {
    to_js(&OpenedDeskDto {
        info: DeskInfoDto::from(state::settings().as_ref()),
        quarantine: QuarantineDto {
            count: quarantined.len(),
            keys: quarantined,
        },
    })
}

/// Once the desk shows its start: reads the rest of the archive (see `state::finish_open`) and
/// answers `{quarantine: {count, keys}}` again, with any chunk that turned out unreadable.
#[wasm_bindgen(js_name = finishOpen)]
pub async fn finish_open() -> Result<JsValue, JsValue> {
    let quarantined = state::finish_open().await.map_err(storage_error)?;
    opened_desk(quarantined)
}

/// Whether a library is set up, which, and whether to play sounds.
#[wasm_bindgen(js_name = deskInfo)]
pub fn desk_info() -> Result<JsValue, JsValue> {
    to_js(&DeskInfoDto::from(state::settings().as_ref()))
}

/// Records the action of a desk form (`{action, cardnumber, barcode, amount}`). A form the
/// journal warns about, or an offline check fires for, is not recorded unless `answered` (the
/// `asked` names of the question the librarian answered "record anyway" to) covers all of it
/// ([`desk::may_record`]): the answer lists the warnings, the checks and `asked`, and the page
/// asks. Resolves only after `browser.storage.local` has stored it.
///
/// Besides the journal's `warnings`, the answer lists the offline `checks` that fired (from the
/// stored snapshot of Koha): each `{check, kind, …details, age}`.
#[wasm_bindgen(js_name = record)]
pub async fn record(form: JsValue, answered: JsValue) -> Result<JsValue, JsValue> {
    let form: DeskForm = serde_wasm_bindgen::from_value(form)?;
    let answered: Option<Vec<String>> = serde_wasm_bindgen::from_value(answered)?;
    let action = form.parse().map_err(js_error)?;
    let at = browser::now();
    let warnings = state::with_journal(|j| j.warnings_for(&action, at));
    let checks = checks::desk_checks(&action, at);
    let asked: Vec<&'static str> = warnings
        .iter()
        .map(|w| w.kind())
        .chain(checks.iter().map(|c| c.check))
        .collect();
    if !desk::may_record(asked.iter().copied(), answered.as_deref()) {
        return to_js(&RecordDto {
            recorded: false,
            warnings: Some(warnings),
            checks: Some(checks),
            asked: Some(asked),
            row: None,
        });
    }
    let branch = desk::desk_branchcode(state::settings().as_ref());
    let id = TransactionId::new(at, browser::random_u64()?);
    let tx = Transaction::record(id, at, branch, action);
    state::with_journal(|j| j.record(tx.clone()).map(drop))
        .map_err(|e| kind_error(e.kind(), &e))?;
    checks::recorded(&tx.action, answered.is_some().then_some(&checks[..]));
    state::persist(&tx).await.map_err(storage_error)?;
    to_js(&RecordDto {
        recorded: true,
        warnings: None,
        checks: None,
        asked: None,
        row: Some(RowDto::from(&tx)),
    })
}

/// One page of the table, newest first, with the counts by status. Its `offset` is the one
/// asked for, or the last page's when that is past the end.
#[wasm_bindgen(js_name = listPage)]
pub fn list_page(filter: String, offset: u32, limit: u32) -> Result<JsValue, JsValue> {
    state::with_listing(
        &Filter::text(&filter),
        offset as usize,
        limit as usize,
        |page, counts| to_js(&PageDto::new(page, counts)),
    )
}

/// Deletes a transaction Koha has not accepted (a mis-scan); [`undo_delete`] puts it back.
/// Refused while another page sends (`send-running-elsewhere`); holds the send lock until the
/// deletion is stored.
#[wasm_bindgen(js_name = deleteTransaction)]
pub async fn delete_transaction(id: String) -> Result<JsValue, JsValue> {
    let id = TransactionId::from_stored(&id);
    let (_lock, held) = state::lock_unless_sending().await;
    journal::change_allowed(held).map_err(|e| kind_error(e.kind(), &e))?;
    // An answer another page stored (or holds only in the mirror) may show it accepted by now.
    state::refresh_from_stores_of(std::slice::from_ref(&id)).await;
    let tx = state::with_journal(|j| j.delete(&id)).map_err(|e| kind_error(e.kind(), &e))?;
    DELETED.with(|d| d.borrow_mut().insert(id.clone(), tx.clone()));
    state::forget_pending(std::slice::from_ref(&id))
        .await
        .map_err(storage_error)?;
    state::forget(std::slice::from_ref(&id))
        .await
        .map_err(storage_error)?;
    to_js(&RowDto::from(&tx))
}

/// Records a deleted transaction again, with the same id and history.
#[wasm_bindgen(js_name = undoDelete)]
pub async fn undo_delete(id: String) -> Result<JsValue, JsValue> {
    let id = TransactionId::from_stored(&id);
    let tx = DELETED
        .with(|d| d.borrow_mut().remove(&id))
        .ok_or_else(|| kind_error("not-found", &id))?;
    state::with_journal(|j| j.record(tx.clone()).map(drop))
        .map_err(|e| kind_error(e.kind(), &e))?;
    state::persist(&tx).await.map_err(storage_error)?;
    to_js(&RowDto::from(&tx))
}

/// Deletes every transaction Koha accepted; returns how many. Refused while another page sends,
/// like [`delete_transaction`].
#[wasm_bindgen(js_name = clearSent)]
pub async fn clear_sent() -> Result<u32, JsValue> {
    let (_lock, held) = state::lock_unless_sending().await;
    journal::change_allowed(held).map_err(|e| kind_error(e.kind(), &e))?;
    let ids = state::with_journal(|j| j.clear_accepted());
    state::forget_pending(&ids).await.map_err(storage_error)?;
    state::forget(&ids).await.map_err(storage_error)?;
    state::forget_bulk(&ids).await.map_err(storage_error)?;
    Ok(ids.len() as u32)
}

/// What to ask before deleting everything: `{total, notAccepted, newest}`, or `null` when there
/// is nothing to delete ([`desk::clear_question`]).
#[wasm_bindgen(js_name = clearAllQuestion)]
pub fn clear_all_question() -> Result<JsValue, JsValue> {
    to_js(&state::with_journal(|j| desk::clear_question(j)))
}

/// Deletes everything if it is still what `answered` (a [`clear_all_question`] the librarian
/// confirmed) asked about: `{cleared: n}`; otherwise deletes nothing and answers
/// `{askAgain: question}` (`null`: nothing left). Refused while a send runs, here or in another
/// page.
#[wasm_bindgen(js_name = clearAll)]
pub async fn clear_all(answered: JsValue) -> Result<JsValue, JsValue> {
    let answered: desk::ClearQuestion = serde_wasm_bindgen::from_value(answered)?;
    let (_lock, held) = state::lock_unless_sending().await;
    journal::change_allowed(held).map_err(|e| kind_error(e.kind(), &e))?;
    let cleared = state::with_journal(|j| desk::clear_all(j, &answered))
        .map_err(|e| kind_error(e.kind(), e.to_string()))?;
    let ids = match cleared {
        desk::Cleared::Removed(ids) => ids,
        desk::Cleared::AskAgain(question) => return to_js(&ClearAllDto::AskAgain(question)),
    };
    state::forget_pending(&ids).await.map_err(storage_error)?;
    state::forget(&ids).await.map_err(storage_error)?;
    state::forget_bulk(&ids).await.map_err(storage_error)?;
    to_js(&ClearAllDto::Cleared(ids.len()))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum ClearAllDto {
    Cleared(usize),
    AskAgain(Option<desk::ClearQuestion>),
}

/// The zone of a `.koc` file's times, and its name: the Koha server's (settings), or before any
/// setup the desk's own. One this browser cannot read is refused (`unknown-zone`), never
/// replaced by another: every time in the file would be off by the difference.
fn koc_zone() -> Result<(Rc<IntlZone>, String), JsValue> {
    let name = koha_zone_name(state::settings().as_ref(), IntlZone::browser_zone);
    let zone = IntlZone::named(&name).map_err(|_| kind_error("unknown-zone", &name))?;
    Ok((zone, name))
}

/// Exports with the librarian's answers so far (`{confirmed, declined}`: questions exactly as
/// asked). Answers `{questions}` to ask first, writing nothing; or writes one `.koc` file per
/// library of the rows [`export::plan`] takes, stores them as exported and answers
/// `{files: [{name, text, count}], leftOut}` for the page to download.
///
/// Refused while another page sends (`send-running-elsewhere`): its rows may be reaching Koha
/// right now. Refused too when this browser does not know Koha's time zone (`unknown-zone`).
///
/// Each call holds the send lock from its read of the stores to its export record, so the rows
/// it marks are the rows it read; between calls (a question shown) a send may start, and the
/// next call then sees what it changed, asking again if a question changed.
#[wasm_bindgen(js_name = exportKoc)]
pub async fn export_koc(options: JsValue) -> Result<JsValue, JsValue> {
    let answers = serde_wasm_bindgen::from_value::<ExportOptionsDto>(options)?.into();
    let (_lock, held) = state::lock_unless_sending().await;
    journal::change_allowed(held).map_err(|e| kind_error(e.kind(), &e))?;
    let (zone, _) = koc_zone()?;
    state::refresh_from_stores().await;
    let outcome = state::with_journal(|j| export::write(j.in_order(), &answers, &*zone))
        .map_err(|e| kind_error(e.kind(), &e))?;
    let now = browser::now();
    // Everything that can fail comes before the rows are marked exported: marked, they are
    // left out of the next export, so the file must reach the page.
    let local_now = to_local(now, &*IntlZone::named(&IntlZone::browser_zone())?);
    let record = outcome.record(now);
    let files = to_js(&ExportDto::new(outcome, local_now))?;
    if let Some(record) = record {
        state::record_export(&record).await.map_err(storage_error)?;
    }
    Ok(files)
}

/// Reads a `.koc` file and returns the import report; nothing is added yet. `basis` (`utc` or
/// `server-zone`) overrides the time basis the file's header implies. Refused when this browser
/// does not know Koha's time zone (`unknown-zone`).
#[wasm_bindgen(js_name = readImport)]
pub fn read_import(bytes: Vec<u8>, basis: JsValue) -> Result<JsValue, JsValue> {
    let basis: Option<TimeBasis> = serde_wasm_bindgen::from_value(basis)?;
    let (zone, zone_name) = koc_zone()?;
    let mut import = koc::read(&bytes, &*zone, basis);
    state::with_journal(|j| import.mark_duplicates(j.in_order()));
    let report = ImportReportDto::new(&import, zone_name);
    PENDING_IMPORT.with(|p| *p.borrow_mut() = Some(import));
    to_js(&report)
}

/// Adds the good, non-duplicate rows of the file last read, as new `local` transactions.
#[wasm_bindgen(js_name = commitImport)]
pub async fn commit_import() -> Result<u32, JsValue> {
    let import = PENDING_IMPORT
        .with(|p| p.borrow_mut().take())
        .ok_or_else(|| kind_error("not-found", "no file read"))?;
    let branch = desk::desk_branchcode(state::settings().as_ref());
    let mut random_error = None;
    let txs = state::with_journal(|j| {
        desk::imported_transactions(import, j, &branch, || {
            browser::random_u64().unwrap_or_else(|e| {
                random_error = Some(e);
                0
            })
        })
    });
    if let Some(e) = random_error {
        return Err(e);
    }
    for tx in &txs {
        state::with_journal(|j| j.record(tx.clone()).map(drop))
            .map_err(|e| kind_error(e.kind(), &e))?;
    }
    let count = txs.len() as u32;
    state::persist_many(&txs).await.map_err(storage_error)?;
    Ok(count)
}

/// Forgets the file last read (the librarian cancelled the import).
#[wasm_bindgen(js_name = cancelImport)]
pub fn cancel_import() {
    PENDING_IMPORT.with(|p| *p.borrow_mut() = None);
}
