//! Koha's REST lists that the offline checks read (docs/koha.md 12): `GET /api/v1/patrons`,
//! `/api/v1/items` and `/api/v1/checkouts`, with Koha's paging, per-era field names, the staff
//! session cookie or HTTP Basic, and 401/403 for a missing login or permission. Also one
//! library by its code without a login, `GET /api/v1/public/libraries/{code}` (docs/koha.md 13),
//! which the legacy profile lacks.

use super::dates;
use super::http::{form_decode, path_decode, Request, Response};
use super::koha::param;
use super::model::{Account, Permission, FIXTURE_CHANGED};
use super::synthetic::Synthetic;
use super::{Profile, Shared, State};
use chrono::{DateTime, NaiveDateTime};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Whether this Koha has a working REST API at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RestApi {
    /// `/api/v1` answers.
    #[default]
    On,
    /// No `/api/v1` at all: every path under it is 404 (an old Koha, or the API switched off).
    Absent,
    /// `/api/v1` answers 500 (a Koha whose REST layer broke with a newer Perl module).
    Broken,
}

/// The REST permissions a list needs (docs/koha.md 12.2 to 12.4), and the one that widens the
/// patron list beyond the staff user's library.
pub const LIST_BORROWERS: &str = "list_borrowers";
/// Items.
pub const CATALOGUE: &str = "catalogue";
/// Checkouts.
pub const CIRCULATE: &str = "circulate_remaining_permissions";
/// Patrons of every library, not only the staff user's own.
pub const ANY_LIBRARY: &str = "view_borrower_infos_from_any_libraries";

fn json_error(status: u16, message: &str) -> Response {
    Response::json(status, &json!({ "error": message }))
}

/// Answers a request under `/api/v1/`. The `bool` says whether Koha's logic looked at data.
pub fn api(shared: &Shared, req: &Request) -> (Response, bool) {
    let state = shared.lock();
    match state.config.switches.rest_api {
        RestApi::On => {}
        RestApi::Absent => {
            return (
                Response::new(
                    404,
                    "text/html",
                    "<html><body><h1>Not Found</h1></body></html>",
                ),
                false,
            )
        }
        RestApi::Broken => {
            return (
                super::koha::error_response(&state, 500, "Software error"),
                false,
            )
        }
    }
    if let Some(code) = req.path.strip_prefix("/api/v1/public/libraries/") {
        if state.config.profile != Profile::Legacy && req.method == "GET" {
            return (public_library(&state, code), true);
        }
    }
    let (list, permission) = match req.path.as_str() {
        "/api/v1/patrons" => ("patrons", LIST_BORROWERS),
        // Older Koha versions have no item list (docs/koha.md 12.3).
        "/api/v1/items" if state.config.profile != Profile::Legacy => ("items", CATALOGUE),
        "/api/v1/checkouts" => ("checkouts", CIRCULATE),
        _ => return (json_error(404, "Endpoint not found."), false),
    };
    if req.method != "GET" {
        return (json_error(405, "Method not allowed."), false);
    }
    let Some(user) = rest_user(&state, req) else {
        return (json_error(401, "Authentication failure."), false);
    };
    if !has_permission(&state, &user, permission) {
        let body = json!({
            "error": "Authorization failure. Missing required permission(s).",
            "required_permissions": { "permission": permission },
        });
        return (Response::json(403, &body), false);
    }
    let params = form_decode(&req.query);
    let since = match changed_since(&params, list) {
        Ok(since) => since,
        Err(refused) => return (refused, true),
    };
    let records = match list {
        "patrons" => {
            let embed = req
                .header("x-koha-embed")
                .is_some_and(|e| e.split(',').any(|p| p.trim() == "account_balance"));
            let any_library = has_permission(&state, &user, ANY_LIBRARY);
            patrons(&state, &user, embed, any_library)
        }
        "items" => items(&state),
        _ => checkouts(&state),
    };
    let records = match since {
        Some((field, since)) => changed(records, field, since, state.tz()),
        None => records,
    };
    (page(req, &params, &records), true)
}

/// One library, or Koha's 404 for a code it does not have (codes compare without case, as in
/// Koha's database).
fn public_library(state: &State, code: &str) -> Response {
    let code = path_decode(code);
    match state
        .model
        .libraries
        .iter()
        .find(|l| l.code.eq_ignore_ascii_case(&code))
    {
        Some(library) => Response::json(
            200,
            &json!({
                "library_id": library.code,
                "name": library.name,
                "address1": null,
                "city": null,
                "email": null,
                "url": null,
            }),
        ),
        None => json_error(404, "Library not found"),
    }
}

/// Koha's `q` filter as the incremental pulls send it: `{"<field>":{">=":"<local time>"}}` on
/// `updated_on` (patrons) or `timestamp` (items). The value reaches the database as it is, which
/// reads `YYYY-MM-DD HH:MM:SS` (or with a `T`) as Koha's local time. Anything else in `q` is a
/// 400, as Koha answers a filter it cannot use. No `q`: `None`.
fn changed_since(
    params: &[(String, String)],
    list: &str,
) -> Result<Option<(&'static str, NaiveDateTime)>, Response> {
    let q = param(params, "q");
    if q.is_empty() {
        return Ok(None);
    }
    let refused = || json_error(400, "Invalid query.");
    let field = match list {
        "patrons" => "updated_on",
        "items" => "timestamp",
        _ => return Err(refused()),
    };
    let filter: Value = serde_json::from_str(&q).map_err(|_| refused())?;
    let value = filter
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.get(field))
        .and_then(Value::as_object)
        .filter(|o| o.len() == 1)
        .and_then(|o| o.get(">="))
        .and_then(Value::as_str)
        .ok_or_else(refused)?;
    let since = NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S"))
        .map_err(|_| refused())?;
    Ok(Some((field, since)))
}

/// The records whose `field` (RFC 3339, as the list gives it) is at or after `since`, Koha's
/// local time in zone `tz`.
fn changed<'a>(records: Rows<'a>, field: &'static str, since: NaiveDateTime, tz: Tz) -> Rows<'a> {
    let local = |record: &Value| {
        record[field]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&tz).naive_local())
    };
    let kept: Vec<Value> = (0..records.len)
        .map(&records.make)
        .filter(|record| local(record).is_some_and(|at| at >= since))
        .collect();
    Rows {
        len: kept.len(),
        make: Box::new(move |n| kept[n].clone()),
    }
}

/// A server-local `YYYY-MM-DD HH:MM:SS` as Koha's REST API gives it: RFC 3339 with the
/// server's offset.
fn api_time(local: &str, tz: Tz) -> String {
    NaiveDateTime::parse_from_str(local, dates::FORMAT)
        .ok()
        .and_then(|t| t.and_local_timezone(tz).earliest())
        .map(|t| t.to_rfc3339())
        .unwrap_or_else(|| local.to_owned())
}

/// A REST list whose records are made only when a page asks for them: the fixture's first,
/// then the generated ones ([`Synthetic`]).
struct Rows<'a> {
    len: usize,
    make: Box<dyn Fn(usize) -> Value + 'a>,
}

/// The staff user a REST request is authenticated as: HTTP Basic (only with the
/// `RESTBasicAuth` preference on), else the `CGISESSID` cookie of a live, logged-in session.
fn rest_user(state: &State, req: &Request) -> Option<Account> {
    if let Some(basic) = req
        .header("authorization")
        .and_then(|h| h.strip_prefix("Basic "))
    {
        if !state.config.switches.rest_basic_auth {
            return None;
        }
        let pair = String::from_utf8(base64_decode(basic.trim())?).ok()?;
        let (name, password) = pair.split_once(':')?;
        let account = state.model.account(name)?;
        return (account.password == password && !account.locked).then(|| account.clone());
    }
    let cookie = req.cookie("CGISESSID")?;
    if !state.session_logged_in(&cookie) {
        return None;
    }
    let session = state.model.sessions.iter().find(|s| s.id == cookie)?;
    state.model.account(session.userid.as_deref()?).cloned()
}

/// A superlibrarian has every permission; an account without staff permission none; the
/// librarians (`edit_catalogue`) every REST one except those `REST_MISSING_PERMISSIONS` names.
fn has_permission(state: &State, user: &Account, permission: &str) -> bool {
    match user.permission {
        Permission::Superlibrarian => true,
        Permission::None => false,
        Permission::EditCatalogue => !state
            .config
            .switches
            .rest_missing_permissions
            .iter()
            .any(|p| p == permission),
    }
}

fn patrons<'a>(state: &'a State, user: &Account, embed: bool, any_library: bool) -> Rows<'a> {
    // The balance embed is in 23.x and later, not in the older versions.
    let embed = embed && state.config.profile != Profile::Legacy;
    let tz = state.tz();
    let fixture = state.model.accounts.len();
    let generated = state.config.synthetic.patrons as usize;
    let libraries: Vec<String> = state
        .model
        .libraries
        .iter()
        .map(|l| l.code.clone())
        .collect();
    // Koha's patron_id of every patron in the list, in order (all of them, or only the staff
    // user's library's).
    let shown: Option<Vec<usize>> = (!any_library).then(|| {
        let own = |index: usize| {
            if index < fixture {
                state.model.accounts[index].home_library == user.home_library
            } else {
                Synthetic::patron_library((index - fixture) as u32, &libraries) == user.home_library
            }
        };
        (0..fixture + generated).filter(|&i| own(i)).collect()
    });
    let len = shown.as_ref().map_or(fixture + generated, Vec::len);
    Rows {
        len,
        make: Box::new(move |n| {
            let index = shown.as_ref().map_or(n, |s| s[n]);
            if index >= fixture {
                return Synthetic::patron((index - fixture) as u32, index + 1, &libraries, embed);
            }
            let a = &state.model.accounts[index];
            let mut patron = json!({
                "patron_id": index + 1,
                "cardnumber": a.cardnumber,
                "userid": a.userid,
                // Koha sends names and addresses too; the add-on must not keep them.
                "surname": format!("Surname of {}", a.userid),
                "firstname": "Firstname",
                "address": "1 Library Street",
                "email": format!("{}@example.org", a.userid),
                "expiry_date": a.expiry_date,
                "restricted": a.restricted,
                "patron_card_lost": a.card_lost,
                "incorrect_address": a.address_in_doubt,
                "library_id": a.home_library,
                "updated_on": api_time(a.updated_on.as_deref().unwrap_or(FIXTURE_CHANGED), tz),
            });
            if embed {
                let paid: f64 = state
                    .model
                    .credits
                    .iter()
                    .filter(|c| c.cardnumber == a.cardnumber)
                    .filter_map(|c| c.amount.parse::<f64>().ok())
                    .sum();
                patron["account_balance"] = json!(a.balance_cents as f64 / 100.0 - paid);
            }
            patron
        }),
    }
}

fn items(state: &State) -> Rows<'_> {
    let newest = state.config.profile == Profile::Newest;
    let tz = state.tz();
    let fixture = state.model.items.len();
    let synthetic = state.config.synthetic;
    Rows {
        len: fixture + synthetic.items as usize,
        make: Box::new(move |index| {
            if index >= fixture {
                return synthetic.item((index - fixture) as u32, index + 1, newest);
            }
            let i = &state.model.items[index];
            let mut item = json!({
                "item_id": index + 1,
                "biblio_id": index + 1,
                "external_id": i.barcode,
                "lost_status": u8::from(i.lost),
                "withdrawn": u8::from(i.withdrawn),
                "not_for_loan_status": u8::from(i.not_for_loan),
                "damaged_status": u8::from(i.damaged),
                "restricted_status": null,
                "checked_out_date": i.loan.as_ref().map(|l| l.due_at[..10].to_owned()),
                "timestamp": api_time(i.timestamp.as_deref().unwrap_or(FIXTURE_CHANGED), tz),
            });
            // The item type's field was renamed; the effective "not for loan" came later.
            if newest {
                item["item_type_id"] = json!("BK");
                item["effective_not_for_loan_status"] = json!(u8::from(i.not_for_loan));
            } else {
                item["item_type"] = json!("BK");
            }
            item
        }),
    }
}

fn checkouts(state: &State) -> Rows<'_> {
    let model = &state.model;
    let fixture: Vec<Value> = model
        .items
        .iter()
        .enumerate()
        .filter_map(|(index, i)| {
            let loan = i.loan.as_ref()?;
            let patron = model.find_patron(&loan.cardnumber)?;
            Some((index, loan, patron))
        })
        .enumerate()
        .map(|(n, (index, loan, patron))| {
            json!({
                "checkout_id": n + 1,
                "item_id": index + 1,
                "patron_id": patron + 1,
                "due_date": loan.due_at,
                "checkout_date": loan.issued_at,
                "library_id": loan.library,
            })
        })
        .collect();
    let synthetic = state.config.synthetic;
    let (items, patrons) = (model.items.len(), model.accounts.len());
    Rows {
        len: fixture.len() + synthetic.loans() as usize,
        make: Box::new(move |n| {
            if let Some(checkout) = fixture.get(n) {
                return checkout.clone();
            }
            let (item, patron) = synthetic.loan((n - fixture.len()) as u32);
            json!({
                "checkout_id": n + 1,
                "item_id": items + item as usize + 1,
                "patron_id": patrons + patron as usize + 1,
                "due_date": "2026-01-19 23:59:00",
                "checkout_date": "2026-01-05 10:00:00",
                "library_id": "DE-627",
            })
        }),
    }
}

/// One page of `records` as Koha pages them (docs/koha.md 12.1): `_page` from 1, `_per_page`
/// (default 20; -1 is everything), `X-Total-Count`, and a `Link` header with first, prev, next
/// and last.
fn page(req: &Request, params: &[(String, String)], records: &Rows) -> Response {
    let total = records.len;
    let per_page: i64 = param(params, "_per_page").parse().unwrap_or(20);
    let page: usize = param(params, "_page").parse().unwrap_or(1).max(1);
    let (range, last) = if per_page < 1 {
        (0..total, 1)
    } else {
        let per = per_page as usize;
        let start = (page - 1).saturating_mul(per).min(total);
        let end = start.saturating_add(per).min(total);
        (start..end, total.div_ceil(per).max(1))
    };
    let chunk: Vec<Value> = range.map(&records.make).collect();
    let link = |n: usize, rel: &str| {
        format!(
            "<{}?_page={n}&_per_page={per_page}>; rel=\"{rel}\"",
            req.path
        )
    };
    let mut links = vec![link(1, "first")];
    if page > 1 {
        links.push(link(page - 1, "prev"));
    }
    if page < last {
        links.push(link(page + 1, "next"));
    }
    links.push(link(last, "last"));
    Response::json(200, &Value::Array(chunk))
        .with_header("X-Total-Count", &total.to_string())
        .with_header("Link", &links.join(", "))
}

/// Base64 (padding optional); `None` for anything else.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes: Vec<u8> = text.trim_end_matches('=').bytes().collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for group in bytes.chunks(4) {
        let mut acc = 0u32;
        for &c in group {
            acc = (acc << 6) | value(c)?;
        }
        match group.len() {
            4 => out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]),
            3 => out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]),
            2 => out.push((acc >> 4) as u8),
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::base64_decode;

    #[test]
    fn base64_reads_every_padding() {
        assert_eq!(base64_decode("ZGVzazpzZWNyZXQx").unwrap(), b"desk:secret1");
        assert_eq!(base64_decode("YWI6Yw==").unwrap(), b"ab:c");
        assert_eq!(base64_decode("YWI6").unwrap(), b"ab:");
        assert!(base64_decode("a").is_none());
        assert!(base64_decode("a*b=").is_none());
    }
}
