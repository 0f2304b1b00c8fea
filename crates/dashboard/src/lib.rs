//! The browser dashboard of `rez serve`: server-rendered HTML over the same [`Services`]
//! the JSON API uses, signed-in with an API key.
//!
//! Every page is plain HTML and forms (post, then redirect), so it works without
//! JavaScript; the one small script only adds to that (times in the viewer's zone, a
//! schedule preview as it is typed, a chat page that looks again while its run works).
//! Nothing is loaded from another origin and the Content-Security-Policy allows no
//! inline script or style.

mod assets;
mod chart;
mod guard;
mod hourly_cache;
mod layout;
mod pages;
mod secret_file;
pub mod session;
mod time;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use rez_runtime::Services;
use sha2::{Digest, Sha256};

pub use secret_file::{SecretFileError, load_or_create_secret};
pub use session::SessionSecret;

/// How the dashboard is set up.
#[derive(Clone, Debug)]
pub struct Config {
    /// Signs sessions and CSRF tokens.
    pub secret: SessionSecret,
    /// The `REZ_API_KEY` admin key, if one is configured (it may sign in too).
    pub admin_key: Option<String>,
    /// Mark the cookie `Secure` (the public URL is https). A request that arrived with
    /// `X-Forwarded-Proto: https` gets a `Secure` cookie either way.
    pub secure_cookies: bool,
    /// The courses page's data.
    pub courses: Courses,
}

/// The golf courses, and where to see whether credentials are stored for them.
#[derive(Clone, Default)]
pub struct Courses {
    pub list: Vec<rez_runtime::tools::CourseInfo>,
    /// Lists secret names (never values); `None`: the page does not say.
    pub secrets: Option<std::sync::Arc<dyn rez_core::ports::SecretStore>>,
}

impl std::fmt::Debug for Courses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Courses").field("list", &self.list.len()).field("secrets", &self.secrets.is_some()).finish()
    }
}

impl Config {
    /// `rez serve`'s setup: the secret kept in `data_dir/dashboard.key` (made on first
    /// start), `Secure` cookies when the public URL (`REZ_PUBLIC_URL`) is https.
    pub fn in_data_dir(
        data_dir: &std::path::Path,
        admin_key: Option<String>,
        public_url: Option<&str>,
    ) -> Result<Self, SecretFileError> {
        Ok(Self {
            secret: load_or_create_secret(&data_dir.join(SECRET_FILE))?,
            admin_key,
            secure_cookies: public_url.is_some_and(|u| u.trim().to_ascii_lowercase().starts_with("https://")),
            courses: Courses::default(),
        })
    }

    /// The same, showing `courses` on the courses page.
    pub fn with_courses(mut self, courses: Courses) -> Self {
        self.courses = courses;
        self
    }
}

/// The session secret's file in the data directory.
pub const SECRET_FILE: &str = "dashboard.key";

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct Dash {
    pub services: Services,
    pub secret: SessionSecret,
    pub admin_hash: Option<[u8; 32]>,
    pub secure_cookies: bool,
    pub hourly: hourly_cache::HourlyCache,
    pub courses: std::sync::Arc<Courses>,
}

/// Largest accepted form body.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// The dashboard's routes, to be merged with the API's at `/`. It has no fallback of its
/// own (the API's answers unknown paths).
pub fn router(services: Services, config: Config) -> Router {
    let dash = Dash {
        services,
        secret: config.secret,
        admin_hash: config.admin_key.filter(|k| !k.is_empty()).map(|k| Sha256::digest(k.as_bytes()).into()),
        secure_cookies: config.secure_cookies,
        hourly: hourly_cache::HourlyCache::default(),
        courses: std::sync::Arc::new(config.courses),
    };
    dash.hourly.warm(dash.services.messages.clone(), dash.services.clock.now());
    let signed_in = Router::new()
        .route("/", get(pages::overview::show))
        .route("/messages", get(pages::messages::list))
        .route("/messages/{id}", get(pages::messages::show))
        .route("/messages/{id}/retry", post(pages::messages::retry))
        .route("/schedules", get(pages::schedules::list).post(pages::schedules::create))
        .route("/schedules/new", get(pages::schedules::new_form))
        .route("/schedules/preview", get(pages::schedules::preview_fragment))
        .route("/schedules/{id}", get(pages::schedules::show))
        .route("/schedules/{id}/edit", post(pages::schedules::update))
        .route("/schedules/{id}/pause", post(pages::schedules::pause))
        .route("/schedules/{id}/resume", post(pages::schedules::resume))
        .route("/schedules/{id}/run", post(pages::schedules::run))
        .route("/schedules/{id}/delete", post(pages::schedules::delete))
        .route("/dead-letters", get(pages::dead_letters::list))
        .route("/dead-letters/redrive", post(pages::dead_letters::redrive))
        .route("/dead-letters/{id}/delete", post(pages::dead_letters::delete))
        .route("/notifications", get(pages::notifications::list))
        .route("/keys", get(pages::keys::list).post(pages::keys::create))
        .route("/keys/{id}/revoke", post(pages::keys::revoke))
        .route("/agent/runs", get(pages::agent::list))
        .route("/agent/runs/{id}", get(pages::agent::show))
        .route("/agent/chat", get(pages::chat::show).post(pages::chat::send))
        .route("/approvals", get(pages::approvals::list))
        .route("/courses", get(pages::courses::list))
        .route("/approvals/{id}/approve", post(pages::approvals::approve))
        .route("/approvals/{id}/decline", post(pages::approvals::decline))
        .route("/signout", post(pages::signin::sign_out))
        .route_layer(middleware::from_fn_with_state(dash.clone(), guard::require_session));
    Router::new()
        .route("/signin", get(pages::signin::form).post(pages::signin::sign_in))
        .route_layer(middleware::from_fn(guard::refuse_cross_site))
        .merge(signed_in)
        .route("/assets/{name}", get(assets::serve))
        .layer(middleware::from_fn(guard::security_headers))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .with_state(dash)
}
