//! The stand-in's model: libraries, accounts, items, loans, credits, queue rows, sessions.

use serde::{Deserialize, Serialize};

/// A library.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Library {
    /// Its code.
    pub code: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// An IP prefix (`branchip`): a client whose address starts with it gets this library.
    #[serde(default)]
    pub ip_prefix: Option<String>,
}

/// Staff permissions that matter here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// No staff permission (a patron, or a librarian without rights).
    None,
    /// `editcatalogue › edit_catalogue`.
    EditCatalogue,
    /// Everything.
    Superlibrarian,
}

/// An account, which is also a patron.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Login name.
    pub userid: String,
    /// Card number.
    pub cardnumber: String,
    /// Password (plain: this is a test server).
    pub password: String,
    /// Home library code.
    pub home_library: String,
    /// Permission.
    pub permission: Permission,
    /// Locked accounts cannot log in.
    #[serde(default)]
    pub locked: bool,
    /// Failed password checks so far.
    #[serde(default)]
    pub failed_logins: u32,
    /// The card's last valid day, `YYYY-MM-DD` (REST `expiry_date`).
    #[serde(default)]
    pub expiry_date: Option<String>,
    /// Restricted (debarred).
    #[serde(default)]
    pub restricted: bool,
    /// Card reported lost.
    #[serde(default)]
    pub card_lost: bool,
    /// Address in doubt (`gonenoaddress`).
    #[serde(default)]
    pub address_in_doubt: bool,
    /// What the patron owed before any credit here, in cents.
    #[serde(default)]
    pub balance_cents: i64,
    /// When the patron record last changed, server-local `YYYY-MM-DD HH:MM:SS` (Koha's
    /// `borrowers.updated_on`; REST `updated_on`); `None`: [`FIXTURE_CHANGED`].
    #[serde(default)]
    pub updated_on: Option<String>,
}

/// When a fixture record last changed unless it says otherwise.
pub const FIXTURE_CHANGED: &str = "2026-01-01 00:00:00";

/// A loan, open or closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loan {
    /// The borrower's card number.
    pub cardnumber: String,
    /// Issue date, server-local `YYYY-MM-DD HH:MM:SS`.
    pub issued_at: String,
    /// Due date, server-local.
    pub due_at: String,
    /// Renewals so far.
    pub renewals: u32,
    /// Library where it was issued (the session's).
    pub library: String,
}

/// An item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// Barcode.
    pub barcode: String,
    /// Lost flag.
    #[serde(default)]
    pub lost: bool,
    /// Withdrawn.
    #[serde(default)]
    pub withdrawn: bool,
    /// Not for loan.
    #[serde(default)]
    pub not_for_loan: bool,
    /// Damaged.
    #[serde(default)]
    pub damaged: bool,
    /// The current loan.
    #[serde(default)]
    pub loan: Option<Loan>,
    /// Last seen (server-local), set by checkins.
    #[serde(default)]
    pub last_seen: Option<String>,
    /// When the item record last changed, server-local (Koha's `items.timestamp`, which a loan
    /// or a return changes too); `None`: [`FIXTURE_CHANGED`].
    #[serde(default)]
    pub timestamp: Option<String>,
}

/// A closed loan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedLoan {
    /// The item.
    pub barcode: String,
    /// The loan as it was.
    pub loan: Loan,
    /// Return date, server-local (may precede the issue date: docs/koha.md 7.2).
    pub returned_at: String,
    /// Library of the return (the session's).
    pub return_library: String,
}

/// A payment credited to a patron (docs/koha.md 7.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credit {
    /// The patron's card number.
    pub cardnumber: String,
    /// The amount as `decimal(28,6)`, e.g. `12.500000`.
    pub amount: String,
    /// The `branchcode` parameter.
    pub library: String,
    /// Always `koc`.
    pub interface: String,
    /// When it was credited: the stand-in's "now", server-local.
    pub date: String,
}

/// A row of `pending_offline_operations`, exactly as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRow {
    /// Auto-increment id.
    pub operationid: u64,
    /// Operator (`userid` parameter), at most 30 characters.
    pub userid: String,
    /// Library code, at most 10.
    pub branchcode: String,
    /// Server-local time.
    pub timestamp: String,
    /// Action, at most 10.
    pub action: String,
    /// Barcode (`''` when absent), at most 20.
    pub barcode: Option<String>,
    /// Card number (`''` when absent), at most 32.
    pub cardnumber: Option<String>,
    /// Amount as `decimal(28,6)`.
    pub amount: Option<String>,
}

/// A server session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The `CGISESSID` value.
    pub id: String,
    /// The logged-in user; `None` for an anonymous session.
    pub userid: Option<String>,
    /// The session library.
    pub library: Option<String>,
    /// Last use (UTC; RFC 3339 in JSON).
    #[serde(with = "rfc3339")]
    pub last_use: chrono::DateTime<chrono::Utc>,
    /// CSRF tokens bound to it.
    pub tokens: Vec<String>,
    /// Which endpoint created it.
    pub created_by: String,
}

/// Everything the stand-in knows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Model {
    /// Libraries.
    pub libraries: Vec<Library>,
    /// Accounts (also patrons).
    pub accounts: Vec<Account>,
    /// Items with their current loans.
    pub items: Vec<Item>,
    /// Closed loans, in order.
    pub closed_loans: Vec<ClosedLoan>,
    /// Credits, in order.
    pub credits: Vec<Credit>,
    /// Queue rows, in insertion order.
    pub queue: Vec<QueueRow>,
    /// Sessions, in creation order.
    pub sessions: Vec<Session>,
    /// The next queue id.
    pub next_operationid: u64,
}

impl Model {
    /// A model holding a fixture.
    pub fn from_fixture(fixture: &Fixture) -> Self {
        Model {
            libraries: fixture.libraries.clone(),
            accounts: fixture.accounts.clone(),
            items: fixture.items.clone(),
            next_operationid: 1,
            ..Model::default()
        }
    }

    /// Open loans as (barcode, loan).
    pub fn loans(&self) -> Vec<(String, Loan)> {
        self.items
            .iter()
            .filter_map(|i| Some((i.barcode.clone(), i.loan.clone()?)))
            .collect()
    }

    /// The item with this barcode.
    pub fn item(&self, barcode: &str) -> Option<&Item> {
        self.items.iter().find(|i| i.barcode == barcode)
    }

    /// The account with this user name.
    pub fn account(&self, userid: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.userid == userid)
    }

    /// Patron lookup of docs/koha.md 7.2: by card number, then by user name. Returns the index.
    pub fn find_patron(&self, key: &str) -> Option<usize> {
        if key.is_empty() {
            return None;
        }
        self.accounts
            .iter()
            .position(|a| a.cardnumber == key)
            .or_else(|| self.accounts.iter().position(|a| a.userid == key))
    }

    /// Login lookup of docs/koha.md 4.2: by user name, then by card number.
    pub fn find_login(&self, name: &str) -> Option<usize> {
        self.accounts
            .iter()
            .position(|a| a.userid == name)
            .or_else(|| self.accounts.iter().position(|a| a.cardnumber == name))
    }

    /// Sessions with a user.
    pub fn logged_in_sessions(&self) -> usize {
        self.sessions.iter().filter(|s| s.userid.is_some()).count()
    }
}

/// The starting data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fixture {
    /// Libraries.
    pub libraries: Vec<Library>,
    /// Accounts.
    pub accounts: Vec<Account>,
    /// Items.
    pub items: Vec<Item>,
}

/// When the fixture's `C0008` and `B0048` last changed.
pub const LATER_CHANGE: &str = "2026-11-30 10:00:00";

/// The demo librarian's login.
pub const DEMO_USER: &str = "desk";
/// The demo librarian's password.
pub const DEMO_PASSWORD: &str = "secret123";

impl Default for Fixture {
    /// Libraries `DE-627` and `DE-25`; librarians `desk`/`secret123` (edit_catalogue, card
    /// `S0001`), `clerk`/`clerk123` (no permission, card `S0002`), `admin`/`admin123`
    /// (superlibrarian, card `S0003`, home `DE-25`); patrons `patron01`..`patron10` with cards
    /// `C0001`..`C0010` and passwords `patron01pw`..; items `B0001`..`B0050`, where `B0049` is on
    /// loan to `C0009` and `B0050` is lost and on loan to `C0010`. For the offline checks:
    /// `C0003` expired on 2025-01-31, `C0004` is restricted, `C0005`'s card is lost, `C0006`'s
    /// address is in doubt, `C0007` owes 12.50; `B0045` is withdrawn, `B0046` not for loan,
    /// `B0047` damaged. Every record last changed on 2026-01-01 except `C0008` and `B0048`,
    /// changed on 2026-11-30 at 10:00 (for the incremental pulls' `q`).
    fn default() -> Self {
        let account = |userid: &str, card: &str, pw: &str, home: &str, permission| Account {
            userid: userid.to_owned(),
            cardnumber: card.to_owned(),
            password: pw.to_owned(),
            home_library: home.to_owned(),
            permission,
            locked: false,
            failed_logins: 0,
            expiry_date: Some("2099-12-31".to_owned()),
            restricted: false,
            card_lost: false,
            address_in_doubt: false,
            balance_cents: 0,
            updated_on: None,
        };
        let mut accounts = vec![
            account(
                DEMO_USER,
                "S0001",
                DEMO_PASSWORD,
                "DE-627",
                Permission::EditCatalogue,
            ),
            account("clerk", "S0002", "clerk123", "DE-627", Permission::None),
            account(
                "admin",
                "S0003",
                "admin123",
                "DE-25",
                Permission::Superlibrarian,
            ),
        ];
        for n in 1..=10 {
            let home = if n % 2 == 0 { "DE-25" } else { "DE-627" };
            let mut patron = account(
                &format!("patron{n:02}"),
                &format!("C{n:04}"),
                &format!("patron{n:02}pw"),
                home,
                Permission::None,
            );
            // What the offline checks warn about (docs/koha.md 12.2).
            match n {
                3 => patron.expiry_date = Some("2025-01-31".to_owned()),
                4 => patron.restricted = true,
                5 => patron.card_lost = true,
                6 => patron.address_in_doubt = true,
                7 => patron.balance_cents = 1250,
                8 => patron.updated_on = Some(LATER_CHANGE.to_owned()),
                _ => {}
            }
            accounts.push(patron);
        }
        let loan = |card: &str| Loan {
            cardnumber: card.to_owned(),
            issued_at: "2026-01-05 10:00:00".to_owned(),
            due_at: "2026-01-19 23:59:00".to_owned(),
            renewals: 0,
            library: "DE-627".to_owned(),
        };
        let items = (1..=50)
            .map(|n| Item {
                barcode: format!("B{n:04}"),
                lost: n == 50,
                withdrawn: n == 45,
                not_for_loan: n == 46,
                damaged: n == 47,
                loan: match n {
                    49 => Some(loan("C0009")),
                    50 => Some(loan("C0010")),
                    _ => None,
                },
                last_seen: None,
                timestamp: (n == 48).then(|| LATER_CHANGE.to_owned()),
            })
            .collect();
        Fixture {
            libraries: vec![
                Library {
                    code: "DE-627".to_owned(),
                    name: "Verbundzentrale des GBV".to_owned(),
                    ip_prefix: None,
                },
                Library {
                    code: "DE-25".to_owned(),
                    name: "Universitätsbibliothek Freiburg".to_owned(),
                    ip_prefix: None,
                },
            ],
            accounts,
            items,
        }
    }
}

/// RFC 3339 (de)serialisation of instants, without chrono's serde feature.
pub mod rfc3339 {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises as RFC 3339.
    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&at.to_rfc3339())
    }

    /// Parses RFC 3339.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).map_err(serde::de::Error::custom)
    }

    /// Parses RFC 3339 into UTC.
    pub fn parse(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
        DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc))
    }
}
