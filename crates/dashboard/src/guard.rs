//! What stands in front of every page: the security headers, the refusal of cross-site
//! posts, and the session check (a signed, unexpired cookie whose key still exists, is
//! not revoked and has the scope the request needs; on a post, the form's CSRF token).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use rez_core::auth::Scope;

use crate::Dash;
use crate::layout;
use crate::session::{self, Session, Subject};

/// The signed-in viewer of a page, put in the request's extensions by [`require_session`].
#[derive(Debug, Clone)]
pub struct Viewer {
    pub scope: Scope,
    /// The signed-in key's name (`REZ_API_KEY` for the admin key).
    pub name: String,
    pub csrf: String,
}

impl Viewer {
    /// May this viewer change things (retry, redrive, schedules)?
    pub fn can_write(&self) -> bool {
        self.scope.allows(Scope::Write)
    }

    /// May this viewer manage API keys?
    pub fn is_admin(&self) -> bool {
        self.scope.allows(Scope::Admin)
    }
}

/// The policy of every dashboard response: only this origin, no inline script or style,
/// no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// Whether a state-changing request comes from another site. Browsers say so in
/// `Sec-Fetch-Site`; without it, an `Origin` must name the host addressed (as the client
/// or a proxy in front, `X-Forwarded-Host`, saw it). A client that sends neither (curl)
/// is not a browser carrying someone's cookie by surprise; it still needs the CSRF token.
pub fn is_cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return !matches!(site.to_str(), Ok("same-origin" | "none"));
    }
    let Some(origin) = headers.get(header::ORIGIN) else { return false };
    let Ok(origin) = origin.to_str() else { return true };
    let Some((_, origin_host)) = origin.split_once("://") else { return true };
    let named = |h: header::HeaderName| headers.get(h).and_then(|v| v.to_str().ok()).is_some_and(|h| h == origin_host);
    !(named(header::HOST) || named(header::HeaderName::from_static("x-forwarded-host")))
}

fn forbidden(message: &str) -> Response {
    (StatusCode::FORBIDDEN, layout::bare("Refused", message)).into_response()
}

/// Cross-site posts are refused before anything else (the sign-in form's guard).
pub async fn refuse_cross_site(req: Request, next: Next) -> Response {
    if req.method() == Method::POST && is_cross_site(req.headers()) {
        return forbidden("This form was posted from another site.");
    }
    next.run(req).await
}

/// The cookie value of the session, if the request carries one.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(n, _)| *n == session::COOKIE)
        .map(|(_, v)| v)
}

/// Resolve the session to a viewer: the key must exist, not be revoked, and be at least
/// `read` (an `mcp` key is not a dashboard key). `None` sends the browser to sign in.
async fn viewer(dash: &Dash, session: &Session) -> Result<Option<Viewer>, Response> {
    let csrf = session::csrf_token(&dash.secret, session);
    match &session.subject {
        Subject::Admin => Ok(Some(Viewer { scope: Scope::Admin, name: "REZ_API_KEY".into(), csrf })),
        Subject::Key(id) => {
            let record = dash.services.keys.store().get_key(id).await.map_err(|e| {
                tracing::error!(error = %e, "reading an API key for a dashboard session");
                (StatusCode::SERVICE_UNAVAILABLE, layout::bare("Unavailable", "The store did not answer; try again."))
                    .into_response()
            })?;
            Ok(record.filter(|r| r.revoked_date.is_none() && r.scope != Scope::Mcp).map(|r| Viewer {
                scope: r.scope,
                name: r.name,
                csrf,
            }))
        }
    }
}

pub async fn require_session(State(dash): State<Dash>, req: Request, next: Next) -> Response {
    let now = dash.services.clock.now().timestamp();
    let session =
        session_cookie(req.headers()).and_then(|c| session::verify(&dash.secret, c, now, dash.admin_hash.as_ref()));
    let viewer = match &session {
        Some(s) => match viewer(&dash, s).await {
            Ok(v) => v,
            Err(r) => return r,
        },
        None => None,
    };
    let (Some(session), Some(viewer)) = (session, viewer) else {
        if req.method() == Method::GET {
            return Redirect::to("/signin").into_response();
        }
        return (StatusCode::UNAUTHORIZED, layout::bare("Signed out", "Sign in again to do this.")).into_response();
    };
    if req.method() != Method::POST {
        let mut req = req;
        req.extensions_mut().insert(viewer);
        return next.run(req).await;
    }
    if is_cross_site(req.headers()) {
        return forbidden("This form was posted from another site.");
    }
    let path = req.uri().path();
    let needed = if path == "/signout" {
        Scope::Read
    } else if path.starts_with("/keys") {
        Scope::Admin
    } else {
        Scope::Write
    };
    if !viewer.scope.allows(needed) {
        return forbidden(&format!("Your key has scope {}; this needs {needed}.", viewer.scope));
    }
    // The CSRF token is a field of the form: read the body, check, hand it on.
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, crate::MAX_FORM_BYTES).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, layout::bare("Too large", "The form is too large.")).into_response();
    };
    let token = form_field(&bytes, "csrf");
    if !token.is_some_and(|t| session::csrf_matches(&dash.secret, &session, &t)) {
        return forbidden("The form's security token is missing or stale. Reload the page and try again.");
    }
    let mut req = Request::from_parts(parts, Body::from(bytes));
    req.extensions_mut().insert(viewer);
    next.run(req).await
}

/// The first value of `name` in a urlencoded form.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn cross_site_posts_are_told_apart() {
        assert!(!is_cross_site(&headers(&[
            ("host", "a:1"),
            ("origin", "http://a:1"),
            ("sec-fetch-site", "same-origin")
        ])));
        assert!(!is_cross_site(&headers(&[("host", "a:1")])), "a client that sends neither (curl)");
        assert!(is_cross_site(&headers(&[("host", "a:1"), ("sec-fetch-site", "cross-site")])));
        assert!(is_cross_site(&headers(&[("host", "a:1"), ("sec-fetch-site", "same-site")])));
        assert!(is_cross_site(&headers(&[("host", "a:1"), ("origin", "http://evil:1")])));
        assert!(is_cross_site(&headers(&[("host", "a:1"), ("origin", "null")])));
        assert!(
            !is_cross_site(&headers(&[
                ("host", "127.0.0.1:8080"),
                ("x-forwarded-host", "rez.example"),
                ("origin", "https://rez.example")
            ])),
            "behind a proxy"
        );
        assert!(
            !is_cross_site(&headers(&[
                ("host", "127.0.0.1:8080"),
                ("origin", "https://rez.example"),
                ("sec-fetch-site", "same-origin")
            ])),
            "the browser's own word wins"
        );
    }

    #[test]
    fn the_csrf_field_is_read_from_a_form() {
        assert_eq!(form_field(b"a=1&csrf=x%2By", "csrf").as_deref(), Some("x+y"));
        assert_eq!(form_field(b"a=1", "csrf"), None);
    }
}
