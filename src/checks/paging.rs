//! Which page of a Koha REST list to ask for next, and when the list is complete
//! (docs/koha.md 12.1). A value the shell drives: it performs [`Pager::request`], reads the page
//! and feeds back how many records it held and the `X-Total-Count` header.

use super::compact::base64_encode;
use crate::kinds::kinds;
use crate::koha::{Credentials, HttpRequest, Method, REQUEST_TIMEOUT_SECS};
use serde::{Deserialize, Serialize};

/// Records asked for per page. Large pages make fewer requests; Koha answers 5,000 patrons in
/// well under its time-outs.
pub const DEFAULT_PER_PAGE: u32 = 1000;

/// A test-only `localStorage` key: fewer records a page, so that the browser tests see lists of
/// several pages from a small stand-in (see [`per_page`]).
pub const PER_PAGE_OVERRIDE_KEY: &str = "koha-offline-circ:test-checks-per-page";

/// Records a page: [`DEFAULT_PER_PAGE`], or fewer when a test asked for it (`test_override`, the
/// text of [`PER_PAGE_OVERRIDE_KEY`]): a whole number from 1 to the default, never more.
pub fn per_page(test_override: Option<&str>) -> u32 {
    test_override
        .and_then(|text| text.trim().parse::<u32>().ok())
        .filter(|n| (1..=DEFAULT_PER_PAGE).contains(n))
        .unwrap_or(DEFAULT_PER_PAGE)
}

/// One of the lists the checks read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum List {
    /// `/api/v1/patrons`, with the account balance embedded.
    Patrons,
    /// `/api/v1/items`.
    Items,
    /// `/api/v1/checkouts` (current loans).
    Checkouts,
}

kinds!(List: name, NAMES {
    Patrons => "patrons",
    Items => "items",
    Checkouts => "checkouts",
});

impl std::fmt::Display for List {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl List {
    /// The path under the staff interface's origin.
    pub fn path(self) -> &'static str {
        match self {
            List::Patrons => "/api/v1/patrons",
            List::Items => "/api/v1/items",
            List::Checkouts => "/api/v1/checkouts",
        }
    }

    /// The staff permission Koha asks for to read this list (docs/koha.md 12.2 to 12.4): what
    /// the options page names when Koha refuses it.
    pub fn permission(self) -> &'static str {
        match self {
            List::Patrons => "list_borrowers",
            List::Items => "catalogue",
            List::Checkouts => "circulate_remaining_permissions",
        }
    }

    /// The field whose `>=` filter gives the records changed since a time, for an incremental
    /// pull; `None`: the list is always read whole. Checkouts are: a returned loan leaves the
    /// list of current loans without a trace, so the changes since a time cannot tell it; only
    /// the whole list says which loans are still open.
    pub fn changed_field(self) -> Option<&'static str> {
        match self {
            List::Patrons => Some("updated_on"),
            List::Items => Some("timestamp"),
            List::Checkouts => None,
        }
    }

    /// The id the pages are ordered by, so that records do not move between pages while they
    /// are read (Koha's default order is not guaranteed).
    fn order_by(self) -> &'static str {
        match self {
            List::Patrons => "+patron_id",
            List::Items => "+item_id",
            List::Checkouts => "+checkout_id",
        }
    }
}

/// How the pages are authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Access {
    /// The staff session's cookie (from `svc/authentication`); a GET needs no CSRF token.
    #[default]
    Session,
    /// HTTP Basic, which Koha accepts only with its `RESTBasicAuth` preference on (and only for
    /// passwords Koha itself keeps). No cookie goes with it, so no session gets in the way.
    Basic(Credentials),
}

impl Access {
    /// `request` as this access sends it.
    pub fn apply(&self, mut request: HttpRequest) -> HttpRequest {
        if let Access::Basic(credentials) = self {
            let pair = format!("{}:{}", credentials.userid, credentials.password);
            request.headers.push((
                "Authorization".to_owned(),
                format!("Basic {}", base64_padded(pair.as_bytes())),
            ));
            request.include_cookies = false;
        }
        request
    }
}

/// Base64 with the `=` padding HTTP Basic expects.
fn base64_padded(bytes: &[u8]) -> String {
    let mut text = base64_encode(bytes);
    while text.len() % 4 != 0 {
        text.push('=');
    }
    text
}

/// Where reading one list stands. Serialisable, so a download can go on after the page is
/// closed or a request failed: the failed page is simply asked for again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pager {
    list: List,
    base: String,
    per_page: u32,
    next_page: u32,
    received: u64,
    total: Option<u64>,
    done: bool,
    /// Koha's `q` filter, JSON; `None`: the whole list.
    #[serde(default)]
    filter: Option<String>,
}

/// How far a list has been read: for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// Records received so far.
    pub received: u64,
    /// What Koha said the list holds, if it said.
    pub total: Option<u64>,
    /// Nothing more to ask for.
    pub done: bool,
}

impl Pager {
    /// Reads `list` from the Koha at `base` (the staff interface's origin), `per_page` records at
    /// a time (at least 1).
    pub fn new(base: &str, list: List, per_page: u32) -> Pager {
        Pager {
            list,
            base: base.trim_end_matches('/').to_owned(),
            per_page: per_page.max(1),
            next_page: 1,
            received: 0,
            total: None,
            done: false,
            filter: None,
        }
    }

    /// Reads only the records of the list changed at or after `since` (Koha's local time, see
    /// `checks::since_value`), when the list can be read that way ([`List::changed_field`]);
    /// otherwise the whole list.
    pub fn changed_since(mut self, since: &str) -> Pager {
        self.filter = self
            .list
            .changed_field()
            .map(|field| serde_json::json!({ field: { ">=": since } }).to_string());
        self
    }

    /// Whether it reads only changed records.
    pub fn is_filtered(&self) -> bool {
        self.filter.is_some()
    }

    /// The list being read.
    pub fn list(&self) -> List {
        self.list
    }

    /// The page [`Pager::request`] asks for (from 1).
    pub fn page(&self) -> u32 {
        self.next_page
    }

    /// The next page to fetch, or `None` once the list is complete. The session cookie goes
    /// with it; a GET needs no CSRF token.
    pub fn request(&self) -> Option<HttpRequest> {
        (!self.done).then(|| self.request_for(self.next_page))
    }

    /// The page after [`Pager::request`]'s, when Koha's total says there is one: the shell may
    /// fetch it while the current page is read (a list of a million items is a thousand pages,
    /// and reading one costs about as much as waiting for the next). `None` before the first
    /// page gave the total.
    pub fn request_after(&self) -> Option<HttpRequest> {
        let total = self.total?;
        let next_start = u64::from(self.next_page) * u64::from(self.per_page);
        (!self.done && next_start < total).then(|| self.request_for(self.next_page + 1))
    }

    fn request_for(&self, page: u32) -> HttpRequest {
        let mut params = vec![
            ("_page", page.to_string()),
            ("_per_page", self.per_page.to_string()),
            ("_order_by", self.list.order_by().to_owned()),
        ];
        if let Some(filter) = &self.filter {
            params.push(("q", filter.clone()));
        }
        let mut headers = vec![("Accept".to_owned(), "application/json".to_owned())];
        if self.list == List::Patrons {
            headers.push(("x-koha-embed".to_owned(), "account_balance".to_owned()));
        }
        HttpRequest {
            method: Method::Get,
            url: format!("{}{}", self.base, self.list.path()),
            params: params
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect(),
            headers,
            include_cookies: true,
            timeout_secs: REQUEST_TIMEOUT_SECS,
        }
    }

    /// Takes in the page just fetched: how many records it held and its `X-Total-Count` header.
    /// The list is complete after a short page (fewer than asked for, also an empty one) or
    /// once the total is reached.
    pub fn feed(&mut self, records: usize, total_count: Option<&str>) -> Progress {
        if !self.done {
            if let Some(total) = total_count.and_then(|t| t.trim().parse::<u64>().ok()) {
                self.total = Some(total);
            }
            self.received += records as u64;
            self.next_page += 1;
            let short = records < self.per_page as usize;
            let reached = self.total.is_some_and(|total| self.received >= total);
            self.done = short || reached;
        }
        self.progress()
    }

    /// How far it is.
    pub fn progress(&self) -> Progress {
        Progress {
            received: self.received,
            total: self.total,
            done: self.done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_asked_for_in_order_until_a_short_one() {
        let mut pager = Pager::new("https://koha.example.org/", List::Items, 2);
        let first = pager.request().unwrap();
        assert_eq!(
            first.full_url(),
            "https://koha.example.org/api/v1/items?_page=1&_per_page=2&_order_by=%2Bitem_id"
        );
        assert!(first.include_cookies);
        assert!(!pager.feed(2, None).done);
        assert_eq!(pager.request().unwrap().param("_page"), Some("2"));
        let last = pager.feed(1, None);
        assert_eq!(
            last,
            Progress {
                received: 3,
                total: None,
                done: true
            }
        );
        assert_eq!(pager.request(), None);
    }

    #[test]
    fn basic_access_sends_the_credentials_and_no_cookie() {
        let pager = Pager::new("https://koha.example.org", List::Items, 10);
        let credentials = Credentials {
            userid: crate::Userid::parse("desk").unwrap(),
            password: "secret1".to_owned(),
        };
        let request = Access::Basic(credentials).apply(pager.request().unwrap());
        assert!(request.headers.contains(&(
            "Authorization".to_owned(),
            "Basic ZGVzazpzZWNyZXQx".to_owned()
        )));
        assert!(!request.include_cookies);
        assert_eq!(base64_padded(b"ab:c"), "YWI6Yw==");
        let session = Access::Session.apply(pager.request().unwrap());
        assert_eq!(session, pager.request().unwrap());
    }

    #[test]
    fn a_test_may_ask_for_smaller_pages_only() {
        assert_eq!(per_page(None), DEFAULT_PER_PAGE);
        assert_eq!(per_page(Some(" 3 ")), 3);
        assert_eq!(per_page(Some("0")), DEFAULT_PER_PAGE);
        assert_eq!(per_page(Some("5000")), DEFAULT_PER_PAGE);
        assert_eq!(per_page(Some("many")), DEFAULT_PER_PAGE);
    }

    #[test]
    fn the_page_after_is_known_once_the_total_says_there_is_one() {
        let mut pager = Pager::new("https://koha.example.org", List::Items, 2);
        assert_eq!(
            pager.request_after(),
            None,
            "no total before the first page"
        );
        pager.feed(2, Some("5"));
        assert_eq!(pager.request().unwrap().param("_page"), Some("2"));
        assert_eq!(pager.request_after().unwrap().param("_page"), Some("3"));
        pager.feed(2, Some("5"));
        assert_eq!(pager.request().unwrap().param("_page"), Some("3"));
        assert_eq!(pager.request_after(), None, "page 3 is the last");
        pager.feed(1, Some("5"));
        assert_eq!(pager.request_after(), None);
    }

    #[test]
    fn changes_are_asked_for_by_patrons_and_items_but_never_checkouts() {
        let since = "2026-12-02T17:00:00";
        let patrons = Pager::new("https://koha.example.org", List::Patrons, 2).changed_since(since);
        assert_eq!(
            patrons.request().unwrap().param("q"),
            Some(r#"{"updated_on":{">=":"2026-12-02T17:00:00"}}"#)
        );
        let items = Pager::new("https://koha.example.org", List::Items, 2).changed_since(since);
        assert_eq!(
            items.request().unwrap().param("q"),
            Some(r#"{"timestamp":{">=":"2026-12-02T17:00:00"}}"#)
        );
        let loans = Pager::new("https://koha.example.org", List::Checkouts, 2).changed_since(since);
        assert!(!loans.is_filtered());
        assert_eq!(loans.request().unwrap().param("q"), None);
        let whole = Pager::new("https://koha.example.org", List::Items, 2);
        assert_eq!(whole.request().unwrap().param("q"), None);
    }

    #[test]
    fn the_total_ends_a_list_of_full_pages() {
        let mut pager = Pager::new("https://koha.example.org", List::Patrons, 2);
        let request = pager.request().unwrap();
        assert!(request
            .headers
            .contains(&("x-koha-embed".to_owned(), "account_balance".to_owned())));
        assert!(!pager.feed(2, Some("4")).done);
        assert!(pager.feed(2, Some("4")).done);
        assert_eq!(pager.request(), None);
    }
}
