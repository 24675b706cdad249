//! The JSON control interface under `/__control/` (not Koha behaviour). Used only by tests and the
//! demo.
//!
//! | Endpoint | Body | Answer |
//! |---|---|---|
//! | `GET /__control/model` | | `{model, loans, session_count, logged_in_sessions, failed_logins, password_checks, config, now}` |
//! | `GET /__control/log` | | the request log |
//! | `POST /__control/log/clear` | | `{}` |
//! | `POST /__control/reset` | a [`Config`] (fields optional) or nothing | `{}` |
//! | `POST /__control/config` | a partial [`Config`] merged into the one in force | the config |
//! | `POST /__control/now` | `{"now": "2026-03-29T01:30:00Z"}` or `{"now": null}` | `{}` |
//! | `GET`/`POST /__control/faults` | `[FaultRule]` replaces all | `[{rule, fired}]` |
//! | `POST /__control/refuse` | `{"ms": 500}` | `{}` (F4 for everyone) |
//! | `GET /__control/queue?library=L` | | the rows that library sees (docs/koha.md 9.1) |
//! | `POST /__control/queue/process` | `{"operationid": 1, "library": "DE-627"}` | `{"answer": "Success."}` or 500 |
//! | `POST /__control/queue/delete` | `{"operationid": 1}` | `{"answer": "Deleted."}` |
//! | `POST /__control/koc` | `{"userid", "library", "body"}` | `{added, warnings, status}` (docs/koha.md 9.2) |
//! | `GET /__control/session?id=CGISESSID` | | `{known, userid, logged_in}`: is that session still logged in? |
//! | `GET /__control/logins?userid=U` | | live logged-in sessions of U whose cookie Koha handed out |

use super::http::{form_decode, Request, Response};
use super::{Config, FaultRule, Shared};
use serde_json::{json, Value};

fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p,
    }
}

fn bad(message: impl std::fmt::Display) -> Response {
    Response::json(400, &json!({ "error": message.to_string() }))
}

/// Handles one control request.
pub fn handle(shared: &Shared, req: &Request) -> Response {
    let body: Value = if req.body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&req.body) {
            Ok(v) => v,
            Err(e) => return bad(e),
        }
    };
    let path = req.path.trim_start_matches("/__control");
    let mut state = shared.lock();
    match (req.method.as_str(), path) {
        ("GET", "/model") => {
            let failed: serde_json::Map<String, Value> = state
                .model
                .accounts
                .iter()
                .map(|a| (a.userid.clone(), json!(a.failed_logins)))
                .collect();
            let loans: Vec<Value> = state
                .model
                .loans()
                .into_iter()
                .map(|(barcode, loan)| json!({ "barcode": barcode, "loan": loan }))
                .collect();
            Response::json(
                200,
                &json!({
                    "model": state.model,
                    "loans": loans,
                    "session_count": state.model.sessions.len(),
                    "logged_in_sessions": state.model.logged_in_sessions(),
                    "failed_logins": failed,
                    "password_checks": state.password_checks,
                    "config": state.config,
                    "now": state.now().to_rfc3339(),
                }),
            )
        }
        ("GET", "/log") => Response::json(200, &json!(state.log)),
        ("POST", "/log/clear") => {
            state.log.clear();
            Response::json(200, &json!({}))
        }
        ("POST", "/reset") => {
            let config = if body.is_null() {
                Ok(Config::default())
            } else {
                serde_json::from_value::<Config>(body)
            };
            match config {
                Ok(config) => {
                    drop(state);
                    shared.reset(config);
                    Response::json(200, &json!({}))
                }
                Err(e) => bad(e),
            }
        }
        ("POST", "/config") => {
            let mut current = json!(state.config);
            merge(&mut current, body);
            match serde_json::from_value::<Config>(current) {
                Ok(config) => {
                    if config.switches.server_tz.parse::<chrono_tz::Tz>().is_err() {
                        return bad("unknown SERVER_TZ");
                    }
                    state.config = config;
                    Response::json(200, &json!(state.config))
                }
                Err(e) => bad(e),
            }
        }
        ("POST", "/now") => match body["now"]
            .as_str()
            .map(super::model::rfc3339::parse)
            .transpose()
        {
            Ok(now) => {
                state.now_override = now;
                Response::json(200, &json!({}))
            }
            Err(e) => bad(e),
        },
        ("GET", "/faults") => Response::json(200, &faults_json(&state.faults())),
        ("POST", "/faults") => match serde_json::from_value::<Vec<FaultRule>>(body) {
            Ok(rules) => {
                state.set_faults(rules);
                Response::json(200, &faults_json(&state.faults()))
            }
            Err(e) => bad(e),
        },
        ("POST", "/refuse") => {
            shared.refuse_for(body["ms"].as_u64().unwrap_or(500));
            Response::json(200, &json!({}))
        }
        ("GET", "/session") => {
            let id = query_param(req, "id");
            let session = state.model.sessions.iter().find(|s| s.id == id);
            Response::json(
                200,
                &json!({
                    "known": session.is_some(),
                    "userid": session.and_then(|s| s.userid.clone()),
                    "logged_in": state.session_logged_in(&id),
                }),
            )
        }
        ("GET", "/logins") => Response::json(
            200,
            &json!(state.cookie_logins(&query_param(req, "userid"))),
        ),
        ("GET", "/queue") => {
            Response::json(200, &json!(state.queue_for(&query_param(req, "library"))))
        }
        ("POST", "/queue/process") => {
            let id = body["operationid"].as_u64().unwrap_or(0);
            let library = body["library"].as_str().unwrap_or("").to_owned();
            match state.process_row(id, &library) {
                Ok(answer) => Response::json(200, &json!({ "answer": answer })),
                Err(status) => Response::json(status, &json!({ "error": status })),
            }
        }
        ("POST", "/queue/delete") => {
            match state.delete_row(body["operationid"].as_u64().unwrap_or(0)) {
                Some(answer) => Response::json(200, &json!({ "answer": answer })),
                None => Response::json(404, &json!({ "error": 404 })),
            }
        }
        ("POST", "/koc") => {
            let field = |k: &str| body[k].as_str().unwrap_or("").to_owned();
            let report = state.import_koc(&field("userid"), &field("library"), &field("body"));
            Response::json(200, &json!(report))
        }
        _ => Response::json(404, &json!({ "error": "unknown control endpoint" })),
    }
}

fn query_param(req: &Request, name: &str) -> String {
    form_decode(&req.query)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
        .unwrap_or_default()
}

fn faults_json(faults: &[(FaultRule, u32)]) -> Value {
    json!(faults
        .iter()
        .map(|(rule, fired)| json!({ "rule": rule, "fired": fired }))
        .collect::<Vec<_>>())
}
