//! Several requests in flight in queue mode, in Firefox against the stand-in: a dropped
//! connection makes exactly its own transaction `uncertain`, nothing reaches Koha twice, and
//! operations of the same second on the same item reach Koha's pending table in recorded order.

use chrono::{TimeDelta, Utc};
use e2e::desk::{record_batch, transactions};
use e2e::firefox::{Firefox, Options};
use e2e::sending::{send, with_desk_sending_to, DeskSettings};
use e2e::standin::{Config, Fault, FaultRule, Profile, QueueRow, StandIn, When};
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

fn service(params: &[(&str, &str)]) -> When {
    When {
        path: Some("service.pl".into()),
        params: params
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        ..When::default()
    }
}

/// Statuses by barcode (or card number for a payment), as the core has them.
async fn statuses(ff: &Firefox) -> HashMap<String, String> {
    transactions(ff)
        .await
        .into_iter()
        .map(|r| {
            let what = r["barcode"]
                .as_str()
                .or(r["cardnumber"].as_str())
                .expect("barcode or card")
                .to_owned();
            (what, r["status"].as_str().expect("status").to_owned())
        })
        .collect()
}

/// The pending table's row of an operation, by its action and item (or patron).
fn row<'a>(rows: &'a [QueueRow], action: &str, what: &str) -> &'a QueueRow {
    let matching: Vec<&QueueRow> = rows
        .iter()
        .filter(|r| {
            r.action == action
                && (r.barcode.as_deref() == Some(what) || r.cardnumber.as_deref() == Some(what))
        })
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "{action} {what} once in the pending table"
    );
    matching[0]
}

/// Queue mode, three in flight. The first run starts three at once: a slow one, one whose
/// connection drops after the stand-in stored it, and a third. The drop stops the run from
/// starting more; the others in flight finish. The second run sends the rest, among them a
/// checkout and a checkin of one item in the same second whose checkout waits behind a payment
/// of the same patron: the checkin must not overtake it.
#[tokio::test(flavor = "multi_thread")]
async fn requests_in_flight_keep_every_transaction_once_and_same_second_order() {
    for profile in [Profile::Newest, Profile::Koha2405, Profile::Legacy] {
        let koha = StandIn::start(Config {
            profile,
            // Every request on a fresh connection, where Firefox never re-sends a dropped POST.
            keep_alive: false,
            ..Config::default()
        })
        .expect("stand-in");
        koha.set_faults(vec![
            FaultRule::nth(
                Fault::Delay { ms: 1500 },
                service(&[("action", "return"), ("barcode", "B0041")]),
            ),
            FaultRule::nth(
                Fault::Drop,
                service(&[("action", "return"), ("barcode", "B0042")]),
            ),
            // Finishes after the drop is known, as described above: without it, its answer
            // could reach the page first, and the run would rightly start a fourth request.
            FaultRule::nth(
                Fault::Delay { ms: 300 },
                service(&[("action", "return"), ("barcode", "B0043")]),
            ),
            FaultRule::nth(
                Fault::Delay { ms: 800 },
                service(&[("action", "payment"), ("cardnumber", "C0001")]),
            ),
        ]);
        let settings = DeskSettings {
            in_flight: 3,
            ..DeskSettings::queue(&koha)
        };
        with_desk_sending_to(
            Options::granting_permissions(),
            koha,
            settings,
            move |ff, koha| async move {
                let start = (Utc::now() - TimeDelta::hours(1)).timestamp() * 1000;
                let batch = json!([
                    {"action": "return", "barcode": "B0041", "at": start},
                    {"action": "return", "barcode": "B0042", "at": start + 1000},
                    {"action": "return", "barcode": "B0043", "at": start + 2000},
                    {"action": "payment", "cardnumber": "C0001", "amount": "2", "at": start + 3000},
                    {"action": "issue", "cardnumber": "C0001", "barcode": "B0010", "at": start + 4000},
                    {"action": "return", "barcode": "B0010", "at": start + 4300},
                    {"action": "return", "barcode": "B0044", "at": start + 5000},
                    {"action": "issue", "cardnumber": "C0003", "barcode": "B0020", "at": start + 6000},
                    {"action": "return", "barcode": "B0045", "at": start + 7000},
                ]);
                assert_eq!(record_batch(&ff, &batch).await, 9);

                assert_eq!(send(&ff, WAIT).await, "ran");
                let after_first = statuses(&ff).await;
                assert_eq!(after_first["B0042"], "uncertain", "{profile:?}");
                // Sent while the slow one and the dropped one were in flight, and finished after
                // the drop: one at a time, the run would have stopped before it.
                assert_eq!(after_first["B0043"], "queued", "{profile:?}");
                assert_eq!(after_first["B0041"], "queued", "{profile:?}");
                let uncertain = after_first.values().filter(|s| *s == "uncertain").count();
                assert_eq!(uncertain, 1, "{profile:?}: {after_first:?}");
                assert_eq!(koha.transaction_requests().len(), 3, "nothing more started");

                assert_eq!(send(&ff, WAIT).await, "ran");
                let after_second = statuses(&ff).await;
                for (what, status) in &after_second {
                    let expected = if what == "B0042" { "uncertain" } else { "queued" };
                    assert_eq!(status, expected, "{profile:?}: {what}");
                }
                // The dropped one was stored by Koha; every operation is there once.
                assert_eq!(koha.transaction_requests().len(), 9, "nothing sent twice");
                let rows = koha.queue_for("DE-627");
                assert_eq!(rows.len(), 9);
                let checkout = row(&rows, "issue", "B0010");
                let checkin = row(&rows, "return", "B0010");
                assert_eq!(checkout.timestamp, checkin.timestamp, "the same second");
                assert!(
                    checkout.operationid < checkin.operationid,
                    "{profile:?}: the checkin overtook its checkout of the same second"
                );
                assert!(row(&rows, "payment", "C0001").operationid < checkout.operationid);
            },
        )
        .await;
    }
}
