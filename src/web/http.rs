//! Executes the core's `HttpRequest`s with `fetch` (gloo-net) and hands back a `Reply`.

use crate::koha::{HttpRequest, Method, NoAnswer, Reply};
use gloo_net::http::{Request, RequestBuilder};
use web_sys::{AbortController, RequestCache, RequestCredentials, RequestRedirect};

/// How long a request may take before it counts as a time-out (koha-protocol.md §2.7).
pub const TIMEOUT_MS: i32 = 60_000;

/// Sends one request. Never fails: a missing answer is a `Reply::NoAnswer`.
pub async fn send(request: &HttpRequest) -> Reply {
    match try_send(request).await {
        Ok(reply) => reply,
        Err(why) => Reply::NoAnswer { why, tls: false },
    }
}

async fn try_send(request: &HttpRequest) -> Result<Reply, NoAnswer> {
    let controller = AbortController::new().map_err(|_| NoAnswer::Network)?;
    let timer = gloo_timers_like::Timeout::start(TIMEOUT_MS, controller.clone());
    let url = request.full_url();
    let builder = match request.method {
        Method::Get => RequestBuilder::new(&url).method(gloo_net::http::Method::GET),
        Method::Post => RequestBuilder::new(&url)
            .method(gloo_net::http::Method::POST)
            .header("Content-Type", "application/x-www-form-urlencoded"),
    };
    let mut builder = builder
        .cache(RequestCache::NoStore)
        .redirect(RequestRedirect::Manual)
        .credentials(if request.include_cookies {
            RequestCredentials::Include
        } else {
            RequestCredentials::Omit
        })
        .abort_signal(Some(&controller.signal()));
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    let built: Result<Request, _> = match request.body() {
        Some(body) => builder.body(body),
        None => builder.build(),
    };
    let built = built.map_err(|_| NoAnswer::Network)?;
    let sent = built.send().await;
    let timed_out = timer.fired();
    drop(timer);
    let response = match sent {
        Ok(response) => response,
        Err(_) if timed_out => return Err(NoAnswer::Timeout),
        Err(_) => return Err(NoAnswer::Network),
    };
    // With `redirect: manual` a redirect arrives as an opaque response with status 0.
    let status = match response.status() {
        0 if response.type_() == web_sys::ResponseType::Opaqueredirect => 302,
        other => other,
    };
    let headers = response.headers();
    let csrf_token = headers.get("CSRF-TOKEN");
    let content_type = headers.get("Content-Type").unwrap_or_default();
    let date = headers.get("Date");
    let body = match response.text().await {
        Ok(body) => body,
        Err(_) if timer_fired_late(&controller) => return Err(NoAnswer::Timeout),
        Err(_) => return Err(NoAnswer::Network),
    };
    Ok(Reply::Http {
        status,
        csrf_token,
        content_type,
        body,
        date,
    })
}

fn timer_fired_late(controller: &AbortController) -> bool {
    controller.signal().aborted()
}

/// A `setTimeout` that aborts the request, cleared when dropped.
mod gloo_timers_like {
    use std::cell::Cell;
    use std::rc::Rc;
    use wasm_bindgen::prelude::*;
    use web_sys::AbortController;

    pub struct Timeout {
        id: i32,
        fired: Rc<Cell<bool>>,
        _callback: Closure<dyn FnMut()>,
    }

    impl Timeout {
        pub fn start(ms: i32, controller: AbortController) -> Timeout {
            let fired = Rc::new(Cell::new(false));
            let flag = fired.clone();
            let callback = Closure::<dyn FnMut()>::new(move || {
                flag.set(true);
                controller.abort();
            });
            let id = web_sys::window()
                .and_then(|w| {
                    w.set_timeout_with_callback_and_timeout_and_arguments_0(
                        callback.as_ref().unchecked_ref(),
                        ms,
                    )
                    .ok()
                })
                .unwrap_or(-1);
            Timeout {
                id,
                fired,
                _callback: callback,
            }
        }

        pub fn fired(&self) -> bool {
            self.fired.get()
        }
    }

    impl Drop for Timeout {
        fn drop(&mut self) {
            if let Some(window) = web_sys::window() {
                window.clear_timeout_with_handle(self.id);
            }
        }
    }
}
