//! A whole download as a value: the patrons, then the items, then the checkouts, page by page.
//! The shell performs [`Download::request`] and feeds back each answer; once
//! [`Download::request`] gives nothing more, [`Download::finish`] makes the snapshot. Nothing is
//! stored before that, so a download that fails never replaces a good snapshot.

use super::model::{Coverage, PatronRecord, Snapshot};
use super::paging::{Access, List, Pager, Progress};
use super::rest::{
    join_loans, parse_checkouts, parse_items, parse_patrons, CheckoutRow, ItemRow, PageError,
};
use crate::kinds::kinds;
use crate::koha::HttpRequest;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a list is left out of the snapshot: its checks are unavailable, the others go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Unavailable {
    /// 401 or 403: the staff user lacks the list's permission (docs/koha.md 12.2 to 12.4) or
    /// the REST API refuses this way of logging in.
    Forbidden {
        /// The HTTP status.
        http_status: u16,
    },
    /// 404: this Koha has no such list (older versions, or the REST API switched off).
    NotFound,
}

kinds!(Unavailable {
    Forbidden => "forbidden",
    NotFound => "not-found",
});

/// Why the download stopped. It can go on: feeding the same page again resumes it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DownloadError {
    /// A page could not be read.
    #[error("{list} page {page}: {error}")]
    Page {
        /// The list.
        list: List,
        /// The page, from 1.
        page: u32,
        /// What was wrong with it.
        error: PageError,
    },
    /// Koha answered with another status than 200 (a server error half way, a gateway, a
    /// session that ended), or than 401, 403 or 404 on a list's first page: maybe a passing
    /// fault, so the page is worth asking for again later.
    #[error("{list} page {page}: Koha answered HTTP {http_status}")]
    Status {
        /// The list.
        list: List,
        /// The page, from 1.
        page: u32,
        /// The HTTP status.
        http_status: u16,
    },
}

kinds!(DownloadError {
    Page => "page",
    Status => "status",
});

/// A download in progress. See the module documentation.
#[derive(Debug, Clone)]
pub struct Download {
    started_at: DateTime<Utc>,
    access: Access,
    pager: Pager,
    base: String,
    per_page: u32,
    patrons: Vec<PatronRecord>,
    items: Vec<ItemRow>,
    checkouts: Vec<CheckoutRow>,
    coverage: Coverage,
    unavailable: Vec<(List, Unavailable)>,
    finished: bool,
}

impl Download {
    /// Starts reading the Koha at `base`, `per_page` records a page, with the staff session.
    /// `started_at` becomes the snapshot's time: nothing in it is older than that.
    pub fn new(base: &str, per_page: u32, started_at: DateTime<Utc>) -> Download {
        Download::with_access(base, per_page, started_at, Access::Session)
    }

    /// As [`Download::new`], authenticated by `access`.
    pub fn with_access(
        base: &str,
        per_page: u32,
        started_at: DateTime<Utc>,
        access: Access,
    ) -> Download {
        Download {
            started_at,
            access,
            pager: Pager::new(base, List::Patrons, per_page),
            base: base.to_owned(),
            per_page,
            patrons: Vec::new(),
            items: Vec::new(),
            checkouts: Vec::new(),
            coverage: Coverage::default(),
            unavailable: Vec::new(),
            finished: false,
        }
    }

    /// The next page to fetch, or `None` when every list is read (or left out).
    pub fn request(&self) -> Option<HttpRequest> {
        if self.finished {
            None
        } else {
            self.pager.request().map(|r| self.access.apply(r))
        }
    }

    /// Where the list being read stands, and which list it is.
    pub fn progress(&self) -> (List, Progress) {
        (self.pager.list(), self.pager.progress())
    }

    /// The lists left out so far, and why.
    pub fn unavailable(&self) -> &[(List, Unavailable)] {
        &self.unavailable
    }

    /// Takes in the answer to [`Download::request`]: its HTTP status, its `X-Total-Count`
    /// header and its body. After an error nothing changed: the same page is asked for again.
    pub fn feed(
        &mut self,
        http_status: u16,
        total_count: Option<&str>,
        body: &str,
    ) -> Result<(), DownloadError> {
        if self.finished {
            return Ok(());
        }
        let list = self.pager.list();
        let page = self.pager.page();
        // Only a list's first page tells whether the list is there for this user: a refusal
        // later (a session that ended) is an error to retry, not a missing permission.
        let unavailable = match http_status {
            200 => None,
            401 | 403 if page == 1 => Some(Unavailable::Forbidden { http_status }),
            404 if page == 1 => Some(Unavailable::NotFound),
            _ => {
                return Err(DownloadError::Status {
                    list,
                    page,
                    http_status,
                })
            }
        };
        if let Some(why) = unavailable {
            self.leave_out(why);
            return Ok(());
        }
        let error = |error| DownloadError::Page { list, page, error };
        let records = match list {
            List::Patrons => {
                let rows = parse_patrons(body).map_err(error)?;
                let count = rows.len();
                self.patrons
                    .extend(rows.into_iter().filter_map(|r| r.record));
                count
            }
            List::Items => {
                let rows = parse_items(body).map_err(error)?;
                let count = rows.len();
                self.items.extend(rows);
                count
            }
            List::Checkouts => {
                let rows = parse_checkouts(body).map_err(error)?;
                let count = rows.len();
                self.checkouts.extend(rows);
                count
            }
        };
        if self.pager.feed(records, total_count).done {
            match list {
                List::Patrons => self.coverage.patrons = true,
                List::Items => self.coverage.items = true,
                List::Checkouts => self.coverage.checkouts = true,
            }
            self.next_list();
        }
        Ok(())
    }

    /// The snapshot, once [`Download::request`] gives nothing more; `None` before.
    pub fn finish(self) -> Option<Snapshot> {
        if !self.finished {
            return None;
        }
        let items = join_loans(self.items, &self.checkouts);
        Some(
            Snapshot::new(self.started_at, self.coverage, self.patrons, items)
                .with_unavailable(self.unavailable),
        )
    }

    fn leave_out(&mut self, why: Unavailable) {
        self.unavailable.push((self.pager.list(), why));
        self.next_list();
    }

    fn next_list(&mut self) {
        let next = match self.pager.list() {
            List::Patrons => Some(List::Items),
            List::Items => Some(List::Checkouts),
            List::Checkouts => None,
        };
        match next {
            Some(list) => self.pager = Pager::new(&self.base, list, self.per_page),
            None => self.finished = true,
        }
    }
}
