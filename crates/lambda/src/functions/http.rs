//! The `api` and `mcp` functions: the same axum routers `rez serve` mounts, behind API
//! Gateway through `lambda_http`. MCP runs stateless with JSON responses (a Lambda
//! response is buffered, so long-lived SSE streams are not offered).
//!
//! The api function also serves the dashboard at `/` when the deployment has an admin
//! key: every instance derives the same session secret from it (instances share no file),
//! and its cookies are `Secure` (API Gateway is https only).

use crate::wiring::App;

/// The API, and the dashboard if an admin key seeds its sessions.
pub fn api_router(app: &App) -> axum::Router {
    let api = rez_runtime::api::router(app.services.clone());
    match &app.admin_key {
        Some(key) => {
            let config = rez_dashboard::Config {
                secret: rez_dashboard::SessionSecret::derived_from_admin_key(key),
                admin_key: Some(key.clone()),
                secure_cookies: true,
                // Listing secrets would need rights the api function does not hold.
                courses: rez_dashboard::Courses { list: app.course_infos(), secrets: None },
            };
            api.merge(rez_dashboard::router(app.services.clone(), config))
        }
        None => {
            tracing::info!("no admin key: the dashboard is not served (its sessions are derived from that key)");
            api
        }
    }
}

pub async fn run_api(app: App) -> Result<(), lambda_runtime::Error> {
    lambda_http::run(api_router(&app)).await
}

pub fn mcp_router(app: &App) -> axum::Router {
    let hosts = app
        .settings
        .mcp_allowed_hosts
        .clone()
        .unwrap_or_else(|| vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()]);
    let mut config = rez_mcp::HttpConfig::new(rez_mcp::Auth::Keys, hosts, tokio_util::sync::CancellationToken::new());
    config.stateless = true;
    rez_mcp::router(app.tools(), config)
}

pub async fn run_mcp(app: App) -> Result<(), lambda_runtime::Error> {
    lambda_http::run(mcp_router(&app)).await
}
