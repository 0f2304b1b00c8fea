//! `/api/approvals/…`: the approvals agent runs wait for, and the decisions.
//!
//! `POST /api/approvals/{id}/approve|decline` takes either the push button's `?token=`
//! (no API key: the token is the proof, single-use, bound to the approval and the
//! decision) or a bearer key with scope `write`. The first decision wins; a later one is
//! `409` saying what was decided and when; a wrong token is `403`. A token is never
//! logged: the routes log the approval id and the outcome only.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rez_core::agent::approval::{Approval, ApprovalFilter, ApprovalState, Decision, Proof};
use rez_core::auth::Scope;
use rez_core::id::{ApprovalId, RunId};
use rez_core::ports::Page;
use rez_core::time::rfc3339;
use serde_json::json;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::input::Query;
use crate::Services;
use crate::agent::approvals::{DecideError, decide, token_hash};
use crate::keys::AuthError;

fn parse_id(raw: &str) -> ApiResult<ApprovalId> {
    ApprovalId::parse(raw).map_err(|e| ApiError::bad_request("invalid_id", e.message))
}

fn store(s: &Services) -> ApiResult<&std::sync::Arc<dyn rez_core::agent::approval::ApprovalStore>> {
    s.agent
        .as_ref()
        .and_then(|a| a.approvals.as_ref())
        .ok_or_else(|| ApiError::unavailable("this deployment keeps no approvals").with_code("approvals_off"))
}

/// List approvals, newest first.
#[utoipa::path(get, path = "/api/approvals", tag = "agent",
    params(("state" = Option<ApprovalState>, Query), ("run_id" = Option<String>, Query),
        ("limit" = Option<usize>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, description = "`{items: [approval], next_cursor?}`", body = Object), (status = 400, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(State(s): State<Services>, RawQuery(raw): RawQuery) -> ApiResult<Json<Page<Approval>>> {
    let q = Query::parse(raw.as_deref(), &["state", "run_id", "limit", "cursor"])?;
    let filter = ApprovalFilter {
        state: q.parse_with("state", "pending, approved, declined or expired", ApprovalState::parse)?,
        run_id: q.parse_with("run_id", "a run id", |v| RunId::parse(v).ok())?,
        limit: q.limit()?,
        cursor: q.get("cursor").map(str::to_owned),
    };
    Ok(Json(store(&s)?.list_approvals(&filter).await?))
}

#[utoipa::path(get, path = "/api/approvals/{id}", tag = "agent", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn show(State(s): State<Services>, Path(id): Path<String>) -> ApiResult<Json<Approval>> {
    let id = parse_id(&id)?;
    let a = store(&s)?
        .get_approval(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("approval {id} was not found")))?;
    Ok(Json(a))
}

/// Approve: the stored call runs with its stored idempotency key and the run goes on.
#[utoipa::path(post, path = "/api/approvals/{id}/approve", tag = "agent",
    params(("id" = String, Path), ("token" = Option<String>, Query, description = "the push button's token; without it a bearer key with scope write")),
    responses((status = 200, description = "The approval, decided", body = Object), (status = 401, body = ErrorBody),
        (status = 403, description = "A token that is not this approval's", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "Already decided or expired", body = ErrorBody)))]
pub async fn approve(
    State(s): State<Services>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    answer(s, id, raw, headers, Decision::Approve).await
}

/// Decline: the model is told the user said no, and the run finishes accordingly.
#[utoipa::path(post, path = "/api/approvals/{id}/decline", tag = "agent",
    params(("id" = String, Path), ("token" = Option<String>, Query)),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn decline(
    State(s): State<Services>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    answer(s, id, raw, headers, Decision::Decline).await
}

async fn answer(
    s: Services,
    id: String,
    raw: Option<String>,
    headers: HeaderMap,
    decision: Decision,
) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    let q = Query::parse(raw.as_deref(), &["token"])?;
    let proof = match q.get("token") {
        Some(token) if !token.is_empty() => Proof::TokenHash(token_hash(token)),
        _ => {
            let token = crate::keys::bearer_token(&headers).ok_or_else(|| {
                ApiError::unauthorized(
                    "answer with the push button's link (`?token=`) or an API key: `Authorization: Bearer <key>`",
                )
            })?;
            let principal = match s.keys.verify(token).await {
                Ok(p) => p,
                Err(AuthError::Store(e)) => return Err(e.into()),
                Err(AuthError::Revoked) => return Err(ApiError::unauthorized("this API key has been revoked")),
                Err(_) => return Err(ApiError::unauthorized("the API key is not valid")),
            };
            if !principal.scope.allows(Scope::Write) {
                return Err(ApiError::forbidden(format!(
                    "this key has scope `{}`; deciding an approval needs `write`",
                    principal.scope
                )));
            }
            Proof::Principal(principal.key_id.map_or_else(|| "admin".to_owned(), |k| format!("key:{k}")))
        }
    };
    match decide(&s, &id, decision, proof).await {
        Ok(a) => {
            tracing::info!(approval_id = %id, run_id = %a.run_id, decision = %decision, "approval answered");
            Ok((StatusCode::OK, Json(a)).into_response())
        }
        Err(DecideError::NotFound) => Err(ApiError::not_found(format!("approval {id} was not found"))),
        Err(DecideError::BadToken) => {
            tracing::info!(approval_id = %id, decision = %decision, "approval answer refused: wrong token");
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "invalid_token",
                "this link is not valid for this approval and answer",
            ))
        }
        Err(DecideError::Already(a)) => {
            let when = a.decided_at.map(|t| rfc3339(&t)).unwrap_or_default();
            let message = match a.state {
                ApprovalState::Expired => format!("approval {id} expired at {when}; nothing was done"),
                state => format!("approval {id} was already answered: {state} at {when}"),
            };
            Err(ApiError::new(StatusCode::CONFLICT, "already_decided", message)
                .with_details(json!({"state": a.state, "decided_at": a.decided_at.map(|t| rfc3339(&t))})))
        }
        Err(DecideError::Off) => {
            Err(ApiError::unavailable("this deployment keeps no approvals").with_code("approvals_off"))
        }
        Err(DecideError::Store(e)) => Err(e.into()),
        Err(e @ DecideError::Continue(_)) => {
            tracing::error!(approval_id = %id, error = %e, "the decision is recorded but the run could not be resumed");
            Err(ApiError::unavailable(
                "the answer is recorded, but the run could not be resumed now; it resumes at the approval's deadline",
            ))
        }
    }
}
