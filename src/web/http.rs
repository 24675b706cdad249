//! Executes the core's `HttpRequest`s with `fetch` (gloo-net) and hands back a `Reply`.

use crate::koha::{self, HttpRequest, Method, NoAnswer, Reply};
use gloo_net::http::{Request, RequestBuilder};
use web_sys::{AbortSignal, RequestCache, RequestCredentials, RequestRedirect};

/// Sends one request. Never fails: a missing answer is a `Reply::NoAnswer`.
pub async fn send(request: &HttpRequest) -> Reply {
    match try_send(request).await {
        Ok(reply) => reply,
        Err(why) => Reply::NoAnswer { why },
    }
}

/// The request's time-out, shortened if a test stored an override.
fn timeout_ms(request: &HttpRequest) -> u32 {
    let stored = web_sys::window()
        .and_then(|w| w.local_storage().ok().flatten())
        .and_then(|s| s.get_item(koha::TIMEOUT_OVERRIDE_KEY).ok().flatten());
    request.timeout_ms(stored.as_deref())
}

async fn try_send(request: &HttpRequest) -> Result<Reply, NoAnswer> {
    let (status, headers, body) = fetch(request).await?;
    Ok(Reply::Http {
        status,
        csrf_token: headers.get(koha::CSRF_HEADER),
        body,
        date: headers.get("Date"),
    })
}

/// One page of a REST list: its status, `X-Total-Count` and `Date` headers and body.
pub struct RestPage {
    pub status: u16,
    pub total_count: Option<String>,
    pub date: Option<String>,
    pub body: String,
}

/// Fetches a page the offline checks' download asks for.
pub async fn fetch_rest_page(request: &HttpRequest) -> Result<RestPage, NoAnswer> {
    let (status, headers, body) = fetch(request).await?;
    Ok(RestPage {
        status,
        total_count: headers.get("X-Total-Count"),
        date: headers.get("Date"),
        body,
    })
}

/// The time-out covers the whole exchange, the body included: one `AbortSignal.timeout` aborts
/// the fetch while it waits for the headers and the body read after them.
async fn fetch(request: &HttpRequest) -> Result<(u16, gloo_net::http::Headers, String), NoAnswer> {
    let signal = AbortSignal::timeout_with_u32(timeout_ms(request));
    let failed = |signal: &AbortSignal| {
        if signal.aborted() {
            NoAnswer::Timeout
        } else {
            NoAnswer::Network
        }
    };
    let url = request.full_url();
    let builder = match request.method {
        Method::Get => RequestBuilder::new(&url).method(gloo_net::http::Method::GET),
        Method::Post => RequestBuilder::new(&url)
            .method(gloo_net::http::Method::POST)
            .header("Content-Type", koha::FORM_CONTENT_TYPE),
    };
    let mut builder = builder
        .cache(RequestCache::NoStore)
        .redirect(RequestRedirect::Manual)
        .credentials(if request.include_cookies {
            RequestCredentials::Include
        } else {
            RequestCredentials::Omit
        })
        .abort_signal(Some(&signal));
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    let built: Result<Request, _> = match request.body() {
        Some(body) => builder.body(body),
        None => builder.build(),
    };
    let built = built.map_err(|_| NoAnswer::Network)?;
    let response = built.send().await.map_err(|_| failed(&signal))?;
    // With `redirect: manual` a redirect arrives as an opaque response with status 0.
    let status = match response.status() {
        0 if response.type_() == web_sys::ResponseType::Opaqueredirect => 302,
        other => other,
    };
    let headers = response.headers();
    let body = response.text().await.map_err(|_| failed(&signal))?;
    Ok((status, headers, body))
}
