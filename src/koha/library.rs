//! Whether Koha knows the desk's library code (docs/koha.md 13).
//!
//! A queued transaction carries the desk's code, and Koha's list of pending offline operations
//! shows a librarian only the rows of their own library: with a code Koha does not have, the
//! rows are stored but nobody reviewing the queue ever sees them.
//!
//! Koha 21.11 and later answer `GET /api/v1/public/libraries/{code}` without a login (when its
//! public REST API is on, as it is by default): the library, or 404 with the error `Library not
//! found`. Anything else (an older Koha without the route, the public API switched off, a
//! server error) leaves the code unchecked, never called wrong.

use super::answer::Reply;
use super::request::{form_encode_component, HttpRequest, Method};
use crate::ids::Branchcode;
use crate::kinds::kinds;
use serde::Deserialize;

/// The route, below the server's base.
pub const PUBLIC_LIBRARY_PATH: &str = "/api/v1/public/libraries/";

/// How long the connection test waits for the answer, in seconds. Koha has just answered the
/// test's other requests, so a route that takes longer is not going to say, and the librarian
/// should not wait the send requests' full time-out for a line of advice.
pub const LIBRARY_CHECK_TIMEOUT_SECS: u32 = 10;

/// What Koha said about a library code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LibraryCheck {
    /// Koha has this library; its name as Koha shows it.
    Known {
        /// The library's name.
        name: String,
    },
    /// Koha answered that it has no library with this code.
    Unknown,
    /// Koha gave no answer that says either (see the module's text).
    Unchecked,
}

kinds!(LibraryCheck {
    Known => "known",
    Unknown => "unknown",
    Unchecked => "unchecked",
});

/// `GET {base}/api/v1/public/libraries/{code}`, without cookies: it needs no login, and the
/// librarian's own session stays out of it.
pub fn library_request(base: &str, code: &Branchcode) -> HttpRequest {
    HttpRequest {
        method: Method::Get,
        // Form encoding writes a space as `+`, which a path keeps as a plus; any `+` in the code
        // itself comes out as `%2B`.
        url: format!(
            "{base}{PUBLIC_LIBRARY_PATH}{}",
            form_encode_component(code.as_str()).replace('+', "%20")
        ),
        params: Vec::new(),
        headers: vec![("Accept".to_owned(), "application/json".to_owned())],
        include_cookies: false,
        timeout_secs: LIBRARY_CHECK_TIMEOUT_SECS,
    }
}

/// Koha's library object (`library_id` and `name` in every version with the route).
#[derive(Deserialize)]
struct Library {
    library_id: String,
    name: Option<String>,
}

/// Koha's error object.
#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

/// What the answer to [`library_request`] says about `code`.
pub fn interpret_library(reply: &Reply, code: &Branchcode) -> LibraryCheck {
    let Reply::Http { status, body, .. } = reply else {
        return LibraryCheck::Unchecked;
    };
    match status {
        200 => match serde_json::from_str::<Library>(body) {
            // Koha's database compares library codes without regard to case.
            Ok(library) if library.library_id.eq_ignore_ascii_case(code.as_str()) => {
                LibraryCheck::Known {
                    name: library.name.unwrap_or_default(),
                }
            }
            _ => LibraryCheck::Unchecked,
        },
        // Only Koha's own "not found" for a library: a 404 for a route this Koha lacks reads
        // differently.
        404 => match serde_json::from_str::<ErrorBody>(body) {
            Ok(error) if error.error == "Library not found" => LibraryCheck::Unknown,
            _ => LibraryCheck::Unchecked,
        },
        _ => LibraryCheck::Unchecked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::koha::NoAnswer;

    fn code() -> Branchcode {
        Branchcode::parse("DE-627").expect("code")
    }

    fn http(status: u16, body: &str) -> Reply {
        Reply::Http {
            status,
            csrf_token: None,
            body: body.to_owned(),
            date: None,
        }
    }

    #[test]
    fn the_request_names_the_code_in_the_path_and_sends_no_cookies() {
        let request = library_request("https://koha.example.org", &code());
        assert_eq!(
            request.full_url(),
            "https://koha.example.org/api/v1/public/libraries/DE-627"
        );
        assert_eq!(request.method, Method::Get);
        assert!(!request.include_cookies);
        let odd = Branchcode::parse("A B/C").expect("code");
        assert_eq!(
            library_request("https://k", &odd).url,
            "https://k/api/v1/public/libraries/A%20B%2FC"
        );
    }

    #[test]
    fn a_library_with_the_code_is_known_whatever_its_case() {
        let known = |body: &str| interpret_library(&http(200, body), &code());
        assert_eq!(
            known(r#"{"library_id":"DE-627","name":"Stadtbibliothek","pickup_location":true}"#),
            LibraryCheck::Known {
                name: "Stadtbibliothek".to_owned()
            }
        );
        assert_eq!(
            known(r#"{"library_id":"de-627","name":null}"#),
            LibraryCheck::Known {
                name: String::new()
            }
        );
        // Another library's answer, or no library at all, says nothing about this code.
        assert_eq!(
            known(r#"{"library_id":"DE-25","name":"x"}"#),
            LibraryCheck::Unchecked
        );
        assert_eq!(known("<html>"), LibraryCheck::Unchecked);
    }

    #[test]
    fn only_kohas_library_not_found_makes_the_code_unknown() {
        let check = |status: u16, body: &str| interpret_library(&http(status, body), &code());
        assert_eq!(
            check(404, r#"{"error":"Library not found"}"#),
            LibraryCheck::Unknown
        );
        assert_eq!(
            check(
                404,
                r#"{"error":"Library not found","error_code":"not_found"}"#
            ),
            LibraryCheck::Unknown
        );
        // A Koha without the route, or without a REST API, or with the public API off.
        for (status, body) in [
            (
                404,
                r#"{"errors":[{"message":"Not Found.","path":"/"}],"status":404}"#,
            ),
            (404, r#"{"error":"Endpoint not found."}"#),
            (404, "<html><body><h1>Not Found</h1></body></html>"),
            (401, r#"{"error":"Authentication failure."}"#),
            (
                403,
                r#"{"error":"Configuration prevents the usage of this endpoint by unprivileged users"}"#,
            ),
            (500, "Software error"),
        ] {
            assert_eq!(
                check(status, body),
                LibraryCheck::Unchecked,
                "{status} {body}"
            );
        }
        let silent = Reply::NoAnswer {
            why: NoAnswer::Network,
        };
        assert_eq!(interpret_library(&silent, &code()), LibraryCheck::Unchecked);
    }
}
