//! Sign in with an API key (the key is checked, then only its id goes into the signed
//! cookie) and sign out.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use rez_core::auth::Scope;
use rez_runtime::keys::AuthError;
use serde::Deserialize;

use crate::Dash;
use crate::layout;
use crate::session::{self, Subject};

fn form_markup(error: Option<&str>) -> Markup {
    html! {
        @if let Some(e) = error { p.error role="alert" #signin-error { (e) } }
        form.stack method="post" action="/signin" {
            label for="key" { "API key" }
            input #key type="password" name="key" autocomplete="current-password" required
                aria-describedby=[error.map(|_| "signin-error")];
            button type="submit" { "Sign in" }
        }
        p.muted { "Use a key made with " code { "rez keys create" } " or the " code { "REZ_API_KEY" } " admin key." }
    }
}

pub async fn form() -> Response {
    layout::bare("Sign in to rez", form_markup(None)).into_response()
}

#[derive(Deserialize)]
pub struct SignIn {
    key: String,
}

fn refused(message: &str) -> Response {
    (StatusCode::UNAUTHORIZED, layout::bare("Sign in to rez", form_markup(Some(message)))).into_response()
}

fn secure(dash: &Dash, headers: &HeaderMap) -> bool {
    dash.secure_cookies
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

fn cookie(value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let s = format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        session::COOKIE,
        if secure { "; Secure" } else { "" }
    );
    // The value is base64url and digits and ids: always a valid header value.
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub async fn sign_in(State(dash): State<Dash>, headers: HeaderMap, Form(f): Form<SignIn>) -> Response {
    let principal = match dash.services.keys.verify(f.key.trim()).await {
        Ok(p) => p,
        Err(AuthError::Store(e)) => {
            tracing::error!(error = %e, "reading an API key at sign-in");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                layout::bare("Unavailable", "The store did not answer; try again."),
            )
                .into_response();
        }
        Err(AuthError::Revoked) => return refused("This API key has been revoked."),
        Err(_) => return refused("That is not a valid API key."),
    };
    // The verifier caches keys for a few seconds; a revocation must hold at once here.
    if let Some(id) = &principal.key_id {
        match dash.services.keys.store().get_key(id).await {
            Ok(Some(r)) if r.revoked_date.is_none() => {}
            Ok(_) => return refused("This API key has been revoked."),
            Err(e) => {
                tracing::error!(error = %e, "reading an API key at sign-in");
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    layout::bare("Unavailable", "The store did not answer; try again."),
                )
                    .into_response();
            }
        }
    }
    if principal.scope == Scope::Mcp {
        return refused(
            "This key has scope mcp, which is for MCP clients only; sign in with a read, write or admin key.",
        );
    }
    let subject = match principal.key_id {
        Some(id) => Subject::Key(id),
        None => Subject::Admin,
    };
    let expires = dash.services.clock.now().timestamp() + session::LIFETIME_SECS;
    let hash = if subject == Subject::Admin { dash.admin_hash.as_ref() } else { None };
    let value = session::issue(&dash.secret, &subject, expires, hash);
    match &subject {
        Subject::Key(id) => tracing::info!(key_id = %id, "dashboard sign-in"),
        Subject::Admin => tracing::info!("dashboard sign-in with the admin key"),
    }
    let mut res = Redirect::to("/").into_response();
    res.headers_mut().insert(header::SET_COOKIE, cookie(&value, session::LIFETIME_SECS, secure(&dash, &headers)));
    res
}

pub async fn sign_out(State(dash): State<Dash>, headers: HeaderMap) -> Response {
    let mut res = Redirect::to("/signin").into_response();
    res.headers_mut().insert(header::SET_COOKIE, cookie("", 0, secure(&dash, &headers)));
    res
}
