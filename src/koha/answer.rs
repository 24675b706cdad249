//! What Koha's answers mean: a `service.pl` answer classified by the rules C1 to C9
//! (docs/koha.md 10.2) into an [`Answer`] and a transaction status, and the [`ConnectionProblem`]s
//! that stop a run before it sends anything.

use crate::kinds::kinds;
use crate::transaction::{FailReason, Status, UncertainReason};
use serde::{Deserialize, Serialize};
use thiserror::Error;

// Koha's answer texts (docs/koha.md 10.1), each written once: the classification and the i18n keys
// below compare against the same strings.
const ADDED: &str = "Added.";
const SUCCESS: &str = "Success.";
const AUTHENTICATION_FAILED: &str = "Authentication failed.";
const ITEM_NOT_FOUND: &str = "Item not found.";
const ITEM_NOT_ISSUED: &str = "Item not issued.";
const BARCODE_NOT_FOUND: &str = "Barcode not found.";
const BORROWER_NOT_FOUND: &str = "Borrower not found.";

/// The four messages with which Koha refuses a direct transaction and changes nothing (C3).
pub const REJECTIONS: [&str; 4] = [
    ITEM_NOT_FOUND,
    ITEM_NOT_ISSUED,
    BARCODE_NOT_FOUND,
    BORROWER_NOT_FOUND,
];

/// What an answer from `service.pl` means (docs/koha.md 10.2). Each variant names its rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "class", rename_all = "kebab-case")]
pub enum Answer {
    /// C1: 200 `Added.`.
    Queued,
    /// C2: 200 `Success.`.
    Applied,
    /// C3: 200 with one of [`REJECTIONS`]; Koha changed nothing.
    Rejected {
        /// Koha's message, trimmed.
        message: String,
    },
    /// C4: 200 with an empty body (an unknown action; a bug on our side).
    Empty,
    /// C5: 200 `Authentication failed.`, any 401 or 403. Nothing was applied.
    AuthProblem {
        /// The HTTP status (200, 401 or 403).
        http_status: u16,
    },
    /// C6: 3xx, 404, 405, 414 or another 4xx: a wrong URL or a gateway. Nothing was applied.
    Misdirected {
        /// The HTTP status.
        http_status: u16,
    },
    /// C7: 5xx, or 200 with any other body. Maybe applied.
    ServerError {
        /// The HTTP status.
        http_status: u16,
    },
    /// C8: no HTTP answer (refused, reset, DNS, TLS, offline). Maybe applied.
    NetworkError,
    /// C9: the client gave up waiting. Maybe applied.
    Timeout,
}

/// After an answer: go on with the next transaction or stop the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flow {
    /// C1 to C4.
    Continue,
    /// C5 to C9.
    Stop,
}

/// Why no HTTP answer arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoAnswer {
    /// Refused, reset, DNS, TLS or offline: C8.
    Network,
    /// The client timed out: C9.
    Timeout,
}

/// Trims ASCII white space only: what Koha's answers are padded with.
pub(super) fn trim_ascii(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_ascii_whitespace())
}

/// Classifies an HTTP answer from `service.pl` by C1 to C7. The body is trimmed of ASCII
/// whitespace and compared exactly, whatever the mode. The content type is not an input: the rules
/// classify by status and body alone.
pub fn classify(http_status: u16, body: &str) -> Answer {
    let text = trim_ascii(body);
    match http_status {
        200 => match text {
            ADDED => Answer::Queued,
            SUCCESS => Answer::Applied,
            "" => Answer::Empty,
            AUTHENTICATION_FAILED => Answer::AuthProblem { http_status },
            t if REJECTIONS.contains(&t) => Answer::Rejected {
                message: t.to_owned(),
            },
            _ => Answer::ServerError { http_status },
        },
        401 | 403 => Answer::AuthProblem { http_status },
        300..=499 => Answer::Misdirected { http_status },
        // 5xx, and anything else odd (1xx, other 2xx, beyond 599): the server did something
        // unexpected, so the request may have been processed.
        _ => Answer::ServerError { http_status },
    }
}

/// Classifies whatever the shell got for a `service.pl` request (C1 to C9).
pub fn classify_reply(reply: &Reply) -> Answer {
    match reply {
        Reply::Http { status, body, .. } => classify(*status, body),
        Reply::NoAnswer { why, .. } => classify_no_answer(*why),
    }
}

/// Classifies a request that got no HTTP answer (C8, C9).
pub fn classify_no_answer(why: NoAnswer) -> Answer {
    match why {
        NoAnswer::Network => Answer::NetworkError,
        NoAnswer::Timeout => Answer::Timeout,
    }
}

impl Answer {
    /// The rule's name, `C1` to `C9` (docs/koha.md 10.2).
    pub fn rule(&self) -> &'static str {
        match self {
            Answer::Queued => "C1",
            Answer::Applied => "C2",
            Answer::Rejected { .. } => "C3",
            Answer::Empty => "C4",
            Answer::AuthProblem { .. } => "C5",
            Answer::Misdirected { .. } => "C6",
            Answer::ServerError { .. } => "C7",
            Answer::NetworkError => "C8",
            Answer::Timeout => "C9",
        }
    }

    /// The transaction's status after this answer. Reasons are stable kinds:
    /// failed `authentication`, `csrf` (403) or `configuration`; uncertain `server-error`,
    /// `unexpected-answer` (200 with another body), `connection-lost` or `timeout`.
    pub fn outcome(&self) -> Status {
        let failed = |reason| Status::Failed { reason };
        let uncertain = |reason| Status::Uncertain { reason };
        match self {
            Answer::Queued => Status::Queued,
            Answer::Applied => Status::Applied,
            Answer::Rejected { message } => Status::Rejected {
                message: message.clone(),
            },
            Answer::Empty => Status::Rejected {
                message: String::new(),
            },
            Answer::AuthProblem { http_status: 403 } => failed(FailReason::Csrf),
            Answer::AuthProblem { .. } => failed(FailReason::Authentication),
            Answer::Misdirected { .. } => failed(FailReason::Configuration),
            Answer::ServerError { http_status: 200 } => {
                uncertain(UncertainReason::UnexpectedAnswer)
            }
            Answer::ServerError { .. } => uncertain(UncertainReason::ServerError),
            Answer::NetworkError => uncertain(UncertainReason::ConnectionLost),
            Answer::Timeout => uncertain(UncertainReason::Timeout),
        }
    }

    /// Continue after C1 to C4 (Koha took or refused the transaction), stop after C5 to C9: more
    /// failed logins risk a lockout, a wrong address fails every request, and a transaction that
    /// may have been applied needs the librarian.
    pub fn flow(&self) -> Flow {
        match self {
            Answer::Queued | Answer::Applied | Answer::Rejected { .. } | Answer::Empty => {
                Flow::Continue
            }
            _ => Flow::Stop,
        }
    }

    /// A 403: with P1 or P2 the token may be stale; nothing was applied, so one token refresh and
    /// one retry of the same transaction are allowed.
    pub fn is_forbidden(&self) -> bool {
        matches!(self, Answer::AuthProblem { http_status: 403 })
    }
}

/// Maps Koha's exact answer texts to stable i18n keys (the UI shows Koha's text and a translation).
/// Returns `None` for any other text.
pub fn message_key(koha_text: &str) -> Option<&'static str> {
    MESSAGE_KEYS
        .iter()
        .find(|(text, _)| *text == koha_text)
        .map(|(_, key)| *key)
}

/// Koha's answer texts that [`message_key`] knows, each with its key.
pub const MESSAGE_KEYS: &[(&str, &str)] = &[
    (BORROWER_NOT_FOUND, "koha-borrower-not-found"),
    (BARCODE_NOT_FOUND, "koha-barcode-not-found"),
    (ITEM_NOT_FOUND, "koha-item-not-found"),
    (ITEM_NOT_ISSUED, "koha-item-not-issued"),
    (ADDED, "koha-added"),
    (SUCCESS, "koha-success"),
    (AUTHENTICATION_FAILED, "koha-authentication-failed"),
    ("", "koha-empty-answer"),
];

/// Why "Test connection" (or the start of a send run) found no way to send. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ConnectionProblem {
    /// No HTTP answer: network, DNS, refused, offline.
    #[error("the Koha server cannot be reached")]
    Unreachable,
    /// 404: the address is not a Koha staff interface.
    #[error("no Koha staff interface at this address (HTTP 404)")]
    NotFound,
    /// Koha refused the user name or password.
    #[error("Koha refused the user name or password")]
    WrongCredentials,
    /// The login works but lacks a permission the transport needs (`edit_catalogue` for P2).
    #[error("the account lacks the permission this transport needs")]
    MissingPermission,
    /// Koha refused the CSRF token, even a fresh one.
    #[error("Koha refused the CSRF token")]
    CsrfRefused,
    /// The server failed.
    #[error("the Koha server failed (HTTP {http_status})")]
    ServerError {
        /// The HTTP status.
        http_status: u16,
    },
    /// Only GET would work, which puts the password in the URL: ask the librarian.
    #[error("only GET requests would work, which put the password into URLs and logs")]
    NeedsGetConsent,
    /// The server accepted the connection but did not answer in time (only "Test connection"
    /// tells this apart from [`ConnectionProblem::Unreachable`]).
    #[error("the Koha server did not answer in time")]
    Timeout,
    /// An answer Koha does not give.
    #[error("unexpected answer from the server (HTTP {http_status})")]
    UnexpectedAnswer {
        /// The HTTP status.
        http_status: u16,
    },
}

kinds!(ConnectionProblem {
    Unreachable => "unreachable",
    NotFound => "not-found",
    WrongCredentials => "wrong-credentials",
    MissingPermission => "missing-permission",
    CsrfRefused => "csrf-refused",
    ServerError => "server-error",
    NeedsGetConsent => "needs-get-consent",
    Timeout => "timeout",
    UnexpectedAnswer => "unexpected-answer",
});

/// What the shell got back for a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Reply {
    /// An HTTP answer.
    Http {
        /// The status code.
        status: u16,
        /// The `CSRF-TOKEN` header, if present (even if empty).
        csrf_token: Option<String>,
        /// The body as text.
        body: String,
        /// The `Date` header, verbatim, if present: the server's clock (see [`crate::clock`]).
        #[serde(default)]
        date: Option<String>,
    },
    /// No HTTP answer. `fetch` rejects a refused connection, a DNS failure and a failed TLS
    /// handshake with the same error, so the shell can tell only a time-out from the rest.
    NoAnswer {
        /// Timeout or network.
        why: NoAnswer,
    },
}
