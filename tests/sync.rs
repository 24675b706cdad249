//! The send run state machine (§3.3).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use chrono::{DateTime, Duration, TimeZone, Utc};
use koha_offline_circ::koha::{classify, classify_no_answer, Answer, NoAnswer, Transport};
use koha_offline_circ::sync::*;
use koha_offline_circ::{
    Action, Amount, Barcode, Branchcode, Cardnumber, Status, Transaction, TransactionId,
};

fn at(s: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 29, 0, 0, 0).unwrap() + Duration::seconds(s)
}

fn tx(sec: i64, random: u64, action: Action) -> Transaction {
    Transaction::record(
        TransactionId::new(at(sec), random),
        at(sec),
        Branchcode::parse("DE-627").unwrap(),
        action,
    )
}

fn ret(b: &str) -> Action {
    Action::Return {
        barcode: Barcode::parse(b).unwrap(),
    }
}

fn pay() -> Action {
    Action::Payment {
        cardnumber: Cardnumber::parse("C1").unwrap(),
        amount: Amount::parse("2").unwrap(),
    }
}

fn with_status(mut t: Transaction, status: Status) -> Transaction {
    t.start_sending(at(100)).unwrap();
    t.finish_sending(at(101), status).unwrap();
    t
}

fn uncertain() -> Status {
    Status::Uncertain {
        reason: "timeout".into(),
    }
}

#[test]
fn plan_takes_sendable_rows_in_recorded_order() {
    let a = tx(5, 1, ret("A"));
    let b = tx(1, 9, ret("B"));
    let c = tx(1, 2, ret("C")); // same second as b: the id decides
    let failed = with_status(
        tx(3, 1, ret("F")),
        Status::Failed {
            reason: "csrf".into(),
        },
    );
    let queued = with_status(tx(0, 1, ret("Q")), Status::Queued);
    let applied = with_status(tx(0, 2, ret("P")), Status::Applied);
    let rejected = with_status(
        tx(0, 3, ret("R")),
        Status::Rejected {
            message: "x".into(),
        },
    );
    let unc = with_status(tx(2, 1, ret("U")), uncertain());
    let unc_pay = with_status(tx(4, 1, pay()), uncertain());
    let mut sending = tx(6, 1, ret("S"));
    sending.start_sending(at(7)).unwrap();
    let all = vec![
        a.clone(),
        b.clone(),
        c.clone(),
        failed.clone(),
        queued,
        applied,
        rejected,
        unc.clone(),
        unc_pay.clone(),
        sending,
    ];
    assert_eq!(
        plan(&all, &[]),
        vec![c.id.clone(), b.id.clone(), failed.id.clone(), a.id.clone()]
    );
    let chosen = [
        Resend {
            id: unc.id.clone(),
            payment_confirmed: false,
        },
        Resend {
            id: unc_pay.id.clone(),
            payment_confirmed: false,
        },
    ];
    assert_eq!(
        plan(&all, &chosen),
        vec![
            c.id.clone(),
            b.id.clone(),
            unc.id.clone(),
            failed.id.clone(),
            a.id.clone()
        ],
        "an uncertain payment needs a confirmation"
    );
    let confirmed = [Resend {
        id: unc_pay.id.clone(),
        payment_confirmed: true,
    }];
    assert_eq!(
        plan(&all, &confirmed),
        vec![
            c.id.clone(),
            b.id.clone(),
            failed.id.clone(),
            unc_pay.id.clone(),
            a.id
        ]
    );
}

#[test]
fn begin_picks_the_right_transition() {
    let mut local = tx(1, 1, ret("A"));
    begin(&mut local, at(2)).unwrap();
    assert_eq!(local.status(), &Status::Sending);
    let mut unc = with_status(tx(1, 2, ret("B")), uncertain());
    begin(&mut unc, at(200)).unwrap();
    assert_eq!(unc.status(), &Status::Sending);
    let mut done = with_status(tx(1, 3, ret("C")), Status::Applied);
    assert!(begin(&mut done, at(200)).is_err());
}

fn ids(n: u64) -> Vec<TransactionId> {
    (0..n)
        .map(|i| TransactionId::new(at(i as i64), i))
        .collect()
}

/// Runs a whole batch with scripted answers; returns (sent ids, statuses stored, summary).
fn run(
    transport: Transport,
    n: u64,
    answers: Vec<Answer>,
) -> (Vec<TransactionId>, Vec<Status>, Summary) {
    let mut run = SendRun::new(transport, ids(n));
    let mut answers = answers.into_iter();
    let (mut sent, mut stored) = (Vec::new(), Vec::new());
    while let Some(id) = run.next().unwrap() {
        sent.push(id);
        loop {
            let answer = answers.next().expect("script too short");
            match run.record(&answer).unwrap() {
                Decision::Finish(s) => {
                    stored.push(s);
                    break;
                }
                Decision::RefreshTokenAndRetry(again) => {
                    assert_eq!(Some(&again), run.in_flight());
                    sent.push(again);
                }
            }
        }
    }
    assert!(run.is_over());
    (sent, stored, run.summary().clone())
}

#[test]
fn state_machine_table() {
    let ok = || classify(200, "text/plain", "Added.");
    let applied = || classify(200, "text/plain", "Success.");
    let rej = |m: &str| classify(200, "text/plain", m);
    // (transport, rows, answers, requests sent, stop reason, queued, applied, rejected, failed, uncertain, not sent)
    type Row = (Transport, u64, Vec<Answer>, usize, StopReason, [usize; 6]);
    let table: Vec<Row> = vec![
        (
            Transport::P1,
            3,
            vec![ok(), applied(), ok()],
            3,
            StopReason::Finished,
            [2, 1, 0, 0, 0, 0],
        ),
        (
            Transport::P1,
            4,
            vec![ok(), rej("Item not issued."), rej(""), applied()],
            4,
            StopReason::Finished,
            [1, 1, 2, 0, 0, 0],
        ),
        (
            Transport::P3,
            5,
            vec![ok(), rej("Authentication failed.")],
            2,
            StopReason::Authentication,
            [1, 0, 0, 1, 0, 3],
        ),
        (
            Transport::P1,
            5,
            vec![classify(401, "", "")],
            1,
            StopReason::Authentication,
            [0, 0, 0, 1, 0, 4],
        ),
        (
            Transport::P1,
            3,
            vec![ok(), classify(302, "", "")],
            2,
            StopReason::Configuration,
            [1, 0, 0, 1, 0, 1],
        ),
        (
            Transport::P1,
            3,
            vec![ok(), ok(), classify(500, "text/html", "")],
            3,
            StopReason::ServerError,
            [2, 0, 0, 0, 1, 0],
        ),
        (
            Transport::P1,
            3,
            vec![ok(), classify(200, "text/html", "<html/>")],
            2,
            StopReason::ServerError,
            [1, 0, 0, 0, 1, 1],
        ),
        (
            Transport::P1,
            3,
            vec![classify_no_answer(NoAnswer::Network)],
            1,
            StopReason::Network,
            [0, 0, 0, 0, 1, 2],
        ),
        (
            Transport::P1,
            3,
            vec![ok(), classify_no_answer(NoAnswer::Timeout)],
            2,
            StopReason::Timeout,
            [1, 0, 0, 0, 1, 1],
        ),
        // A 403 under P1/P2: one refresh and one retry of the same row, then it counts.
        (
            Transport::P1,
            2,
            vec![classify(403, "", ""), ok(), ok()],
            3,
            StopReason::Finished,
            [2, 0, 0, 0, 0, 0],
        ),
        (
            Transport::P2,
            2,
            vec![classify(403, "", ""), classify(403, "", "")],
            2,
            StopReason::Authentication,
            [0, 0, 0, 1, 0, 1],
        ),
        (
            Transport::P1,
            3,
            vec![
                classify(403, "", ""),
                ok(),
                classify(403, "", ""),
                ok(),
                ok(),
            ],
            5,
            StopReason::Finished,
            [3, 0, 0, 0, 0, 0],
        ),
        // P3 and G have no token: a 403 stops at once.
        (
            Transport::P3,
            2,
            vec![classify(403, "", "")],
            1,
            StopReason::Authentication,
            [0, 0, 0, 1, 0, 1],
        ),
        (
            Transport::G,
            2,
            vec![classify(403, "", "")],
            1,
            StopReason::Authentication,
            [0, 0, 0, 1, 0, 1],
        ),
        (
            Transport::P1,
            0,
            vec![],
            0,
            StopReason::Finished,
            [0, 0, 0, 0, 0, 0],
        ),
    ];
    for (i, (transport, n, answers, requests, reason, counts)) in table.into_iter().enumerate() {
        let (sent, stored, summary) = run(transport, n, answers);
        assert_eq!(sent.len(), requests, "row {i}");
        assert_eq!(summary.stopped, Some(reason), "row {i}");
        let got = [
            summary.queued,
            summary.applied,
            summary.rejected.len(),
            summary.failed,
            summary.uncertain,
            summary.not_sent,
        ];
        assert_eq!(got, counts, "row {i}");
        assert_eq!(stored.len(), counts[..5].iter().sum::<usize>(), "row {i}");
    }
}

#[test]
fn rejections_keep_koha_text_and_ids() {
    let (_, stored, summary) = run(
        Transport::P1,
        2,
        vec![
            classify(200, "", "Borrower not found.\n"),
            classify(200, "", ""),
        ],
    );
    assert_eq!(
        stored[0],
        Status::Rejected {
            message: "Borrower not found.".into()
        }
    );
    assert_eq!(
        summary.rejected,
        vec![
            Rejection {
                id: ids(2)[0].clone(),
                message: "Borrower not found.".into()
            },
            Rejection {
                id: ids(2)[1].clone(),
                message: String::new()
            },
        ]
    );
}

#[test]
fn one_request_at_a_time() {
    let mut run = SendRun::new(Transport::P1, ids(2));
    assert_eq!(run.record(&Answer::Queued), Err(RunError::NothingInFlight));
    let first = run.next().unwrap().unwrap();
    assert_eq!(run.next(), Err(RunError::InFlight));
    assert_eq!(
        run.next().unwrap_err().to_string(),
        "a request is already in flight"
    );
    assert_eq!(run.in_flight(), Some(&first));
    run.record(&Answer::Queued).unwrap();
    assert_eq!(run.next().unwrap(), Some(ids(2)[1].clone()));
}

#[test]
fn cancel_lets_the_request_in_flight_finish() {
    let mut run = SendRun::new(Transport::P1, ids(4));
    run.next().unwrap().unwrap();
    run.cancel();
    assert!(!run.is_over());
    assert_eq!(
        run.record(&Answer::Applied).unwrap(),
        Decision::Finish(Status::Applied)
    );
    assert_eq!(run.next().unwrap(), None);
    let s = run.summary();
    assert_eq!(
        (s.applied, s.not_sent, s.stopped),
        (1, 3, Some(StopReason::Cancelled))
    );

    // Cancel between requests stops at once; a cancelled run does not retry a 403.
    let mut idle = SendRun::new(Transport::P1, ids(2));
    idle.cancel();
    assert!(idle.is_over());
    assert_eq!(idle.next().unwrap(), None);
    assert_eq!(idle.summary().not_sent, 2);

    let mut forbidden = SendRun::new(Transport::P1, ids(2));
    forbidden.next().unwrap();
    forbidden.cancel();
    assert_eq!(
        forbidden
            .record(&Answer::AuthProblem { http_status: 403 })
            .unwrap(),
        Decision::Finish(Status::Failed {
            reason: "csrf".into()
        })
    );
    assert_eq!(
        forbidden.summary().stopped,
        Some(StopReason::Authentication)
    );
}

#[test]
fn failed_token_refresh_fails_the_row_and_stops() {
    let mut run = SendRun::new(Transport::P1, ids(3));
    let id = run.next().unwrap().unwrap();
    assert_eq!(
        run.record(&Answer::AuthProblem { http_status: 403 })
            .unwrap(),
        Decision::RefreshTokenAndRetry(id)
    );
    assert_eq!(
        run.refresh_failed().unwrap(),
        Status::Failed {
            reason: "csrf".into()
        }
    );
    assert!(run.is_over());
    assert_eq!(run.summary().failed, 1);
    assert_eq!(run.summary().not_sent, 2);
    assert_eq!(
        run.summary().stopped.map(StopReason::kind),
        Some("authentication")
    );
    assert_eq!(run.refresh_failed(), Err(RunError::NothingInFlight));
}

#[test]
fn the_shell_loop_drives_transactions_through_their_statuses() {
    let mut txs = vec![tx(1, 1, ret("A")), tx(2, 1, ret("B")), tx(3, 1, ret("C"))];
    let mut run = SendRun::new(Transport::P1, plan(&txs, &[]));
    let answers = [Answer::Queued, Answer::NetworkError];
    let mut i = 0;
    while let Some(id) = run.next().unwrap() {
        let t = txs.iter_mut().find(|t| t.id == id).unwrap();
        begin(t, at(50)).unwrap();
        if let Decision::Finish(s) = run.record(&answers[i]).unwrap() {
            t.finish_sending(at(51), s).unwrap();
        }
        i += 1;
    }
    let names: Vec<_> = txs.iter().map(|t| t.status().name()).collect();
    assert_eq!(names, ["queued", "uncertain", "local"]);
    // The next run does not pick the uncertain one up by itself.
    assert_eq!(plan(&txs, &[]), vec![txs[2].id.clone()]);
}

mod readiness {
    use super::*;
    use koha_offline_circ::settings::{Mode, Settings, SettingsForm};

    fn settings(userid: &str, remembered: Option<&str>, login_once: bool) -> Settings {
        Settings::from_form(&SettingsForm {
            server: "https://koha.example.org:8443/".into(),
            branchcode: "DE-627".into(),
            userid: userid.into(),
            password: remembered.unwrap_or("").into(),
            remember_password: remembered.is_some(),
            timezone: "Europe/Berlin".into(),
            login_once,
            ..SettingsForm::default()
        })
        .unwrap()
    }

    #[test]
    fn credentials_need_settings_user_permission_and_password_in_that_order() {
        assert_eq!(credentials(None, true, Some("pw")), Err(NotReady::Settings));
        let no_user = settings("", None, true);
        assert_eq!(
            credentials(Some(&no_user), false, Some("pw")),
            Err(NotReady::Userid)
        );
        let s = settings("desk", None, true);
        let missing = credentials(Some(&s), false, Some("pw")).unwrap_err();
        assert_eq!(
            missing,
            NotReady::Permission {
                origin: "https://koha.example.org/*".into()
            }
        );
        assert_eq!(missing.kind(), "permission");
        assert_eq!(
            missing.to_string(),
            "no permission to reach https://koha.example.org/*"
        );
        assert_eq!(credentials(Some(&s), true, None), Err(NotReady::Password));
        assert_eq!(
            credentials(Some(&s), true, Some("")),
            Err(NotReady::Password)
        );
        let c = credentials(Some(&s), true, Some("session pw")).unwrap();
        assert_eq!(
            (c.userid.as_str(), c.password.as_str()),
            ("desk", "session pw")
        );
    }

    #[test]
    fn a_remembered_password_wins_over_the_session_one() {
        let s = settings("desk", Some("stored"), true);
        let c = credentials(Some(&s), true, Some("session")).unwrap();
        assert_eq!(c.password, "stored");
        assert_eq!(
            credentials(Some(&s), true, None).unwrap().password,
            "stored"
        );
    }

    #[test]
    fn modes_map_to_the_wire_and_to_the_found_in_koha_status() {
        use koha_offline_circ::koha;
        assert_eq!(koha_mode(Mode::Queue), koha::Mode::Queue);
        assert_eq!(koha_mode(Mode::Apply), koha::Mode::Apply);
        assert_eq!(found_in_koha(Mode::Queue), Status::Queued);
        assert_eq!(found_in_koha(Mode::Apply), Status::Applied);
    }

    #[test]
    fn the_detector_reuses_the_session_only_when_asked() {
        use koha_offline_circ::koha::{DetectStep, Reply};
        // After a working P3 probe, session reuse goes on to a session login; without it the
        // probe's transport is the answer.
        let feed = |login_once: bool| {
            let s = settings("desk", Some("pw"), login_once);
            let mut d = detector(&s, credentials(Some(&s), true, None).unwrap());
            let first = d.start();
            assert!(first.url.ends_with("/cgi-bin/koha/svc/authentication"));
            let xml = "<?xml version='1.0' standalone='yes'?>\n<response>\n  <status>failed</status>\n</response>\n";
            let reply = |body: &str| Reply::Http {
                status: 200,
                csrf_token: None,
                content_type: "text/plain".into(),
                body: body.into(),
                date: None,
            };
            let DetectStep::Send(_probe) = d.feed(reply(xml)) else {
                panic!("a probe")
            };
            d.feed(reply(""))
        };
        match feed(true) {
            DetectStep::Send(login) => assert_eq!(login.param("login_password"), Some("pw")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(feed(false), DetectStep::Done(_)));
    }

    #[test]
    fn resending_asks_and_payments_name_the_double_charge() {
        let local = tx(1, 1, ret("A"));
        assert_eq!(resend_question(&local), None);
        assert_eq!(confirmed_resend(&local), None);
        let book = with_status(tx(2, 1, ret("B")), uncertain());
        let money = with_status(tx(3, 1, pay()), uncertain());
        assert_eq!(
            resend_question(&book).map(ResendQuestion::kind),
            Some("resend-uncertain")
        );
        assert_eq!(
            resend_question(&money).map(ResendQuestion::kind),
            Some("resend-payment")
        );
        let queued = with_status(tx(4, 1, pay()), Status::Queued);
        assert_eq!(resend_question(&queued), None);
        // The confirmed choices go into the plan; a payment only with its own confirmation.
        let resend = [
            confirmed_resend(&book).unwrap(),
            confirmed_resend(&money).unwrap(),
        ];
        assert!(resend[1].payment_confirmed && !resend[0].payment_confirmed);
        let all = vec![local.clone(), book.clone(), money.clone(), queued];
        assert_eq!(plan(&all, &resend), vec![local.id, book.id, money.id]);
    }

    #[test]
    fn get_needs_consent_naming_the_payments() {
        let a = tx(1, 1, ret("A"));
        let p = tx(2, 1, pay());
        assert_eq!(get_consent_needed(Transport::P1, &[&a, &p]), None);
        assert_eq!(
            get_consent_needed(Transport::G, &[&a, &p]),
            Some(GetConsent { payments: 1 })
        );
        assert_eq!(
            get_consent_needed(Transport::G, &[&a]),
            Some(GetConsent { payments: 0 })
        );
    }
}
