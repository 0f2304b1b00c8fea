//! The `api` and `mcp` functions: the same axum routers `rez serve` mounts, behind API
//! Gateway through `lambda_http`. MCP runs stateless with JSON responses (a Lambda
//! response is buffered, so long-lived SSE streams are not offered).

use crate::wiring::App;

pub async fn run_api(app: App) -> Result<(), lambda_runtime::Error> {
    let router = rez_runtime::api::router(app.services.clone());
    lambda_http::run(router).await
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
