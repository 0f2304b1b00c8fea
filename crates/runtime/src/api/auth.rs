//! Bearer-key authentication and scope checks for every route but health. Reads need
//! `read`, anything that changes state needs `write`.

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rez_core::auth::Scope;

use super::error::ApiError;
use crate::Services;
use crate::keys::AuthError;

pub async fn require_key(State(services): State<Services>, mut req: Request, next: Next) -> Response {
    let token = crate::keys::bearer_token(req.headers());
    let Some(token) = token else {
        return ApiError::unauthorized("an API key is required: `Authorization: Bearer <key>`").into_response();
    };
    let principal = match services.keys.verify(token).await {
        Ok(p) => p,
        Err(AuthError::Store(e)) => return ApiError::from(e).into_response(),
        Err(AuthError::Revoked) => return ApiError::unauthorized("this API key has been revoked").into_response(),
        Err(_) => return ApiError::unauthorized("the API key is not valid").into_response(),
    };
    let required =
        if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) { Scope::Read } else { Scope::Write };
    if !principal.scope.allows(required) {
        return ApiError::forbidden(format!(
            "this key has scope `{}`; this request needs `{required}`",
            principal.scope
        ))
        .into_response();
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}
