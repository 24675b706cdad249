//! "Test connection" on the options page: [`Detector`] (docs/koha.md 8.2) plus what the page
//! must say about it, in particular whether logging in once per send run is available.
//!
//! Detection never creates a transaction: its probe has an empty `action` and no `pending`.
//!
//! ```
//! use koha_offline_circ::koha::{Credentials, Reply, Transport};
//! use koha_offline_circ::settings::connection::{ConnectionTest, Level, TestOutcome, TestStep};
//! use koha_offline_circ::settings::KohaUrl;
//! use koha_offline_circ::Userid;
//!
//! let server = KohaUrl::parse("https://koha.example.org").unwrap();
//! let creds = Credentials { userid: Userid::parse("desk").unwrap(), password: "pw".into() };
//! let mut test = ConnectionTest::new(&server, creds, false);
//! let _auth_probe = test.start();
//! let now = chrono::DateTime::from_timestamp(1_795_860_000, 0).unwrap(); // the desk clock
//! let token = Reply::Http {
//!     status: 200,
//!     csrf_token: Some("t0k".into()),
//!     body: "<response><status>anon</status></response>".into(),
//!     date: None,
//! };
//! let TestStep::Send(_service_probe) = test.feed(token, now, now) else { panic!() };
//! let empty = Reply::Http {
//!     status: 200,
//!     csrf_token: None,
//!     body: String::new(),
//!     date: None,
//! };
//! let TestStep::Done(report) = test.feed(empty, now, now) else { panic!() };
//! assert_eq!(report.outcome, TestOutcome::Works(Transport::P1));
//! assert_eq!(report.level(), Level::Ok);
//! assert_eq!(report.clock.kind(), "unknown"); // no `Date` header
//! ```

use super::KohaUrl;
use crate::clock::{self, ClockCheck, DateError};
use crate::kinds::kinds;
use crate::koha::{
    interpret_session_login, logout_request, ConnectionProblem, Credentials, DetectStep, Detection,
    Detector, HttpRequest, Method, NoAnswer, Reply, Transport, AUTH_PATH,
};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// How the page shows a report: `data-kind` of `options-message`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Sending works as configured.
    Ok,
    /// Sending works, but not as configured, or only with the librarian's consent.
    Warning,
    /// Sending does not work now.
    Error,
}

/// What came out of the test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestOutcome {
    /// Sending works with this transport.
    Works(Transport),
    /// No transport can be used now (see [`ConnectionProblem::kind`]).
    Problem(ConnectionProblem),
    /// Firefox has not granted the add-on access to the server's origin; nothing was sent.
    NoAccess,
}

/// Whether "log in once per send run" (P2, a session login through `svc/authentication`) works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SessionReuse {
    /// Not asked for (the `login-once` setting is off), or the test did not get that far.
    Off,
    /// Works: one password check per send run.
    Works,
    /// Koha refused the session login although the password is right: the account lacks
    /// `edit_catalogue`. Sending still works, with one password check per transaction.
    MissingPermission,
    /// The session login failed for another reason; sending still works without it.
    Unavailable,
}

kinds!(SessionReuse {
    Off => "off",
    Works => "works",
    MissingPermission => "missing-permission",
    Unavailable => "unavailable",
});

/// The result of "Test connection".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestReport {
    /// What works, or what is wrong.
    pub outcome: TestOutcome,
    /// Whether logging in once per send run works (only when asked for).
    pub session_reuse: SessionReuse,
    /// The desk's clock against the `Date` of Koha's first answer that had one.
    pub clock: ClockCheck,
}

impl TestReport {
    /// The report when Firefox has not granted access to the server.
    pub fn no_access() -> TestReport {
        TestReport {
            outcome: TestOutcome::NoAccess,
            session_reuse: SessionReuse::Off,
            clock: ClockCheck::Unknown(DateError::Missing),
        }
    }

    /// Ok when sending works as configured; a warning when it works without the asked-for
    /// session reuse, or with the desk's clock off (every recorded time would be off), or would
    /// need GET (the password in Koha's logs, only with consent); an error otherwise.
    pub fn level(&self) -> Level {
        match (&self.outcome, self.session_reuse) {
            (
                TestOutcome::Works(_),
                SessionReuse::MissingPermission | SessionReuse::Unavailable,
            ) => Level::Warning,
            (TestOutcome::Works(_), _) if self.clock.is_off() => Level::Warning,
            (TestOutcome::Works(_), _) => Level::Ok,
            (TestOutcome::Problem(ConnectionProblem::NeedsGetConsent), _) => Level::Warning,
            _ => Level::Error,
        }
    }

    /// The transport to remember in the settings (`P1`, `P2`, `P3`), when one works.
    pub fn transport(&self) -> Option<Transport> {
        match self.outcome {
            TestOutcome::Works(transport) => Some(transport),
            _ => None,
        }
    }
}

/// What the test wants next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestStep {
    /// Send this request and feed its reply.
    Send(HttpRequest),
    /// The test is over.
    Done(TestReport),
}

/// Detection for "Test connection", as a state machine like [`Detector`]: [`ConnectionTest::start`],
/// then [`ConnectionTest::feed`] each reply until [`TestStep::Done`]. With `login_once` it also
/// tries the session login and reports why it failed, where the detector alone would quietly
/// keep the per-transaction login.
///
/// Whenever the session login may have logged in (Koha said `ok`, or no answer came), the last
/// request is [`logout_request`], whatever the outcome: a test must not leave the desk's account
/// logged in to Koha's staff interface in this browser. The report also carries a clock check
/// ([`clock::check_round_trip`]) against the first answer with a `Date` header.
#[derive(Debug, Clone)]
pub struct ConnectionTest {
    base: String,
    detector: Detector,
    login_once: bool,
    awaiting_session_login: bool,
    session_login: Option<Result<(), ConnectionProblem>>,
    logged_in: bool,
    timed_out: bool,
    clock: Option<ClockCheck>,
    /// The report, held back while the logout is under way.
    logging_out: Option<TestReport>,
}

impl ConnectionTest {
    /// A test of this server with these credentials; `login_once` as in the settings.
    pub fn new(server: &KohaUrl, creds: Credentials, login_once: bool) -> ConnectionTest {
        let detector = Detector::new(server.as_str(), creds);
        ConnectionTest {
            base: server.as_str().to_owned(),
            detector: if login_once {
                detector.with_session_reuse()
            } else {
                detector
            },
            login_once,
            awaiting_session_login: false,
            session_login: None,
            logged_in: false,
            timed_out: false,
            clock: None,
            logging_out: None,
        }
    }

    /// The first request (`GET svc/authentication`).
    pub fn start(&mut self) -> HttpRequest {
        let request = self.detector.start();
        self.note(&request);
        request
    }

    /// Feeds the reply to the last request, sent and received at these desk-clock times (for
    /// the clock check).
    pub fn feed(&mut self, reply: Reply, sent: DateTime<Utc>, received: DateTime<Utc>) -> TestStep {
        if let Some(report) = self.logging_out.take() {
            // The logout's answer does not matter.
            return TestStep::Done(report);
        }
        self.note_clock(&reply, sent, received);
        self.timed_out = matches!(
            reply,
            Reply::NoAnswer {
                why: NoAnswer::Timeout
            }
        );
        if self.awaiting_session_login {
            let login = interpret_session_login(&reply).map(drop);
            // No answer: Koha may have logged in and its cookie may have arrived.
            self.logged_in = login.is_ok() || matches!(reply, Reply::NoAnswer { .. });
            self.session_login = Some(login);
        }
        match self.detector.feed(reply) {
            DetectStep::Send(request) => {
                self.note(&request);
                TestStep::Send(request)
            }
            DetectStep::Done(detection) => {
                let report = self.report(detection);
                if self.logged_in {
                    self.logging_out = Some(report);
                    TestStep::Send(logout_request(&self.base))
                } else {
                    TestStep::Done(report)
                }
            }
        }
    }

    fn note(&mut self, request: &HttpRequest) {
        self.awaiting_session_login =
            request.method == Method::Post && request.url.ends_with(AUTH_PATH);
    }

    /// Keeps the first answer's clock check that could be made.
    fn note_clock(&mut self, reply: &Reply, sent: DateTime<Utc>, received: DateTime<Utc>) {
        let Reply::Http { date, .. } = reply else {
            return;
        };
        if matches!(self.clock, None | Some(ClockCheck::Unknown(_))) {
            self.clock = Some(clock::check_round_trip(sent, received, date.as_deref()));
        }
    }

    fn report(&self, detection: Detection) -> TestReport {
        let outcome = match detection {
            Detection::Works { transport, .. } => TestOutcome::Works(transport),
            // The detector cannot tell a server that stalled from one that is down.
            Detection::Problem(ConnectionProblem::Unreachable) if self.timed_out => {
                TestOutcome::Problem(ConnectionProblem::Timeout)
            }
            Detection::Problem(problem) => TestOutcome::Problem(problem),
        };
        let session_reuse = match (&outcome, &self.session_login) {
            (TestOutcome::Works(_), _) if !self.login_once => SessionReuse::Off,
            (TestOutcome::Works(Transport::P2), _) => SessionReuse::Works,
            (TestOutcome::Works(_), Some(Err(ConnectionProblem::MissingPermission))) => {
                SessionReuse::MissingPermission
            }
            (TestOutcome::Works(_), _) => SessionReuse::Unavailable,
            _ => SessionReuse::Off,
        };
        TestReport {
            outcome,
            session_reuse,
            clock: self
                .clock
                .clone()
                .unwrap_or(ClockCheck::Unknown(DateError::Missing)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Userid;

    fn creds() -> Credentials {
        Credentials {
            userid: Userid::parse("clerk").unwrap(),
            password: "clerk123".into(),
        }
    }

    fn server() -> KohaUrl {
        KohaUrl::parse("https://koha.example.org/lib").unwrap()
    }

    fn http(status: u16, token: Option<&str>, body: &str) -> Reply {
        Reply::Http {
            status,
            csrf_token: token.map(str::to_owned),
            body: body.into(),
            date: None,
        }
    }

    fn dated(reply: Reply, header: &str) -> Reply {
        match reply {
            Reply::Http {
                status,
                csrf_token,
                body,
                ..
            } => Reply::Http {
                status,
                csrf_token,
                body,
                date: Some(header.to_owned()),
            },
            other => other,
        }
    }

    fn no_answer(why: NoAnswer) -> Reply {
        Reply::NoAnswer { why }
    }

    /// The desk's clock during these tests: Sat, 28 Nov 2026 10:00:00 GMT.
    fn desk_now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_860_000, 0).unwrap()
    }

    const ANON: &str =
        "<?xml version='1.0' standalone='yes'?><response><status>anon</status></response>";
    const FAILED: &str = "<response><status>failed</status></response>";
    const OK: &str = "<response><status>ok</status></response>";

    fn run(login_once: bool, replies: Vec<Reply>) -> (TestReport, Vec<HttpRequest>) {
        let mut test = ConnectionTest::new(&server(), creds(), login_once);
        let mut sent = vec![test.start()];
        for reply in replies {
            match test.feed(reply, desk_now(), desk_now()) {
                TestStep::Send(request) => sent.push(request),
                TestStep::Done(report) => return (report, sent),
            }
        }
        panic!("the test wants more replies after {sent:?}");
    }

    #[test]
    fn p1_without_login_once() {
        let (report, sent) = run(
            false,
            vec![http(200, Some("tok"), ANON), http(200, None, "")],
        );
        assert_eq!(report.outcome, TestOutcome::Works(Transport::P1));
        assert_eq!(report.session_reuse, SessionReuse::Off);
        assert_eq!(report.level(), Level::Ok);
        assert_eq!(report.transport(), Some(Transport::P1));
        // The probe never queues or applies anything.
        let probe = &sent[1];
        assert_eq!(probe.param("action"), Some(""));
        assert_eq!(probe.param("pending"), None);
        assert_eq!(probe.param("timestamp"), None);
    }

    #[test]
    fn login_once_with_edit_catalogue_gives_p2_then_logs_out() {
        let (report, sent) = run(
            true,
            vec![
                http(200, Some("tok"), ANON),
                http(200, None, ""),
                http(200, Some("tok2"), OK),
                http(200, None, "<html>login page</html>"),
            ],
        );
        assert_eq!(sent.len(), 4);
        assert_eq!(report.outcome, TestOutcome::Works(Transport::P2));
        assert_eq!(report.session_reuse, SessionReuse::Works);
        assert_eq!(report.level(), Level::Ok);
        assert_eq!(sent[3], logout_request(server().as_str()));
        assert_eq!(
            sent[3].full_url(),
            "https://koha.example.org/lib/cgi-bin/koha/mainpage.pl?logout.x=1"
        );
        assert!(sent[3].include_cookies);
    }

    #[test]
    fn the_logout_is_sent_whatever_its_answer_and_ends_the_test() {
        for logout_answer in [
            no_answer(NoAnswer::Network),
            no_answer(NoAnswer::Timeout),
            http(500, None, "boom"),
            http(302, None, ""),
        ] {
            let (report, sent) = run(
                true,
                vec![
                    http(200, None, ANON),
                    http(200, None, ""),
                    http(200, None, OK),
                    logout_answer,
                ],
            );
            assert_eq!(report.outcome, TestOutcome::Works(Transport::P2));
            assert_eq!(sent.last(), Some(&logout_request(server().as_str())));
        }
    }

    #[test]
    fn no_logout_unless_the_test_logged_in() {
        // Without login_once nothing logs in; the browser's session may be the librarian's.
        let (_, sent) = run(
            false,
            vec![http(200, Some("tok"), ANON), http(200, None, "")],
        );
        assert_eq!(sent.len(), 2);
        // Koha refused the session login: nothing to end.
        for refusal in [
            http(200, None, FAILED),
            http(403, None, "Wrong CSRF token"),
            http(500, None, "boom"),
        ] {
            let (report, sent) = run(
                true,
                vec![http(200, Some("tok"), ANON), http(200, None, ""), refusal],
            );
            assert_eq!(sent.len(), 3, "{report:?}");
            assert!(sent.iter().all(|r| !r.url.ends_with("mainpage.pl")));
        }
    }

    #[test]
    fn a_session_login_without_answer_may_have_logged_in_so_it_logs_out() {
        // The detector reads a missing answer as a server gone away, whatever the stage.
        for (why, problem) in [
            (NoAnswer::Timeout, ConnectionProblem::Timeout),
            (NoAnswer::Network, ConnectionProblem::Unreachable),
        ] {
            let (report, sent) = run(
                true,
                vec![
                    http(200, None, ANON),
                    http(200, None, ""),
                    no_answer(why),
                    http(200, None, ""),
                ],
            );
            assert_eq!(report.outcome, TestOutcome::Problem(problem));
            assert_eq!(sent.len(), 4);
            assert_eq!(sent[3], logout_request(server().as_str()));
        }
    }

    #[test]
    fn a_server_that_stalls_is_a_timeout_not_unreachable() {
        let (report, _) = run(false, vec![no_answer(NoAnswer::Timeout)]);
        assert_eq!(
            report.outcome,
            TestOutcome::Problem(ConnectionProblem::Timeout)
        );
        assert_eq!(report.level(), Level::Error);
        let (report, _) = run(
            false,
            vec![http(200, Some("tok"), ANON), no_answer(NoAnswer::Timeout)],
        );
        assert_eq!(
            report.outcome,
            TestOutcome::Problem(ConnectionProblem::Timeout)
        );
        let (report, _) = run(false, vec![no_answer(NoAnswer::Network)]);
        assert_eq!(
            report.outcome,
            TestOutcome::Problem(ConnectionProblem::Unreachable)
        );
        assert_eq!(ConnectionProblem::Timeout.kind(), "timeout");
    }

    #[test]
    fn the_clock_is_checked_against_the_first_dated_answer() {
        // Koha's clock 10 minutes ahead of the desk's.
        let ahead = "Sat, 28 Nov 2026 10:10:00 GMT";
        let (report, _) = run(
            false,
            vec![
                dated(http(200, Some("tok"), ANON), ahead),
                dated(http(200, None, ""), "Sat, 28 Nov 2026 10:00:00 GMT"),
            ],
        );
        assert_eq!(report.outcome, TestOutcome::Works(Transport::P1));
        let koha = desk_now() + chrono::TimeDelta::minutes(10);
        assert_eq!(
            report.clock,
            ClockCheck::DeskBehind {
                by: chrono::TimeDelta::minutes(10),
                desk: desk_now(),
                koha,
            }
        );
        assert_eq!(report.level(), Level::Warning);

        // In step: no warning.
        let (report, _) = run(
            false,
            vec![
                dated(
                    http(200, Some("tok"), ANON),
                    "Sat, 28 Nov 2026 10:00:00 GMT",
                ),
                http(200, None, ""),
            ],
        );
        assert_eq!(report.clock, ClockCheck::InStep);
        assert_eq!(report.level(), Level::Ok);

        // A first answer without a (usable) Date: the next one counts.
        let (report, _) = run(
            false,
            vec![
                dated(http(200, Some("tok"), ANON), "tomorrow"),
                dated(http(200, None, ""), "Sat, 28 Nov 2026 09:50:00 GMT"),
            ],
        );
        assert!(
            matches!(report.clock, ClockCheck::DeskAhead { .. }),
            "{report:?}"
        );

        // None at all: unknown, and the level is the outcome's.
        let (report, _) = run(
            false,
            vec![http(200, Some("tok"), ANON), http(200, None, "")],
        );
        assert_eq!(report.clock, ClockCheck::Unknown(DateError::Missing));
        assert_eq!(report.level(), Level::Ok);

        // A problem stays an error whatever the clock says.
        let (report, _) = run(false, vec![dated(http(404, None, ""), ahead)]);
        assert!(report.clock.is_off());
        assert_eq!(report.level(), Level::Error);
        assert_eq!(TestReport::no_access().clock.kind(), "unknown");
    }

    #[test]
    fn the_clock_check_allows_for_a_slow_answer() {
        let mut test = ConnectionTest::new(&server(), creds(), false);
        test.start();
        // Koha stamped 10:00:00; the answer took 4 minutes to arrive.
        let late = desk_now() + chrono::TimeDelta::minutes(4);
        let step = test.feed(
            dated(
                http(200, Some("tok"), ANON),
                "Sat, 28 Nov 2026 10:00:00 GMT",
            ),
            desk_now(),
            late,
        );
        assert!(matches!(step, TestStep::Send(_)));
        let TestStep::Done(report) = test.feed(http(200, None, ""), late, late) else {
            panic!("done after the probe");
        };
        assert_eq!(report.clock, ClockCheck::InStep);
    }

    #[test]
    fn login_once_without_edit_catalogue_keeps_p1_and_says_why() {
        let (report, _) = run(
            true,
            vec![
                http(200, Some("tok"), ANON),
                http(200, None, ""),
                http(200, Some("tok3"), FAILED),
            ],
        );
        assert_eq!(report.outcome, TestOutcome::Works(Transport::P1));
        assert_eq!(report.session_reuse, SessionReuse::MissingPermission);
        assert_eq!(report.level(), Level::Warning);
    }

    #[test]
    fn login_once_on_legacy_without_permission_keeps_p3() {
        let (report, _) = run(
            true,
            vec![
                http(200, None, ANON),
                http(200, None, ""),
                http(200, None, FAILED),
            ],
        );
        assert_eq!(report.outcome, TestOutcome::Works(Transport::P3));
        assert_eq!(report.session_reuse, SessionReuse::MissingPermission);
    }

    #[test]
    fn session_login_server_error_is_unavailable() {
        let (report, _) = run(
            true,
            vec![
                http(200, None, ANON),
                http(200, None, ""),
                http(500, None, "boom"),
            ],
        );
        assert_eq!(report.outcome, TestOutcome::Works(Transport::P3));
        assert_eq!(report.session_reuse, SessionReuse::Unavailable);
        assert_eq!(report.level(), Level::Warning);
    }

    #[test]
    fn problems_are_errors_except_get_consent() {
        let (report, _) = run(
            true,
            vec![
                http(200, Some("tok"), ANON),
                http(200, None, "Authentication failed."),
            ],
        );
        assert_eq!(
            report.outcome,
            TestOutcome::Problem(ConnectionProblem::WrongCredentials)
        );
        assert_eq!(report.session_reuse, SessionReuse::Off);
        assert_eq!(report.level(), Level::Error);
        assert_eq!(report.transport(), None);

        let (report, _) = run(false, vec![http(200, None, ANON), http(403, None, "")]);
        assert_eq!(
            report.outcome,
            TestOutcome::Problem(ConnectionProblem::NeedsGetConsent)
        );
        assert_eq!(report.level(), Level::Warning);

        let (report, _) = run(false, vec![http(404, None, "")]);
        assert_eq!(
            report.outcome,
            TestOutcome::Problem(ConnectionProblem::NotFound)
        );
        assert_eq!(TestReport::no_access().level(), Level::Error);
    }
}
