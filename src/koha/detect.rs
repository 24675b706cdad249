//! Detection (docs/koha.md 8.2): which transport works with these credentials, found by a pure
//! state machine ([`Detector`]) that the shell drives request by request.

use super::{
    auth_probe_request, classify, interpret_session_login, parse_auth_status,
    service_probe_request, session_login_request, Answer, ConnectionProblem, Credentials,
    HttpRequest, Reply, Transport,
};
use serde::{Deserialize, Serialize};

/// The result of detection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Detection {
    /// This transport works with these credentials.
    Works {
        /// The transport to use.
        transport: Transport,
        /// The CSRF token for P1 (its session cookie is in the browser's jar).
        token: Option<String>,
    },
    /// No transport can be used now.
    Problem(ConnectionProblem),
}

/// What detection wants next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DetectStep {
    /// Send this request and feed its reply.
    Send(HttpRequest),
    /// Detection is over.
    Done(Detection),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    AuthProbe,
    ServiceProbe(Transport),
    SessionLogin(Transport),
    Finished,
}

/// Detection as a pure state machine (docs/koha.md 8.2): call [`Detector::start`], send the
/// request, feed each reply to [`Detector::feed`] until it says [`DetectStep::Done`]. A 403 on the
/// P1 probe is retried once with a fresh token.
#[derive(Debug, Clone)]
pub struct Detector {
    base: String,
    creds: Credentials,
    stage: Stage,
    token: Option<String>,
    refreshed: bool,
    session_reuse: bool,
}

impl Detector {
    /// Detection for a normalised server base (`https://koha.example.org:8080/prefix`).
    pub fn new(base: &str, creds: Credentials) -> Self {
        Detector {
            base: base.to_owned(),
            creds,
            stage: Stage::AuthProbe,
            token: None,
            refreshed: false,
            session_reuse: false,
        }
    }

    /// Opt-in: once P1 or P3 works, also try a session login (P2) so that a batch costs one
    /// password check instead of one per transaction. It needs `edit_catalogue` and replaces the
    /// librarian's `CGISESSID` in this browser, so the UI must say so. Without the permission (or
    /// on any other refusal) detection keeps the transport that worked.
    pub fn with_session_reuse(mut self) -> Self {
        self.session_reuse = true;
        self
    }

    /// The first request: `GET svc/authentication`.
    pub fn start(&mut self) -> HttpRequest {
        self.stage = Stage::AuthProbe;
        auth_probe_request(&self.base)
    }

    fn done(&mut self, detection: Detection) -> DetectStep {
        self.stage = Stage::Finished;
        DetectStep::Done(detection)
    }

    fn problem(&mut self, problem: ConnectionProblem) -> DetectStep {
        self.done(Detection::Problem(problem))
    }

    fn probe(&mut self, transport: Transport) -> DetectStep {
        self.stage = Stage::ServiceProbe(transport);
        match service_probe_request(&self.base, transport, &self.creds, self.token.as_deref()) {
            Ok(request) => DetectStep::Send(request),
            // Unreachable: P1 is chosen only with a non-empty token.
            Err(_) => self.problem(ConnectionProblem::CsrfRefused),
        }
    }

    fn works(&mut self, transport: Transport) -> DetectStep {
        let token = self.token.clone().filter(|_| transport.uses_token());
        self.done(Detection::Works { transport, token })
    }

    /// Feeds the reply to the last request.
    pub fn feed(&mut self, reply: Reply) -> DetectStep {
        let (status, csrf_token, body, date) = match reply {
            Reply::NoAnswer { .. } => return self.problem(ConnectionProblem::Unreachable),
            Reply::Http {
                status,
                csrf_token,
                body,
                date,
            } => (status, csrf_token, body, date),
        };
        match self.stage {
            Stage::AuthProbe => self.after_auth_probe(status, csrf_token, &body),
            Stage::ServiceProbe(transport) => {
                self.after_service_probe(transport, classify(status, &body))
            }
            Stage::SessionLogin(fallback) => {
                let reply = Reply::Http {
                    status,
                    csrf_token,
                    body,
                    date,
                };
                match interpret_session_login(&reply) {
                    Ok(token) => self.done(Detection::Works {
                        transport: Transport::P2,
                        token,
                    }),
                    Err(_) => self.works(fallback),
                }
            }
            Stage::Finished => {
                DetectStep::Done(Detection::Problem(ConnectionProblem::UnexpectedAnswer {
                    http_status: status,
                }))
            }
        }
    }

    fn after_auth_probe(&mut self, status: u16, token: Option<String>, body: &str) -> DetectStep {
        match status {
            200 => {}
            404 => return self.problem(ConnectionProblem::NotFound),
            500..=599 => {
                return self.problem(ConnectionProblem::ServerError {
                    http_status: status,
                })
            }
            _ => {
                return self.problem(ConnectionProblem::UnexpectedAnswer {
                    http_status: status,
                })
            }
        }
        match token.filter(|t| !t.is_empty()) {
            Some(token) => {
                self.token = Some(token);
                self.probe(Transport::P1)
            }
            None if parse_auth_status(body).is_some() => {
                self.token = None;
                self.probe(Transport::P3)
            }
            None => self.problem(ConnectionProblem::UnexpectedAnswer {
                http_status: status,
            }),
        }
    }

    fn after_service_probe(&mut self, transport: Transport, answer: Answer) -> DetectStep {
        match answer {
            Answer::Empty if self.session_reuse && transport != Transport::G => {
                self.stage = Stage::SessionLogin(transport);
                DetectStep::Send(session_login_request(
                    &self.base,
                    &self.creds,
                    self.token.as_deref(),
                    None,
                ))
            }
            Answer::Empty => self.works(transport),
            Answer::AuthProblem { http_status: 403 } => match transport {
                Transport::P1 if !self.refreshed => {
                    self.refreshed = true;
                    DetectStep::Send(self.start())
                }
                Transport::P1 | Transport::P2 => self.problem(ConnectionProblem::CsrfRefused),
                Transport::P3 => self.problem(ConnectionProblem::NeedsGetConsent),
                Transport::G => {
                    self.problem(ConnectionProblem::UnexpectedAnswer { http_status: 403 })
                }
            },
            Answer::AuthProblem { .. } => self.problem(ConnectionProblem::WrongCredentials),
            Answer::Misdirected { http_status: 404 } => self.problem(ConnectionProblem::NotFound),
            Answer::ServerError { http_status } if http_status >= 500 => {
                self.problem(ConnectionProblem::ServerError { http_status })
            }
            Answer::NetworkError | Answer::Timeout => self.problem(ConnectionProblem::Unreachable),
            Answer::Misdirected { http_status } | Answer::ServerError { http_status } => {
                self.problem(ConnectionProblem::UnexpectedAnswer { http_status })
            }
            // A probe has an empty action: anything that names an outcome is not Koha.
            Answer::Queued | Answer::Applied | Answer::Rejected { .. } => {
                self.problem(ConnectionProblem::UnexpectedAnswer { http_status: 200 })
            }
        }
    }
}

/// Interprets a G probe sent after the librarian consented: `Ok` when it works.
pub fn interpret_get_probe(reply: &Reply) -> Result<(), ConnectionProblem> {
    match reply {
        Reply::NoAnswer { .. } => Err(ConnectionProblem::Unreachable),
        Reply::Http { status, body, .. } => match classify(*status, body) {
            Answer::Empty => Ok(()),
            Answer::AuthProblem { http_status: 403 } => Err(ConnectionProblem::CsrfRefused),
            Answer::AuthProblem { .. } => Err(ConnectionProblem::WrongCredentials),
            Answer::Misdirected { http_status: 404 } => Err(ConnectionProblem::NotFound),
            Answer::ServerError { http_status } if http_status >= 500 => {
                Err(ConnectionProblem::ServerError { http_status })
            }
            _ => Err(ConnectionProblem::UnexpectedAnswer {
                http_status: *status,
            }),
        },
    }
}
