//! "Test connection" on the options page: [`Detector`] (koha-protocol.md §2.6) plus what the page
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
//! let token = Reply::Http {
//!     status: 200,
//!     csrf_token: Some("t0k".into()),
//!     content_type: "text/xml".into(),
//!     body: "<response><status>anon</status></response>".into(),
//!     date: None,
//! };
//! let TestStep::Send(_service_probe) = test.feed(token) else { panic!() };
//! let empty = Reply::Http {
//!     status: 200,
//!     csrf_token: None,
//!     content_type: "text/plain".into(),
//!     body: String::new(),
//!     date: None,
//! };
//! let TestStep::Done(report) = test.feed(empty) else { panic!() };
//! assert_eq!(report.outcome, TestOutcome::Works(Transport::P1));
//! assert_eq!(report.level(), Level::Ok);
//! ```

use super::KohaUrl;
use crate::koha::{
    interpret_session_login, ConnectionProblem, Credentials, DetectStep, Detection, Detector,
    HttpRequest, Method, Reply, Transport, AUTH_PATH,
};
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

/// The result of "Test connection".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestReport {
    /// What works, or what is wrong.
    pub outcome: TestOutcome,
    /// Whether logging in once per send run works (only when asked for).
    pub session_reuse: SessionReuse,
}

impl TestReport {
    /// The report when Firefox has not granted access to the server.
    pub fn no_access() -> TestReport {
        TestReport {
            outcome: TestOutcome::NoAccess,
            session_reuse: SessionReuse::Off,
        }
    }

    /// Ok when sending works as configured; a warning when it works without the asked-for
    /// session reuse, or would need GET (the password in Koha's logs, only with consent); an
    /// error otherwise.
    pub fn level(&self) -> Level {
        match (&self.outcome, self.session_reuse) {
            (
                TestOutcome::Works(_),
                SessionReuse::MissingPermission | SessionReuse::Unavailable,
            ) => Level::Warning,
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
#[derive(Debug, Clone)]
pub struct ConnectionTest {
    detector: Detector,
    login_once: bool,
    awaiting_session_login: bool,
    session_login: Option<Result<(), ConnectionProblem>>,
}

impl ConnectionTest {
    /// A test of this server with these credentials; `login_once` as in the settings.
    pub fn new(server: &KohaUrl, creds: Credentials, login_once: bool) -> ConnectionTest {
        let detector = Detector::new(server.as_str(), creds);
        ConnectionTest {
            detector: if login_once {
                detector.with_session_reuse()
            } else {
                detector
            },
            login_once,
            awaiting_session_login: false,
            session_login: None,
        }
    }

    /// The first request (`GET svc/authentication`).
    pub fn start(&mut self) -> HttpRequest {
        let request = self.detector.start();
        self.note(&request);
        request
    }

    /// Feeds the reply to the last request.
    pub fn feed(&mut self, reply: Reply) -> TestStep {
        if self.awaiting_session_login {
            self.session_login = Some(interpret_session_login(&reply).map(drop));
        }
        match self.detector.feed(reply) {
            DetectStep::Send(request) => {
                self.note(&request);
                TestStep::Send(request)
            }
            DetectStep::Done(detection) => TestStep::Done(self.report(detection)),
        }
    }

    fn note(&mut self, request: &HttpRequest) {
        self.awaiting_session_login =
            request.method == Method::Post && request.url.ends_with(AUTH_PATH);
    }

    fn report(&self, detection: Detection) -> TestReport {
        let outcome = match detection {
            Detection::Works { transport, .. } => TestOutcome::Works(transport),
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
            content_type: "text/plain".into(),
            body: body.into(),
            date: None,
        }
    }

    const ANON: &str =
        "<?xml version='1.0' standalone='yes'?><response><status>anon</status></response>";
    const FAILED: &str = "<response><status>failed</status></response>";
    const OK: &str = "<response><status>ok</status></response>";

    fn run(login_once: bool, replies: Vec<Reply>) -> (TestReport, Vec<HttpRequest>) {
        let mut test = ConnectionTest::new(&server(), creds(), login_once);
        let mut sent = vec![test.start()];
        for reply in replies {
            match test.feed(reply) {
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
    fn login_once_with_edit_catalogue_gives_p2() {
        let (report, sent) = run(
            true,
            vec![
                http(200, Some("tok"), ANON),
                http(200, None, ""),
                http(200, Some("tok2"), OK),
            ],
        );
        assert_eq!(sent.len(), 3);
        assert_eq!(report.outcome, TestOutcome::Works(Transport::P2));
        assert_eq!(report.session_reuse, SessionReuse::Works);
        assert_eq!(report.level(), Level::Ok);
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
