//! A deterministic simulation of desks, their shared storage, Koha and the faults between them.
//!
//! One seed decides every choice: which page acts, what the librarian does, which write fails or
//! lands late, which answer is lost, when a page is killed, how the desk clock steps. The pages
//! use the core exactly as the browser shell does (journal, store layout and start-up, the send
//! run's commands); only the browser (storage, locks, `storage.onChanged`) and Koha are models.
//! The promises are checked after every step, and once the world has come to rest after the
//! last one, that every page shows what the stores hold; a failure names its seed, which
//! replays it.
#![allow(dead_code, clippy::unwrap_used)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use koha_offline_circ::desk;
use koha_offline_circ::journal::Filter;
use koha_offline_circ::koha::{self, HttpRequest, Method, NoAnswer, Reply, AUTH_PATH};
use koha_offline_circ::settings::{Settings, SettingsForm};
use koha_offline_circ::store::{
    self, Barrier, Change, EntryChange, ExportRecord, LazyText, ReadEntries, Replica,
};
use koha_offline_circ::sync::{
    Command, ExportedChoice, PerformId, RunEnd, RunOptions, SendRun, Setup, StorageRefused,
};
use koha_offline_circ::{Action, Amount, Barcode, Cardnumber, Status, Transaction, TransactionId};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

/// SplitMix64: small, fast, and the same on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// What Koha did with one request (the fault the seed chose for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    DropBeforeStore,
    DropAfterStore,
    ServerErrorBefore,
    ServerErrorAfterStore,
    TimeoutAfterStore,
    /// Firefox silently sent the request a second time on a new connection: Koha processed it
    /// twice, the desk saw one clean answer. The add-on cannot see or prevent this one.
    SilentResend,
    /// The CSRF token expired: 403, nothing processed.
    Forbidden,
}

/// Which Koha the desk talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// ≤ 23.11: no token, P3.
    Legacy,
    /// 24.05+: a token, P1 (or P2 with a session login).
    Csrf,
    /// 24.05+ under Plack without the token header: only GET works.
    GetOnly,
}

/// One operation Koha holds (a queue row, or one it applied).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct WireOp {
    action: String,
    barcode: String,
    cardnumber: String,
    amount: String,
    timestamp: String,
}

pub struct Koha {
    era: Era,
    /// How often Koha holds each operation: sent by the desk, repeated by the browser, or
    /// uploaded in a `.koc` file.
    held: HashMap<WireOp, usize>,
    /// Of those, how many the browser repeated on its own.
    repeated: HashMap<WireOp, usize>,
    /// Apply mode: which card has each item.
    loans: HashMap<String, String>,
    /// Live login sessions (P2).
    sessions: usize,
}

impl Koha {
    fn new(era: Era) -> Koha {
        Koha {
            era,
            held: HashMap::new(),
            repeated: HashMap::new(),
            loans: HashMap::new(),
            sessions: 0,
        }
    }

    fn op_of(request: &HttpRequest) -> WireOp {
        let p = |n: &str| request.param(n).unwrap_or("").to_owned();
        WireOp {
            action: p("action"),
            barcode: p("barcode"),
            cardnumber: p("cardnumber"),
            amount: p("amount"),
            timestamp: p("timestamp"),
        }
    }

    /// Applies or queues one operation; the answer's text.
    fn process(&mut self, op: &WireOp, pending: bool) -> &'static str {
        *self.held.entry(op.clone()).or_default() += 1;
        if pending {
            return "Added.";
        }
        match op.action.as_str() {
            "issue" => {
                self.loans.insert(op.barcode.clone(), op.cardnumber.clone());
                "Success."
            }
            "return" => match self.loans.remove(&op.barcode) {
                Some(_) => "Success.",
                None => "Item not issued.",
            },
            _ => "Success.",
        }
    }

    fn http(status: u16, body: &str, token: Option<&str>) -> Reply {
        Reply::Http {
            status,
            csrf_token: token.map(str::to_owned),
            date: None,
            body: body.into(),
        }
    }

    /// Answers a request, with `fault` for a transaction request.
    fn answer(&mut self, request: &HttpRequest, fault: Fault) -> Reply {
        let auth = request.url.ends_with(AUTH_PATH);
        let token = matches!(self.era, Era::Csrf).then_some("tok");
        if request.url.contains("logout") {
            self.sessions = self.sessions.saturating_sub(1);
            return Koha::http(200, "", None);
        }
        match (auth, request.method, request.param("action")) {
            (true, Method::Get, _) => Reply::Http {
                status: 200,
                csrf_token: token.map(str::to_owned),
                date: None,
                body: "<response><status>anon</status></response>".into(),
            },
            (true, Method::Post, _) => {
                self.sessions += 1;
                Reply::Http {
                    status: 200,
                    csrf_token: token.map(str::to_owned),
                    date: None,
                    body: "<response><status>ok</status></response>".into(),
                }
            }
            (false, Method::Post, Some("")) if self.era == Era::GetOnly => {
                Koha::http(403, "", None)
            }
            (false, _, Some("")) => Koha::http(200, "", None),
            (false, _, Some(_)) => {
                let op = Koha::op_of(request);
                let pending = request.param("pending") == Some("true");
                let lost = Reply::NoAnswer {
                    why: NoAnswer::Network,
                };
                match fault {
                    Fault::None => Koha::http(200, self.process(&op, pending), None),
                    Fault::DropBeforeStore => lost,
                    Fault::DropAfterStore => {
                        self.process(&op, pending);
                        lost
                    }
                    Fault::ServerErrorBefore => Koha::http(500, "<html/>", None),
                    Fault::ServerErrorAfterStore => {
                        self.process(&op, pending);
                        Koha::http(500, "<html/>", None)
                    }
                    Fault::TimeoutAfterStore => {
                        self.process(&op, pending);
                        Reply::NoAnswer {
                            why: NoAnswer::Timeout,
                        }
                    }
                    Fault::SilentResend => {
                        self.process(&op, pending);
                        *self.repeated.entry(op.clone()).or_default() += 1;
                        Koha::http(200, self.process(&op, pending), None)
                    }
                    Fault::Forbidden if request.headers.is_empty() => {
                        Koha::http(200, self.process(&op, pending), None)
                    }
                    Fault::Forbidden => Koha::http(403, "", None),
                }
            }
            _ => Koha::http(404, "", None),
        }
    }
}

/// The browser profile's storage: the store of record and the mirror, shared by every page.
#[derive(Default)]
pub struct Storage {
    primary: BTreeMap<String, Value>,
    mirror: BTreeMap<String, Value>,
    /// The store of record refuses writes (a full disk) while set.
    primary_down: bool,
    /// The mirror refuses puts (a full `localStorage`) while set.
    mirror_down: bool,
    /// Bumped on every change, so the checks read the stores only when they changed.
    version: u64,
}

/// One open desk page.
pub struct Page {
    /// The page's copy of the stores, as the shell keeps it.
    replica: Replica,
    /// `storage.onChanged` events not delivered yet: (key, new value, old value).
    inbox: VecDeque<(String, Option<Value>, Option<Value>)>,
    /// Deleted here, kept for Undo.
    deleted: Vec<Transaction>,
    run: Option<ActiveRun>,
}

struct ActiveRun {
    run: SendRun,
    /// The command to perform next; `None` after a `Perform` was started: the shell polls.
    command: Option<Command>,
    /// Started `Perform`s whose results have not come back. Each store-of-record write was
    /// issued when its command was given: the shell starts the write at once, in the same task,
    /// so writes land in the order they are issued; only the answers and results arrive later,
    /// in any order.
    outstanding: Vec<Outstanding>,
    /// The transactions whose requests Koha stored from this run, in the order it stored them.
    stored_by_koha: Vec<Transaction>,
}

struct Outstanding {
    id: PerformId,
    request: Option<HttpRequest>,
    /// Whether it writes to the store of record (see [`Unlanded`]).
    writes: bool,
}

/// A send run's store-of-record write, issued and not yet carried out. Firefox carries out
/// `storage.local.set` after the call returns, in the order the calls were made: by the time
/// anything else happens it has landed, but a page killed right after issuing it may lose it
/// (and every write it issued after it).
struct Unlanded {
    page: usize,
    id: PerformId,
    txs: Vec<Transaction>,
}

/// The librarian's confirmations, which alone may let Koha hold an operation twice.
#[derive(Default)]
struct Confirmed {
    /// Per transaction: how many extra copies the librarian accepted.
    extra: HashMap<TransactionId, usize>,
}

/// A whole history.
pub struct World {
    pub rng: Rng,
    storage: Storage,
    pages: Vec<Option<Page>>,
    /// The page holding the `koha-send` lock.
    lock: Option<usize>,
    koha: Koha,
    settings: Option<Settings>,
    full_settings: Settings,
    /// The desk clock: starts in step with the world and may step.
    clock: DateTime<Utc>,
    /// Every transaction recorded, by id.
    recorded: HashMap<TransactionId, Transaction>,
    /// Those the desk confirmed as stored ("recorded" shown to the librarian).
    kept: HashSet<TransactionId>,
    /// The first broken promise seen while a step ran.
    violation: Option<String>,
    /// Store-of-record writes send runs issued, in issue order, that have not landed yet.
    unlanded: Vec<Unlanded>,
    /// Results of landed send-run writes, until the run is told: by page and `Perform`.
    landed: HashMap<(usize, PerformId), Result<(), StorageRefused>>,
    /// Deleted (or cleared) by the librarian.
    librarian_deleted: HashSet<TransactionId>,
    /// Seen accepted in storage.
    accepted: HashSet<TransactionId>,
    confirmed: Confirmed,
    /// The storage version the last full check of the stores saw.
    checked_version: u64,
    next_random: u64,
    /// Tokens of the barriers pages wrote (a counter: the shell's random tokens only need to
    /// differ).
    barriers: u64,
    pub steps: usize,
    pub log: Vec<String>,
    /// `SIM_DEBUG` set: the log also holds every command, answer and delivered event.
    debug: bool,
    /// `storage.onChanged` events may still be on their way when the librarian acts (a busy
    /// parent process): nothing may rely on having heard of another page's write. In 3
    /// histories of 10; `SIM_NO_LAG` turns it off, to tell a failure's cause.
    events_lag: bool,
}

/// At most this many rounds for the pages to settle after a history's last step.
const SETTLING_ROUNDS: usize = 200;

const BARCODES: [&str; 4] = ["B1", "B2", "B3", "B4"];
const CARDS: [&str; 3] = ["C1", "C2", "C3"];

impl World {
    pub fn new(seed: u64) -> World {
        let mut rng = Rng::new(seed);
        let era = match rng.below(3) {
            0 => Era::Legacy,
            1 => Era::Csrf,
            _ => Era::GetOnly,
        };
        let mode = if rng.chance(50) { "queue" } else { "apply" };
        let login_once = rng.chance(40);
        let full_settings = Settings::from_form(&SettingsForm {
            server: "https://koha.example.org".into(),
            branchcode: "DE-627".into(),
            userid: "desk".into(),
            password: "pw".into(),
            remember_password: true,
            mode: mode.into(),
            timezone: "Europe/Berlin".into(),
            login_once,
            // 0 is the default (3).
            in_flight: rng.below(5) as u8,
            ..SettingsForm::default()
        })
        .unwrap();
        // Some histories start before the settings are saved.
        let settings = rng.chance(70).then(|| full_settings.clone());
        let pages = (0..1 + rng.below(3)).map(|_| None).collect();
        let events_lag = rng.chance(30) && std::env::var_os("SIM_NO_LAG").is_none();
        let mut world = World {
            rng,
            storage: Storage::default(),
            pages,
            lock: None,
            koha: Koha::new(era),
            settings,
            full_settings,
            clock: Utc.with_ymd_and_hms(2026, 12, 3, 9, 0, 0).unwrap(),
            recorded: HashMap::new(),
            kept: HashSet::new(),
            violation: None,
            unlanded: Vec::new(),
            landed: HashMap::new(),
            librarian_deleted: HashSet::new(),
            accepted: HashSet::new(),
            confirmed: Confirmed::default(),
            checked_version: u64::MAX,
            next_random: 1,
            barriers: 0,
            steps: 0,
            log: Vec::new(),
            debug: std::env::var_os("SIM_DEBUG").is_some(),
            events_lag,
        };
        for i in 0..world.pages.len() {
            world.open_page(i);
        }
        world
    }

    fn note(&mut self, text: String) {
        self.log.push(format!("{:4} {text}", self.steps));
    }

    /// One step: a random page does a random thing, then every promise is checked.
    pub fn step(&mut self) -> Result<(), String> {
        self.steps += 1;
        // While a run sends, steps are milliseconds apart (answers of a nearby Koha), so the
        // run's timed choices (the store-of-record write held back while answers come) happen;
        // otherwise seconds (a librarian's pace).
        let sending = self.pages.iter().flatten().any(|p| p.run.is_some());
        self.clock += if sending {
            Duration::milliseconds(1 + self.rng.below(100) as i64)
        } else {
            Duration::seconds(1 + self.rng.below(30) as i64)
        };
        let i = self.rng.below(self.pages.len());
        if self.pages[i].is_none() {
            self.land_writes(None);
            self.open_page(i);
            return self.check();
        }
        let running = self.pages[i].as_ref().is_some_and(|p| p.run.is_some());
        let roll = self.rng.below(100);
        // A kill (below) may come before the writes page `i` issued have landed.
        if !(49..=51).contains(&roll) {
            self.land_writes(None);
        }
        // A librarian acts on a page whose event loop has run: the `storage.onChanged` events of
        // earlier writes (milliseconds old by then) have arrived. A send run's own steps are not
        // user actions and may run before them.
        // Retrying unsaved writes runs on a timer, whatever the events that have arrived.
        let lagging = self.events_lag && self.rng.chance(60);
        if !(running && roll < 45) && roll < 54 && !lagging {
            self.deliver(i);
        }
        match roll {
            _ if running && roll < 42 => self.advance_run(i),
            // The librarian cancels a run now and then, often with several requests in flight.
            42 if running => self.cancel(i),
            43..=44 if running => self.advance_run(i),
            0..=19 => {
                self.record(i);
                // A burst at the scanner: several in the same second, whose order Koha takes
                // from the order they arrive in.
                while self.rng.chance(40) {
                    self.record(i);
                }
            }
            20..=24 => self.delete(i),
            25..=26 => self.undo(i),
            27..=28 => self.clear_sent(i),
            29 => self.clear_all(i),
            30..=41 => self.start_send(i),
            42..=44 => self.cancel(i),
            45..=48 => self.export(i),
            49..=51 => self.kill(i),
            52..=53 => self.reload(i),
            54..=69 => self.deliver(i),
            70..=72 => self.storage_weather(),
            73..=75 => self.retry_unsaved(i),
            76..=77 => self.step_clock(),
            78 => self.save_settings(),
            79..=81 => self.pack(i),
            _ => self.advance_any_run(),
        }
        self.check()
    }

    // ----- storage, as the shell uses it -----

    /// Queues a write's `storage.onChanged` event for every open page, the writer included: in
    /// Firefox a page hears its own writes too, after those made before them.
    fn emit(&mut self, changes: &[(String, Option<Value>, Option<Value>)]) {
        for page in self.pages.iter_mut().flatten() {
            page.inbox.extend(changes.iter().cloned());
        }
    }

    /// Applies changes to the store of record (all or nothing) and tells every page.
    fn write_primary(&mut self, changes: &[Change]) -> Result<(), ()> {
        if self.storage.primary_down && !changes.is_empty() {
            return Err(());
        }
        let mut events = Vec::new();
        for change in changes {
            let old = self.storage.primary.get(change.key()).cloned();
            match change {
                Change::Put { key, value } => {
                    self.storage.version += 1;
                    if self.debug && key.starts_with("tx:") {
                        let n = value["tx"]["history"].as_array().map_or(0, Vec::len);
                        self.log.push(format!(
                            "{:4} primary put {} len {n}",
                            self.steps,
                            &key[29..]
                        ));
                    }
                    if self.debug && store::is_pending_key(key) {
                        let ids: Vec<String> = store::archive::decode_chunk(key, value)
                            .unwrap_or_default()
                            .iter()
                            .map(|tx| tx.id.as_str()[26..].to_owned())
                            .collect();
                        self.log
                            .push(format!("{:4} primary put {key} {ids:?}", self.steps));
                    }
                    self.storage.primary.insert(key.clone(), value.clone());
                    events.push((key.clone(), Some(value.clone()), old));
                }
                Change::Remove { key } => {
                    self.storage.version += 1;
                    if self.debug && store::is_pending_key(key) {
                        self.log
                            .push(format!("{:4} primary removed {key}", self.steps));
                    }
                    self.storage.primary.remove(key);
                    events.push((key.clone(), None, old));
                }
            }
        }
        self.emit(&events);
        Ok(())
    }

    /// Applies changes to the mirror; a refused put is not an error (as in the shell).
    fn write_mirror(&mut self, changes: &[Change]) -> bool {
        let mut all = true;
        for change in changes {
            match change {
                Change::Put { key, value } => {
                    if self.storage.mirror_down {
                        all = false;
                    } else {
                        self.storage.version += 1;
                        self.storage.mirror.insert(key.clone(), value.clone());
                    }
                }
                Change::Remove { key } => {
                    self.storage.version += 1;
                    self.storage.mirror.remove(key);
                }
            }
        }
        all
    }

    /// The shell's `persist_many`: mirror first, then the store of record; a refusal keeps the
    /// copies for a retry. Whether the mirror or the store took them.
    fn persist(&mut self, i: usize, txs: &[Transaction]) -> bool {
        let writes = self.page(i).replica.plan_write(txs);
        let mirrored = self.write_mirror(&writes.mirror);
        let stored = self.write_primary(&writes.primary).is_ok();
        if let Some(page) = self.pages[i].as_mut() {
            page.replica.wrote(txs, mirrored, stored);
        }
        mirrored || stored
    }

    /// The shell's `mirror_hold`.
    fn mirror_hold(&mut self, i: usize, txs: &[Transaction]) -> bool {
        let puts: Vec<Change> = txs
            .iter()
            .map(|t| self.page(i).replica.plan_mirror_hold(t))
            .collect();
        let took = self.write_mirror(&puts);
        if let Some(page) = self.pages[i].as_mut() {
            for tx in txs {
                page.replica.mirror_held(tx, took);
            }
        }
        took
    }

    /// Carries out the send runs' issued writes in order. `killed`: that page goes away now,
    /// after Firefox carried out only some of its writes (a prefix, of the seed's choice).
    fn land_writes(&mut self, killed: Option<usize>) {
        let mut keep = killed.map(|k| {
            let issued = self.unlanded.iter().filter(|u| u.page == k).count();
            self.rng.below(issued + 1)
        });
        for write in std::mem::take(&mut self.unlanded) {
            if Some(write.page) == killed {
                match keep.as_mut() {
                    Some(0) => {
                        self.note(format!("page {} lost its write {:?}", write.page, write.id));
                        continue;
                    }
                    Some(n) => *n -= 1,
                    None => {}
                }
            }
            let stored = self.store_of_record(write.page, &write.txs);
            self.landed.insert((write.page, write.id), stored);
        }
    }

    /// The shell's `store_of_record`: then the mirror lets go of the accepted ones.
    fn store_of_record(&mut self, i: usize, txs: &[Transaction]) -> Result<(), StorageRefused> {
        let primary = self.page(i).replica.plan_store_of_record(txs);
        let stored = self.write_primary(&primary).is_ok();
        let released = self.page(i).replica.stored_of_record(txs, stored);
        self.write_mirror(&released);
        stored.then_some(()).ok_or(StorageRefused)
    }

    fn open_page(&mut self, i: usize) {
        if self.debug {
            let keys: Vec<String> = self
                .storage
                .primary
                .iter()
                .filter(|(k, _)| k.starts_with("tx:"))
                .map(|(k, v)| {
                    let n = v["tx"]["history"].as_array().map_or(0, Vec::len);
                    format!("{}:{n}", &k[29..])
                })
                .collect();
            self.note(format!("primary before open {keys:?}"));
        }
        let primary: Vec<(String, Value)> = self.storage.primary.clone().into_iter().collect();
        let mirror: Vec<(String, Value)> = self.storage.mirror.clone().into_iter().collect();
        // Interrupted sends are recovered only when no page holds the send lock.
        let recover = self.lock.is_none().then_some(self.clock);
        // A desk's start leaves older archive chunks unread and reads them before anything
        // else; it must end where a start reading everything ends.
        let first_rows = self.steps % 8;
        // The desk hears other pages' writes from its head on, before its start reads: the
        // events still on their way to another open page are such writes (all of them since
        // that page's last delivery, in order), already in what the start reads. Kept for after
        // the start, they are merged in as a page that heard them live merges them: the
        // reference start below hears them too.
        let heard_before: Vec<EntryChange> = match self.rng.chance(50) {
            true => self
                .pages
                .iter()
                .flatten()
                .next()
                .map(|other| other.inbox.iter().cloned().map(entry_change).collect())
                .unwrap_or_default(),
            false => Vec::new(),
        };
        let hearing = |heard: Vec<EntryChange>| {
            // Short histories: a start holding the send lock packs from a few unsent rows on.
            let mut replica = Replica::keeping_changes().packing_pending_from(3);
            replica.apply(heard);
            replica.begin_reading();
            replica
        };
        let mut replica = hearing(heard_before.clone());
        // Every other deferring start is given the mirror as the desk's shell gives it, the
        // texts `localStorage` holds, read straight into transactions; the reference start
        // below reads values.
        let mirror_read = match (self.steps / 2) % 2 == 0 {
            true => mirror
                .iter()
                .map(|(key, value)| (key.clone(), Value::String(value.to_string())))
                .collect(),
            false => mirror.clone(),
        };
        // Every other such start is given the chunks' texts as the desk's shell gives them: left
        // in the browser's answer until read (no draw of the generator, so histories stay).
        let opened = if (self.steps / 8) % 2 == 0 {
            let texts = texts_left_in_the_answer(primary.clone());
            replica.open_with_texts(texts, mirror_read, recover, Some(first_rows))
        } else {
            replica.open_deferring(primary.clone(), mirror_read, recover, Some(first_rows))
        }
        .unwrap();
        let mut full = hearing(heard_before);
        let full_opened = full.open(primary, mirror, recover).unwrap();
        if let Some(mismatch) = deferred_mismatch(&mut replica, &full, first_rows) {
            self.violation.get_or_insert(mismatch);
        }
        if opened.primary_changes != full_opened.primary_changes
            || opened.mirror_changes != full_opened.mirror_changes
        {
            self.violation
                .get_or_insert("a deferring start plans other repairs".to_owned());
        }
        self.pages[i] = Some(Page {
            replica,
            inbox: VecDeque::new(),
            deleted: Vec::new(),
            run: None,
        });
        let stored = self.write_primary(&opened.primary_changes).is_ok();
        let mirror = self.page(i).replica.repairs_written(&opened, stored);
        self.write_mirror(&mirror);
        if self.debug {
            let statuses: Vec<String> = self.pages[i]
                .as_ref()
                .map(|p| {
                    p.replica
                        .journal()
                        .in_order()
                        .map(|t| format!("{}:{}", &t.id.as_str()[26..], t.status().name()))
                        .collect()
                })
                .unwrap_or_default();
            self.note(format!("page {i} opened {statuses:?}"));
        } else {
            self.note(format!("page {i} opened"));
        }
    }

    /// The shell's `refresh_from_stores`: before a page sends, exports, deletes or retries, it
    /// merges both stores' copies of what Koha has not accepted. The mirror is written
    /// synchronously by every page and holds an outcome whose store-of-record write failed,
    /// which no `storage.onChanged` event announces; the store of record may hold a write whose
    /// event has not arrived yet.
    ///
    /// For the store of record the page writes a barrier and waits for its own event, which
    /// comes after every earlier write's: here, the page's events still on their way arrive.
    /// When the barrier cannot be written, it reads everything: export records and chunks count
    /// even before their event arrives.
    fn refresh_from_stores(&mut self, i: usize) {
        if self.page(i).replica.journal().counts().not_accepted == 0 {
            return;
        }
        let passed = self.barrier_passed(i);
        let ids = self.page(i).replica.journal().not_accepted_ids();
        let mirror = self.mirror_copies(&ids);
        if passed {
            self.page(i).replica.merge_stored_copies(Vec::new(), mirror);
            return;
        }
        let everything: Vec<(String, Value)> = self.storage.primary.clone().into_iter().collect();
        self.page(i).replica.merge_current(everything, mirror, &ids);
    }

    /// The shell's `barrier_passed`: the page writes a barrier and waits for its own event,
    /// which comes after every earlier write's: here, the page's events still on their way
    /// arrive. `false` when the barrier cannot be written or the replica cannot take it as its
    /// answer (a start still reading).
    fn barrier_passed(&mut self, i: usize) -> bool {
        self.barriers += 1;
        let barrier = Barrier::new(self.barriers);
        if self.write_primary(&[barrier.write()]).is_err() {
            return false;
        }
        self.deliver(i);
        let Change::Put { key, value } = barrier.write() else {
            unreachable!("a barrier is a put")
        };
        let answer = [EntryChange {
            key,
            new_value: Some(value),
            old_value: None,
        }];
        self.page(i).replica.barrier_answered(&barrier, &answer)
    }

    /// The mirror's texts of these transactions.
    fn mirror_copies(&self, ids: &[TransactionId]) -> Vec<(String, String)> {
        ids.iter()
            .map(store::mirror_key)
            .filter_map(|key| {
                let copy = self.storage.mirror.get(&key)?.to_string();
                Some((key, copy))
            })
            .collect()
    }

    /// Returns the ids either store holds.
    fn refresh_from_stores_of(
        &mut self,
        i: usize,
        ids: &[TransactionId],
    ) -> HashSet<TransactionId> {
        let mut primary = Vec::new();
        let mut mirror = Vec::new();
        for id in ids {
            let key = store::mirror_key(id);
            if let Some(copy) = self.storage.mirror.get(&key) {
                mirror.push((key, copy.to_string()));
            }
            let key = store::transaction_key(id);
            if let Some(copy) = self.storage.primary.get(&key) {
                primary.push((key, copy.clone()));
            }
        }
        let mut found = self.page(i).replica.merge_stored_copies(primary, mirror);
        let unfound = self.page(i).replica.unfound_stored(ids, &found);
        if unfound.is_empty() {
            return found;
        }
        // Another page's removal or packing not heard of yet: a barrier, or a read of everything.
        // With the store refusing writes, the read may fail as well: then what the page heard of
        // the archive decides, as for a barrier.
        if self.barrier_passed(i) || (self.storage.primary_down && self.rng.chance(50)) {
            found.extend(self.page(i).replica.settle_unfound_heard(unfound));
        } else {
            let everything: Vec<(String, Value)> =
                self.storage.primary.clone().into_iter().collect();
            found.extend(
                self.page(i)
                    .replica
                    .settle_unfound(everything.iter().map(|(k, v)| (k.as_str(), v)), unfound),
            );
        }
        found
    }

    fn page(&mut self, i: usize) -> &mut Page {
        self.pages[i].as_mut().unwrap()
    }

    // ----- what a librarian does -----

    fn random_id(&mut self) -> u64 {
        self.next_random += 1;
        self.next_random
    }

    fn record(&mut self, i: usize) {
        let barcode = Barcode::parse(BARCODES[self.rng.below(BARCODES.len())]).unwrap();
        let card = Cardnumber::parse(CARDS[self.rng.below(CARDS.len())]).unwrap();
        let action = match self.rng.below(10) {
            0..=4 => Action::Issue {
                cardnumber: card,
                barcode,
            },
            5..=8 => Action::Return { barcode },
            _ => Action::Payment {
                cardnumber: card,
                amount: Amount::parse(&format!("{}", 1 + self.rng.below(9))).unwrap(),
            },
        };
        let at = self.clock;
        // Two transactions that look the same on the wire cannot be told apart in Koha's count.
        let wire = |t: &Transaction| (t.action.clone(), koha::koha_timestamp(t.recorded_at));
        let probe = Transaction::record(
            TransactionId::new(at, 0),
            at,
            desk::desk_branchcode(None),
            action.clone(),
        );
        if self.recorded.values().any(|t| wire(t) == wire(&probe)) {
            return;
        }
        let id = TransactionId::new(at, self.random_id());
        let tx = Transaction::record(
            id.clone(),
            at,
            desk::desk_branchcode(self.settings.as_ref()),
            action,
        );
        if self
            .page(i)
            .replica
            .journal_mut()
            .record(tx.clone())
            .is_err()
        {
            return;
        }
        self.recorded.insert(id.clone(), tx.clone());
        if self.persist(i, std::slice::from_ref(&tx)) {
            self.note(format!("page {i} recorded {id}"));
            self.kept.insert(id);
        } else {
            // The desk said it could not store it: the librarian knows, and the page keeps it in
            // memory and retries.
            self.note(format!("page {i} could not store {id}"));
        }
    }

    /// Whether a page may delete, clear or export now: they take the send lock, so not while any
    /// page (this one included) sends.
    fn may_delete(&self, _i: usize) -> bool {
        self.lock.is_none()
    }

    fn delete(&mut self, i: usize) {
        if !self.may_delete(i) || self.pages[i].as_ref().unwrap().run.is_some() {
            return;
        }
        self.refresh_from_stores(i);
        let candidates: Vec<TransactionId> = self
            .page(i)
            .replica
            .journal()
            .in_order()
            .filter(|t| !t.status().is_accepted() && *t.status() != Status::Sending)
            .map(|t| t.id.clone())
            .collect();
        if candidates.is_empty() {
            return;
        }
        let id = candidates[self.rng.below(candidates.len())].clone();
        let Ok(tx) = self.page(i).replica.journal_mut().delete(&id) else {
            return;
        };
        self.page(i).deleted.push(tx);
        let (p, m) = store::remove_plan(&id);
        if self.forget_pending(i, std::slice::from_ref(&id)) && self.write_primary(&[p]).is_ok() {
            self.write_mirror(&[m]);
            self.librarian_deleted.insert(id.clone());
            self.note(format!("page {i} deleted {id}"));
        } else {
            // Refused: the shell reports it; the row is back on the next start.
            let tx = self.page(i).deleted.pop().unwrap();
            let _ = self.page(i).replica.journal_mut().record(tx);
        }
    }

    fn undo(&mut self, i: usize) {
        let Some(tx) = self.page(i).deleted.pop() else {
            return;
        };
        if self
            .page(i)
            .replica
            .journal_mut()
            .record(tx.clone())
            .is_ok()
            && self.persist(i, std::slice::from_ref(&tx))
        {
            self.librarian_deleted.remove(&tx.id);
            self.note(format!("page {i} undid {}", tx.id));
        }
    }

    fn forget(&mut self, i: usize, ids: &[TransactionId]) -> bool {
        let (p, m) = self.page(i).replica.plan_forget(ids);
        if self.write_primary(&p).is_err() {
            return false;
        }
        self.write_mirror(&m);
        self.page(i).replica.forgotten(ids);
        self.librarian_deleted.extend(ids.iter().cloned());
        true
    }

    /// The shell's `forget_pending`, before `forget`: the deleted transactions' copies in
    /// pending chunks, read as stored unless a barrier says no pending chunk holds them.
    fn forget_pending(&mut self, i: usize, ids: &[TransactionId]) -> bool {
        if self.barrier_passed(i) && !self.page(i).replica.holds_pending(ids) {
            return true;
        }
        let stored: Vec<(String, Value)> = self.storage.primary.clone().into_iter().collect();
        let changes = self
            .page(i)
            .replica
            .plan_forget_pending(stored.iter().map(|(k, v)| (k.as_str(), v)), ids);
        self.write_primary(&changes).is_ok()
    }

    /// The shell's `forget_bulk`: the cleared transactions' copies in chunks, own keys beside
    /// chunks and marks in export records, as stored now.
    fn forget_bulk(&mut self, i: usize, cleared: &[TransactionId]) -> bool {
        let stored: Vec<(String, Value)> = self.storage.primary.clone().into_iter().collect();
        let changes = self
            .page(i)
            .replica
            .plan_forget_bulk(stored.iter().map(|(k, v)| (k.as_str(), v)), cleared);
        if self.write_primary(&changes).is_err() {
            return false;
        }
        self.page(i).replica.bulk_forgotten(cleared);
        true
    }

    /// The shell's `pack_if_due` (after a run, after a write): chunks, then the removals.
    fn pack(&mut self, i: usize) {
        if self.pages[i].is_none() {
            return;
        }
        let Some(plan) = self.page(i).replica.start_packing() else {
            return;
        };
        if self.write_primary(&plan.chunks).is_ok() {
            self.page(i).replica.chunks_written(&plan);
            let removed = self.write_primary(&plan.removals).is_ok();
            if removed {
                self.write_mirror(&plan.mirror_releases);
            }
            self.note(format!(
                "page {i} packed {} and removed {} keys: {removed}",
                plan.packed.len(),
                plan.removals.len()
            ));
        }
        self.page(i).replica.packing_over();
    }

    fn clear_sent(&mut self, i: usize) {
        if !self.may_delete(i) || self.pages[i].as_ref().unwrap().run.is_some() {
            return;
        }
        let ids = self.page(i).replica.journal_mut().clear_accepted();
        if !self.forget_pending(i, &ids) || !self.forget(i, &ids) || !self.forget_bulk(i, &ids) {
            self.reload(i);
        }
        self.note(format!("page {i} cleared {} sent", ids.len()));
    }

    fn clear_all(&mut self, i: usize) {
        if !self.may_delete(i) || self.pages[i].as_ref().unwrap().run.is_some() {
            return;
        }
        let ids = self.page(i).replica.journal_mut().clear_all();
        if !self.forget_pending(i, &ids) || !self.forget(i, &ids) || !self.forget_bulk(i, &ids) {
            self.reload(i);
        }
        self.note(format!("page {i} cleared all ({})", ids.len()));
    }

    /// Export as the desk does (rows never exported, neither sending nor rejected nor uncertain);
    /// the file may then be uploaded to Koha.
    fn export(&mut self, i: usize) {
        if !self.may_delete(i) {
            return;
        }
        self.refresh_from_stores(i);
        let zone_free: Vec<Transaction> = self
            .page(i)
            .replica
            .journal()
            .in_order()
            .filter(|t| t.status().is_sendable() && t.exported_at.is_none())
            .cloned()
            .collect();
        if zone_free.is_empty() {
            return;
        }
        let ids: Vec<TransactionId> = zone_free.iter().map(|t| t.id.clone()).collect();
        let record = ExportRecord::new(self.clock, ids.clone());
        if self.write_primary(&[record.change()]).is_err() {
            return;
        }
        let now = self.clock;
        self.page(i).replica.journal_mut().mark_exported(&ids, now);
        if self.rng.chance(60) {
            for tx in &zone_free {
                let op = wire_op(tx);
                *self.koha.held.entry(op).or_default() += 1;
            }
            self.note(format!("page {i} exported and uploaded {ids:?}"));
        } else {
            self.note(format!("page {i} exported {}", ids.len()));
        }
    }

    fn start_send(&mut self, i: usize) {
        if self.lock.is_some() || self.pages[i].as_ref().unwrap().run.is_some() {
            return;
        }
        self.refresh_from_stores(i);
        // The librarian's choices, each a confirmation of the risk it names.
        let uncertain: Vec<TransactionId> = self
            .page(i)
            .replica
            .journal()
            .in_order()
            .filter(|t| matches!(t.status(), Status::Uncertain { .. }))
            .map(|t| t.id.clone())
            .collect();
        let resend: Vec<TransactionId> = uncertain
            .into_iter()
            .filter(|_| self.rng.chance(30))
            .collect();
        let exported = if self.rng.chance(30) {
            ExportedChoice::Send
        } else {
            ExportedChoice::LeaveOut
        };
        let options = RunOptions {
            resend: resend.clone(),
            allow_get: true,
            exported,
            clock_confirmed: false,
        };
        let setup = Setup {
            settings: self.settings.clone(),
            host_permission: true,
            session_password: None,
            options,
        };
        let page = self.pages[i].as_mut().unwrap();
        let (run, command) = SendRun::start(setup, page.replica.journal(), self.clock);
        let Some(run) = run else {
            return;
        };
        // What the librarian confirmed may now reach Koha once more.
        for id in &resend {
            *self.confirmed.extra.entry(id.clone()).or_default() += 1;
        }
        if exported == ExportedChoice::Send {
            let ids: Vec<TransactionId> = page
                .replica
                .journal()
                .in_order()
                .filter(|t| t.exported_at.is_some() && !t.status().is_accepted())
                .map(|t| t.id.clone())
                .collect();
            for id in ids {
                *self.confirmed.extra.entry(id).or_default() += 1;
            }
        }
        let active = ActiveRun {
            run: run.clone(),
            command: None,
            outstanding: Vec::new(),
            stored_by_koha: Vec::new(),
        };
        self.issue(i, run, command, active);
        self.lock = Some(i);
        self.note(format!("page {i} started a send"));
    }

    fn cancel(&mut self, i: usize) {
        if let Some(active) = self.page(i).run.as_mut() {
            active.run.cancel();
        }
    }

    fn advance_any_run(&mut self) {
        if let Some(i) = self.lock {
            if self.pages[i].as_ref().is_some_and(|p| p.run.is_some()) {
                self.advance_run(i);
            }
        }
    }

    fn fault(&mut self) -> Fault {
        match self.rng.below(100) {
            0..=74 => Fault::None,
            75..=78 => Fault::DropBeforeStore,
            79..=82 => Fault::DropAfterStore,
            83..=85 => Fault::ServerErrorBefore,
            86..=88 => Fault::ServerErrorAfterStore,
            89..=91 => Fault::TimeoutAfterStore,
            92..=94 => Fault::SilentResend,
            _ => Fault::Forbidden,
        }
    }

    /// Gives the page its next send command. A `Perform` starts now: its store-of-record write
    /// lands and its request leaves (the shell then polls for the next command).
    fn issue(&mut self, i: usize, run: SendRun, command: Command, mut active: ActiveRun) {
        active.run = run;
        active.command = Some(command);
        if let Some(Command::Perform { id, store, request }) = active
            .command
            .take_if(|c| matches!(c, Command::Perform { .. }))
        {
            let writes = !store.is_empty();
            if writes {
                self.unlanded.push(Unlanded {
                    page: i,
                    id,
                    txs: store,
                });
            }
            self.check_request(request.as_ref());
            if let Some(request) = request.as_ref().filter(|r| is_transaction(r)) {
                self.check_in_flight(&active, request);
            }
            active.outstanding.push(Outstanding {
                id,
                request,
                writes,
            });
        }
        self.page(i).run = Some(active);
    }

    /// Requests in flight at once: one in apply mode, at most the setting in queue mode, never
    /// two that share an item or a patron.
    fn check_in_flight(&mut self, active: &ActiveRun, request: &HttpRequest) {
        let flying: Vec<&HttpRequest> = active
            .outstanding
            .iter()
            .filter_map(|o| o.request.as_ref())
            .filter(|r| is_transaction(r))
            .collect();
        let settings = self.settings.as_ref().unwrap_or(&self.full_settings);
        let limit = match settings.mode {
            koha_offline_circ::settings::Mode::Apply => 1,
            koha_offline_circ::settings::Mode::Queue => usize::from(settings.in_flight),
        };
        let op = Koha::op_of(request);
        let problem = if flying.len() + 1 > limit {
            Some(format!(
                "{} requests in flight, {limit} allowed",
                flying.len() + 1
            ))
        } else {
            flying
                .iter()
                .map(|r| Koha::op_of(r))
                .find(|other| shares_item_or_patron(other, &op))
                .map(|other| format!("two in flight share an item or patron: {other:?} {op:?}"))
        };
        if self.violation.is_none() {
            self.violation = problem;
        }
    }

    /// Koha answers one request of the run, with the fault the seed chooses. Koha takes
    /// same-second operations of an item or patron in the order they arrive, so they must
    /// arrive in recorded order.
    fn answer_transaction(
        &mut self,
        active: &mut ActiveRun,
        request: &HttpRequest,
        fault: Fault,
    ) -> Reply {
        let before: usize = self.koha.held.values().sum();
        let reply = self.koha.answer(request, fault);
        let after: usize = self.koha.held.values().sum();
        if after > before && is_transaction(request) {
            let op = Koha::op_of(request);
            let Some(tx) = self.recorded.values().find(|t| wire_op(t) == op).cloned() else {
                return reply;
            };
            let overtaken = active.stored_by_koha.iter().find(|earlier| {
                let earlier_op = wire_op(earlier);
                earlier_op.timestamp == op.timestamp
                    && shares_item_or_patron(&earlier_op, &op)
                    && (earlier.recorded_at, &earlier.id) > (tx.recorded_at, &tx.id)
            });
            if let (Some(later), None) = (overtaken, &self.violation) {
                self.violation = Some(format!(
                    "Koha stored {} before {}, recorded earlier in the same second",
                    later.id, tx.id
                ));
            }
            active.stored_by_koha.push(tx);
        }
        reply
    }

    /// Performs the page's current send command and feeds back the result: the poll after a
    /// started `Perform`, a mirror write, or, when the run waits, the result of one outstanding
    /// `Perform` of the seed's choice (answers arrive in any order).
    fn advance_run(&mut self, i: usize) {
        let Some(mut active) = self.page(i).run.take() else {
            return;
        };
        let now = self.clock;
        let mut run = active.run.clone();
        let next = match active.command.take() {
            Some(Command::Finish(end)) => {
                if !active.outstanding.is_empty() && self.violation.is_none() {
                    // The shell drops what is outstanding: a write would land unaccounted for.
                    self.violation = Some(format!(
                        "page {i}'s run ended with {} request(s) or write(s) outstanding",
                        active.outstanding.len()
                    ));
                }
                self.lock = None;
                self.note(format!("page {i} run ended: {}", describe(&end)));
                return;
            }
            None => {
                let page = self.pages[i].as_mut().unwrap();
                run.poll(page.replica.journal_mut(), now)
            }
            Some(Command::Mirror(txs)) => {
                let took = self.mirror_hold(i, &txs);
                if self.debug {
                    let what: Vec<String> = txs
                        .iter()
                        .map(|t| format!("{} {}", t.id, t.status().name()))
                        .collect();
                    self.note(format!("page {i} mirror {} -> {took}", what.join(", ")));
                }
                let page = self.pages[i].as_mut().unwrap();
                run.mirrored(took, page.replica.journal_mut(), now)
            }
            Some(Command::Perform { .. }) => unreachable!("a Perform starts when it is given"),
            Some(Command::Wait) => {
                assert!(!active.outstanding.is_empty(), "a run waits for nothing");
                let k = self.rng.below(active.outstanding.len());
                let Outstanding {
                    id,
                    request,
                    writes,
                } = active.outstanding.remove(k);
                let stored = if writes {
                    if !self.landed.contains_key(&(i, id)) {
                        self.land_writes(None);
                    }
                    self.landed.remove(&(i, id)).expect("the write landed")
                } else {
                    Ok(())
                };
                let fault = self.fault();
                let reply = request
                    .as_ref()
                    .map(|r| self.answer_transaction(&mut active, r, fault));
                if self.debug {
                    let asked = request.as_ref().map(|r| {
                        format!("{} {:?} {:?}", r.url, r.param("action"), r.param("barcode"))
                    });
                    self.note(format!(
                        "page {i} performed {id:?} ({stored:?}) request {asked:?} {fault:?} reply {reply:?}"
                    ));
                }
                let page = self.pages[i].as_mut().unwrap();
                run.performed(id, stored, reply, page.replica.journal_mut(), now)
            }
        };
        let command = next.unwrap();
        if self.debug {
            self.note(format!("page {i} command {}", command_name(&command)));
        }
        self.issue(i, run, command, active);
    }

    /// The page goes away at once, wherever it is: a store-of-record write on its way lands or
    /// not, a request on its way reaches Koha or not, and no answer is recorded.
    fn kill(&mut self, i: usize) {
        self.land_writes(Some(i));
        self.landed.retain(|(page, _), _| *page != i);
        let Some(page) = self.pages[i].take() else {
            return;
        };
        // Its requests reach Koha or not, and no answer is recorded.
        if let Some(mut active) = page.run {
            for request in std::mem::take(&mut active.outstanding)
                .into_iter()
                .filter_map(|o| o.request)
            {
                if self.rng.chance(50) {
                    let _ = self.answer_transaction(&mut active, &request, Fault::DropAfterStore);
                }
            }
        }
        if self.lock == Some(i) {
            self.lock = None;
        }
        self.note(format!("page {i} killed"));
    }

    fn reload(&mut self, i: usize) {
        if self.pages[i].as_ref().is_some_and(|p| p.run.is_some()) {
            return;
        }
        self.pages[i] = None;
        self.open_page(i);
    }

    /// Delivers this page's pending `storage.onChanged` events, as the shell applies them.
    fn deliver(&mut self, i: usize) {
        let events: Vec<_> = self.page(i).inbox.drain(..).collect();
        if self.debug {
            let keys: Vec<String> = events
                .iter()
                .map(|(k, v, _)| {
                    let status = v
                        .as_ref()
                        .and_then(|v| store::decode_transaction(k, v).ok())
                        .map(|t| {
                            format!(
                                "{:?}",
                                t.history()
                                    .iter()
                                    .map(|c| c.status.name())
                                    .collect::<Vec<_>>()
                            )
                        });
                    format!("{k} {status:?}")
                })
                .collect();
            self.note(format!("page {i} delivered {keys:?}"));
        }
        let batch = events.into_iter().map(entry_change).collect();
        self.page(i).replica.apply(batch);
    }

    fn storage_weather(&mut self) {
        self.storage.primary_down = self.rng.chance(20);
        self.storage.mirror_down = self.rng.chance(10);
    }

    /// The shell's `retry_unsaved` (on a timer): only when no other page sends, since that
    /// page's run may be writing these rows; reads and merges the stored copies, then writes
    /// this page's copies again, except the rows its own send run has in flight (the run writes
    /// those itself).
    fn retry_unsaved(&mut self, i: usize) {
        if self.lock.is_some_and(|holder| holder != i) {
            return;
        }
        let ids = self.page(i).replica.unsaved_ids();
        let found = self.refresh_from_stores_of(i, &ids);
        let txs = self.page(i).replica.plan_retry(&found);
        if !txs.is_empty() {
            let _ = self.store_of_record(i, &txs);
        }
    }

    fn step_clock(&mut self) {
        let hours = self.rng.below(5) as i64 - 2;
        self.clock += Duration::hours(hours) + Duration::minutes(self.rng.below(60) as i64);
        self.note(format!("desk clock stepped to {}", self.clock));
    }

    fn save_settings(&mut self) {
        self.settings = Some(self.full_settings.clone());
    }

    // ----- the promises -----

    /// Every request carries the library the transaction was recorded for (the configured one
    /// for a row recorded before setup) and the time it was recorded.
    fn check_request(&mut self, request: Option<&HttpRequest>) {
        let Some(request) = request else { return };
        if request.param("action").is_none_or(str::is_empty) {
            return;
        }
        let branch = request.param("branchcode").unwrap_or("");
        let op = Koha::op_of(request);
        let problem = if branch != "DE-627" {
            Some(format!("a request for library {branch:?}: {op:?}"))
        } else if !self.recorded.values().any(|t| wire_op(t) == op) {
            Some(format!(
                "a request for no recorded transaction, or at another time: {op:?}"
            ))
        } else {
            None
        };
        if self.violation.is_none() {
            self.violation = problem;
        }
    }

    fn stored_view(&self) -> HashMap<TransactionId, Transaction> {
        let mut view: HashMap<TransactionId, Transaction> = HashMap::new();
        for (key, value) in &self.storage.primary {
            if let Ok(tx) = store::decode_transaction(key, value) {
                view.insert(tx.id.clone(), tx);
            }
        }
        // A run stores what Koha accepted as archive chunks, beside each one's older own key; a
        // start packs the others into pending chunks, and later copies go to their own key.
        for (key, value) in &self.storage.primary {
            if !store::is_archive_key(key) && !store::is_pending_key(key) {
                continue;
            }
            for tx in store::archive::decode_chunk(key, value).unwrap_or_default() {
                let merged = match view.remove(&tx.id) {
                    Some(single) => single.merge(tx),
                    None => tx,
                };
                view.insert(merged.id.clone(), merged);
            }
        }
        for (key, value) in &self.storage.mirror {
            if let Ok(tx) = store::decode_mirror(key, value) {
                let merged = match view.remove(&tx.id) {
                    Some(stored) => stored.merge(tx),
                    None => tx,
                };
                view.insert(merged.id.clone(), merged);
            }
        }
        view
    }

    pub fn check(&mut self) -> Result<(), String> {
        if let Some(violation) = self.violation.take() {
            return Err(violation);
        }
        // Koha never holds an operation twice unless the librarian confirmed it.
        for tx in self.recorded.values() {
            let op = wire_op(tx);
            let held = self.koha.held.get(&op).copied().unwrap_or(0);
            let repeated = self.koha.repeated.get(&op).copied().unwrap_or(0);
            let allowed = 1 + self.confirmed.extra.get(&tx.id).copied().unwrap_or(0);
            if held - repeated > allowed {
                return Err(format!(
                    "Koha holds {} {} times ({} confirmed)",
                    tx.id,
                    held - repeated,
                    allowed - 1
                ));
            }
        }
        // Nothing recorded leaves the desk unless Koha accepted it or the librarian deleted it.
        if self.checked_version == self.storage.version {
            return Ok(());
        }
        self.checked_version = self.storage.version;
        let view = self.stored_view();
        let live_memory: HashSet<TransactionId> = self
            .pages
            .iter()
            .flatten()
            .flat_map(|p| p.replica.unsaved_ids())
            .collect();
        for id in &self.kept {
            if self.librarian_deleted.contains(id) {
                continue;
            }
            if !view.contains_key(id) && !live_memory.contains(id) {
                return Err(format!("{id} was lost"));
            }
        }
        // An accepted transaction never goes back, in storage or on any page.
        for (id, tx) in &view {
            if tx.status().is_accepted() {
                self.accepted.insert(id.clone());
            } else if self.accepted.contains(id) {
                return Err(format!(
                    "{id} went back to {} in storage",
                    tx.status().name()
                ));
            }
        }
        Ok(())
    }
}

impl World {
    /// After a history's last step the world comes to rest: storage works again, runs go on to
    /// their end, refused writes are tried again. Then, once every page has heard every write,
    /// each page shows what the stores hold, statuses included; but for what only the mirror
    /// knows: a `localStorage` write is announced to no page.
    fn check_settled(&mut self) -> Result<(), String> {
        self.land_writes(None);
        let busy = |p: &Page| p.run.is_some() || p.replica.unsaved_count() > 0;
        self.storage.primary_down = false;
        self.storage.mirror_down = false;
        for _ in 0..SETTLING_ROUNDS {
            let busy_pages: Vec<usize> = (0..self.pages.len())
                .filter(|&i| self.pages[i].as_ref().is_some_and(busy))
                .collect();
            if busy_pages.is_empty() {
                break;
            }
            for i in busy_pages {
                self.clock += Duration::milliseconds(1 + self.rng.below(100) as i64);
                if self.page(i).run.is_some() {
                    self.advance_run(i);
                } else {
                    self.retry_unsaved(i);
                }
                self.land_writes(None);
                self.check()?;
            }
        }
        if self.pages.iter().flatten().any(busy) {
            return Ok(());
        }
        for i in 0..self.pages.len() {
            if self.pages[i].is_some() {
                self.deliver(i);
            }
        }
        let primary: Vec<(String, Value)> = self.storage.primary.clone().into_iter().collect();
        let mirror: Vec<(String, Value)> = self.storage.mirror.clone().into_iter().collect();
        let stored = shown(&opened(primary.clone(), mirror));
        let of_record = shown(&opened(primary, Vec::new()));
        for (i, page) in self.pages.iter().enumerate() {
            let Some(page) = page else { continue };
            let on_page = shown(&page.replica);
            for id in stored.keys().chain(on_page.keys()) {
                let only_in_mirror = stored.get(id) != of_record.get(id);
                if !only_in_mirror && on_page.get(id) != stored.get(id) {
                    return Err(format!(
                        "page {i} shows {id} as {:?}, the stores hold {:?}",
                        on_page.get(id),
                        stored.get(id)
                    ));
                }
            }
        }
        Ok(())
    }

    /// A failure's report: the seed, the step and the log's tail.
    fn failure(&self, seed: u64, e: &str) -> String {
        let tail: Vec<&String> = self
            .log
            .iter()
            .rev()
            .take(if self.debug { 400 } else { 25 })
            .collect();
        let tail: Vec<&str> = tail.into_iter().rev().map(String::as_str).collect();
        format!("seed {seed}, step {}: {e}\n{}", self.steps, tail.join("\n"))
    }
}

/// A fresh page's replica over these stores (no recovery: nothing is written).
fn opened(primary: Vec<(String, Value)>, mirror: Vec<(String, Value)>) -> Replica {
    let mut replica = Replica::new();
    replica.open(primary, mirror, None).unwrap();
    replica
}

/// What a page shows: each transaction's status. At rest no page sends, so `sending` is a
/// killed page's attempt, which a page that heard of it shows as such until it recovers it as
/// `uncertain` (at its next start or send): the two count as one here.
/// A `storage.onChanged` event as the replica takes it.
fn entry_change(
    (key, new_value, old_value): (String, Option<Value>, Option<Value>),
) -> EntryChange {
    EntryChange {
        key,
        new_value,
        old_value,
    }
}

/// What differs between a start that deferred archive chunks (`lazy`, read here) and one that
/// read everything: the first `rows` rows and the counts it showed before reading, then the
/// journal.
fn deferred_mismatch(lazy: &mut Replica, full: &Replica, rows: usize) -> Option<String> {
    let everything = Filter::default();
    let (page, counts) = lazy.listing(&everything, 0, rows);
    let expected = full.journal().page(&everything, 0, rows);
    if page != expected || counts != full.journal().counts() {
        return Some(format!(
            "a start (deferring chunks, or applying writes heard before it) shows {:?} {counts:?}, not {:?} {:?}",
            page.rows.iter().map(|tx| &tx.id).collect::<Vec<_>>(),
            expected.rows.iter().map(|tx| &tx.id).collect::<Vec<_>>(),
            full.journal().counts(),
        ));
    }
    lazy.read_deferred();
    let (repairs, _) = lazy.take_repairs();
    let lazy_rows: Vec<&Transaction> = lazy.journal().in_order().collect();
    let full_rows: Vec<&Transaction> = full.journal().in_order().collect();
    if !repairs.is_empty() || lazy_rows != full_rows {
        return Some("a start (deferring chunks, or applying writes heard before it) ends with another journal".to_owned());
    }
    None
}

fn shown(replica: &Replica) -> HashMap<TransactionId, &'static str> {
    replica
        .journal()
        .in_order()
        .map(|tx| match tx.status() {
            Status::Sending => (tx.id.clone(), "uncertain"),
            status => (tx.id.clone(), status.name()),
        })
        .collect()
}

fn wire_op(tx: &Transaction) -> WireOp {
    WireOp {
        action: tx.action.koha_name().to_owned(),
        barcode: tx
            .action
            .barcode()
            .map_or(String::new(), |b| b.as_str().to_owned()),
        cardnumber: tx
            .action
            .cardnumber()
            .map_or(String::new(), |c| c.as_str().to_owned()),
        amount: tx.action.amount().map_or(String::new(), |a| a.to_string()),
        timestamp: koha::koha_timestamp(tx.recorded_at),
    }
}

fn is_transaction(request: &HttpRequest) -> bool {
    request.param("action").is_some_and(|a| !a.is_empty())
}

fn shares_item_or_patron(a: &WireOp, b: &WireOp) -> bool {
    (!a.barcode.is_empty() && a.barcode == b.barcode)
        || (!a.cardnumber.is_empty() && a.cardnumber == b.cardnumber)
}

fn command_name(command: &Command) -> String {
    match command {
        Command::Mirror(txs) => format!("mirror {}", txs.len()),
        Command::Perform { id, store, request } => format!(
            "perform {id:?} store {} request {:?}",
            store.len(),
            request
                .as_ref()
                .map(|r| (r.param("action"), r.param("barcode")))
        ),
        Command::Wait => "wait".into(),
        Command::Finish(end) => format!("finish {}", describe(end)),
    }
}

fn describe(end: &RunEnd) -> String {
    match end {
        RunEnd::Ran(s) => format!(
            "{:?}: queued {} applied {} rejected {} failed {} uncertain {} not sent {}",
            s.stopped,
            s.queued,
            s.applied,
            s.rejected.len(),
            s.failed,
            s.uncertain,
            s.not_sent
        ),
        other => format!("{other:?}"),
    }
}

/// Runs one history of `steps` steps; the error names the step and shows the log's tail.
pub fn history(seed: u64, steps: usize) -> Result<(), String> {
    let mut world = World::new(seed);
    for _ in 0..steps {
        world.step().map_err(|e| world.failure(seed, &e))?;
    }
    world.check_settled().map_err(|e| world.failure(seed, &e))
}

/// The archive chunks of `primary` with their texts left in the browser's answer, as the desk's
/// shell gives them (the head as long as the shell's).
fn texts_left_in_the_answer(primary: Vec<(String, Value)>) -> ReadEntries {
    let mut given = Vec::new();
    let mut texts = Vec::new();
    for (key, value) in primary {
        match value {
            Value::String(text) if store::is_archive_key(&key) => {
                let head = text.chars().take(512).collect();
                texts.push((key, LazyText::new(head, move || text)));
            }
            value => given.push((key, value)),
        }
    }
    ReadEntries {
        values: given,
        texts,
    }
}
