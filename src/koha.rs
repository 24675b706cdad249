//! Koha's `service.pl` and `svc/authentication` protocol: requests to build and answers to classify.
//!
//! Everything here is pure: the shell executes the [`HttpRequest`]s built here and feeds the
//! answers back ([`classify`], [`classify_no_answer`], [`Detector::feed`]). What Koha accepts and
//! answers is described in `docs/koha.md`, whose heading numbers the comments here cite.
//!
//! - `request`: the paths, transports and the requests for `service.pl`;
//! - `answer`: what an answer means (C1 to C9), and the problems that stop a run;
//! - `auth`: `svc/authentication`, the session login and the logout;
//! - `detect`: which transport works ([`Detector`]);
//! - `library`: whether Koha knows the desk's library code ([`LibraryCheck`]).

mod answer;
mod auth;
mod detect;
mod library;
mod request;

pub use answer::{
    classify, classify_no_answer, classify_reply, message_key, Answer, ConnectionProblem, Flow,
    NoAnswer, Reply, MESSAGE_KEYS, REJECTIONS,
};
pub use auth::{
    auth_probe_request, interpret_session_login, logout_request, parse_auth_status,
    refreshed_token, session_login_request, AuthStatus,
};
pub use detect::{interpret_get_probe, DetectStep, Detection, Detector};
pub use library::{
    interpret_library, library_request, LibraryCheck, LIBRARY_CHECK_TIMEOUT_SECS,
    PUBLIC_LIBRARY_PATH,
};
pub use request::{
    form_encode, form_encode_component, koha_timestamp, service_probe_request, transaction_request,
    Credentials, HttpRequest, Method, Mode, RequestError, Transport, AUTH_PATH, CSRF_HEADER,
    FORM_CONTENT_TYPE, MAINPAGE_PATH, REQUEST_TIMEOUT_SECS, SERVICE_PATH, TIMEOUT_OVERRIDE_KEY,
};
