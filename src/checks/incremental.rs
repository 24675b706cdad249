//! Incremental pulls: when a complete snapshot is stored and its last full pull is younger than
//! [`FULL_PULL_EVERY`], a download asks Koha only for the patrons and items changed since the
//! last pull (`q` on `updated_on` and `timestamp`) and merges them into the stored snapshot.
//! Deletions never show up that way (a deleted record has no `updated_on` left to filter on), so
//! a full pull comes at least weekly, and whenever the librarian asks for one.
//!
//! The "since" instant comes from Koha's own clock, the `Date` header of the previous pull's
//! first answer, never from the desk's: a desk clock running ahead would otherwise skip changes.

use super::download::Download;
use super::model::Snapshot;
use crate::koha::Credentials;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

/// A full pull at least this often: deletions in Koha reach the snapshot only through one.
pub const FULL_PULL_EVERY: Duration = Duration::days(7);

/// How far before Koha's time of the previous pull the next one starts asking.
///
/// Koha compares a `q` value with a datetime column as the database does: in every version we
/// read, `Koha/REST/Plugin/Query.pm` (`_parse_dbic_query`) maps only the field names
/// (`from_api_mapping`) and hands the value to the database unchanged, and the columns hold
/// Koha's local time (`updated_on`, `items.timestamp`). Only `Koha/Object.pm`'s
/// `attributes_from_api`, used for bodies and plain query parameters, converts an RFC 3339 value
/// with offset to local time (`dt_from_string(…, 'rfc3339')`). So the value goes without an
/// offset, and since the desk does not know the zone Koha's database runs in, the margin covers
/// every zone: a UTC time read as the local time of a zone west of Greenwich names a later
/// instant, at most 12 hours later (UTC−12), so the margin must be more than that; east of
/// Greenwich it only reaches further back. Three more hours cover a database clock behind the
/// web server's. Pulling a day's changes twice costs little; missing one would be wrong.
pub const SINCE_MARGIN: Duration = Duration::hours(15);

/// What kind of pull a download makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Pull {
    /// Every record of every list.
    Full {
        /// Why not only the changes.
        why: FullWhy,
    },
    /// Only patrons and items changed since `since` (the `q` value, Koha's local time format);
    /// checkouts whole.
    Incremental {
        /// The `>=` value of the `q` filter.
        since: String,
    },
}

/// Why a download pulls everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FullWhy {
    /// No snapshot is stored.
    NoSnapshot,
    /// The librarian asked for a full pull.
    Asked,
    /// The last full pull is [`FULL_PULL_EVERY`] old or older (or dated in the future: the
    /// desk's clock was wrong then).
    Weekly,
    /// The stored snapshot came from another server or login.
    OtherSource,
    /// The stored snapshot lacks the patron or item list: changes alone cannot complete it.
    Incomplete,
    /// Koha's time of the last pull is unknown (no `Date` header, or a snapshot stored before
    /// incremental pulls).
    NoKohaTime,
}

/// The source a snapshot is pulled from: the server and the login, whose library limits the
/// patron list.
pub fn pull_source(server: &str, userid: &str) -> String {
    format!("{}|{userid}", server.trim_end_matches('/'))
}

/// Whether the next download pulls everything or only the changes since the stored snapshot.
pub fn plan_pull(
    stored: Option<&Snapshot>,
    source: &str,
    full_asked: bool,
    now: DateTime<Utc>,
) -> Pull {
    let full = |why| Pull::Full { why };
    let Some(snapshot) = stored else {
        return full(FullWhy::NoSnapshot);
    };
    if full_asked {
        return full(FullWhy::Asked);
    }
    let since_full = now - snapshot.full_at();
    if since_full >= FULL_PULL_EVERY || since_full < Duration::zero() {
        return full(FullWhy::Weekly);
    }
    if snapshot.pull().source.as_deref() != Some(source) {
        return full(FullWhy::OtherSource);
    }
    let coverage = snapshot.coverage();
    if !coverage.patrons || !coverage.items {
        return full(FullWhy::Incomplete);
    }
    match snapshot.pull().koha_at {
        Some(koha_at) => Pull::Incremental {
            since: since_value(koha_at),
        },
        None => full(FullWhy::NoKohaTime),
    }
}

/// Whether a download that stopped (a failure, a cancel) goes on from where it stopped when the
/// librarian starts again: not when a full pull is asked for and it reads only the changes.
pub fn goes_on(stopped: &Download, full_asked: bool) -> bool {
    !(full_asked && stopped.is_incremental())
}

/// A download that stopped (a failure, a cancel), kept with the server and login it was for.
pub struct StoppedDownload {
    server: String,
    login: Credentials,
    download: Download,
}

impl StoppedDownload {
    /// Keeps `download`, stopped while reading `server` as `login`.
    pub fn new(server: &str, login: Credentials, download: Download) -> StoppedDownload {
        StoppedDownload {
            server: server.to_owned(),
            login,
            download,
        }
    }

    /// The download to go on with when the librarian starts again for `server` as `login`:
    /// only the same server and login go on from where it stopped (another's pages would mix
    /// two Kohas, or what one login may see with another's), and only as [`goes_on`] allows.
    pub fn resume(self, server: &str, login: &Credentials, full_asked: bool) -> Option<Download> {
        (self.server == server && self.login == *login && goes_on(&self.download, full_asked))
            .then_some(self.download)
    }
}

/// The `q` value for changes since Koha's time `koha_at`: [`SINCE_MARGIN`] earlier, as
/// `YYYY-MM-DDTHH:MM:SS` without an offset (see [`SINCE_MARGIN`] for why).
pub fn since_value(koha_at: DateTime<Utc>) -> String {
    crate::zone::local_text((koha_at - SINCE_MARGIN).naive_utc(), "-", "T", ":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::{Coverage, PullRecord};
    use chrono::TimeZone;

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, day, hour, 0, 0).unwrap()
    }

    const SOURCE: &str = "https://koha.example.org|desk";

    fn stored(full_at: DateTime<Utc>, koha_at: Option<DateTime<Utc>>) -> Snapshot {
        let all = Coverage {
            patrons: true,
            items: true,
            checkouts: true,
        };
        Snapshot::new(at(3, 8), all, Vec::new(), Vec::new()).with_pull(PullRecord {
            full_at: Some(full_at),
            koha_at,
            source: Some(SOURCE.to_owned()),
        })
    }

    #[test]
    fn changes_only_while_the_last_full_pull_is_younger_than_a_week() {
        let snapshot = stored(at(1, 9), Some(at(3, 8)));
        let since = "2026-12-02T17:00:00".to_owned();
        assert_eq!(
            plan_pull(Some(&snapshot), SOURCE, false, at(8, 8)),
            Pull::Incremental { since }
        );
        assert_eq!(
            plan_pull(Some(&snapshot), SOURCE, false, at(8, 9)),
            Pull::Full {
                why: FullWhy::Weekly
            },
            "exactly seven days after the full pull"
        );
        assert_eq!(
            plan_pull(Some(&snapshot), SOURCE, false, at(1, 8)),
            Pull::Full {
                why: FullWhy::Weekly
            },
            "a full pull dated in the future"
        );
    }

    #[test]
    fn everything_is_pulled_when_changes_alone_would_not_do() {
        let now = at(4, 8);
        let full = |why| Pull::Full { why };
        assert_eq!(
            plan_pull(None, SOURCE, false, now),
            full(FullWhy::NoSnapshot)
        );
        let snapshot = stored(at(1, 9), Some(at(3, 8)));
        assert_eq!(
            plan_pull(Some(&snapshot), SOURCE, true, now),
            full(FullWhy::Asked)
        );
        assert_eq!(
            plan_pull(
                Some(&snapshot),
                "https://koha.example.org|other",
                false,
                now
            ),
            full(FullWhy::OtherSource)
        );
        let unknown_time = stored(at(1, 9), None);
        assert_eq!(
            plan_pull(Some(&unknown_time), SOURCE, false, now),
            full(FullWhy::NoKohaTime)
        );
        let no_items = Snapshot::new(
            at(3, 8),
            Coverage {
                patrons: true,
                items: false,
                checkouts: true,
            },
            Vec::new(),
            Vec::new(),
        )
        .with_pull(snapshot.pull().clone());
        assert_eq!(
            plan_pull(Some(&no_items), SOURCE, false, now),
            full(FullWhy::Incomplete)
        );
    }

    #[test]
    fn a_snapshot_taken_whole_counts_its_own_time_as_its_full_pull() {
        let all = Coverage {
            patrons: true,
            items: true,
            checkouts: true,
        };
        let whole = Snapshot::new(at(1, 9), all, Vec::new(), Vec::new()).with_pull(PullRecord {
            full_at: None,
            koha_at: Some(at(1, 9)),
            source: Some(SOURCE.to_owned()),
        });
        assert_eq!(whole.full_at(), at(1, 9));
        assert!(matches!(
            plan_pull(Some(&whole), SOURCE, false, at(8, 9)),
            Pull::Full { .. }
        ));
    }

    #[test]
    fn the_since_value_is_koha_time_minus_the_margin_without_offset() {
        assert_eq!(since_value(at(3, 8)), "2026-12-02T17:00:00");
        assert_eq!(
            pull_source("https://koha.example.org/", "desk"),
            "https://koha.example.org|desk"
        );
    }
}
