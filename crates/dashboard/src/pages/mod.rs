//! One module per page; this file holds what they share: the error page and the
//! redirect after a post.

pub mod agent;
pub mod approvals;
pub mod chat;
pub mod courses;
pub mod dead_letters;
pub mod keys;
pub mod messages;
pub mod notifications;
pub mod overview;
pub mod schedules;
pub mod signin;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use rez_core::ports::StoreError;
use rez_runtime::scheduling::ScheduleError;

use crate::layout;

/// Why a page could not be shown or an action not taken, as an HTML page with its status.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    message: String,
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::not_found(format!("{what} was not found.")),
            StoreError::IllegalTransition(t) => Self::new(StatusCode::CONFLICT, t.to_string()),
            StoreError::Conflict(m) => Self::new(StatusCode::CONFLICT, m),
            StoreError::InvalidCursor => {
                Self::bad_request("That page link is not valid any more; start from the first page.")
            }
            StoreError::Unavailable(m) => {
                tracing::error!(error = %m, "store unavailable for a dashboard page");
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "The store is unavailable; try again shortly.")
            }
            StoreError::Corrupt(m) => {
                tracing::error!(error = %m, "corrupt record on a dashboard page");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "A stored record could not be read.")
            }
        }
    }
}

impl From<ScheduleError> for PageError {
    fn from(e: ScheduleError) -> Self {
        match e {
            ScheduleError::Invalid(v) => Self::bad_request(format!("{}: {}", v.field, v.message)),
            ScheduleError::Unprocessable(m) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, m),
            e @ ScheduleError::TooMany { .. } => Self::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
            ScheduleError::Store(s) => s.into(),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let body = html! {
            p.error role="alert" { (self.message) }
            p { a href="/" { "Back to the overview" } }
        };
        (self.status, layout::bare(title, body)).into_response()
    }
}

pub type PageResult<T = Response> = Result<T, PageError>;

/// After a successful post: back to `to`, with a notice named by `done`.
pub fn done(to: &str, done: &str) -> Response {
    let sep = if to.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{to}{sep}done={done}")).into_response()
}

/// Query-string encoding of one value.
pub fn enc(v: &str) -> String {
    serde_urlencoded::to_string([("", v)]).map(|s| s[1..].to_owned()).unwrap_or_default()
}
