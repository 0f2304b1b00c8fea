//! MCP over stdio for local clients (Claude Desktop starts `rez mcp`): the same server as
//! over HTTP, with no authentication — the client runs it as the user, on the user's
//! data directory. stdout carries only the protocol; logs go to stderr.

use rez_runtime::tools::ToolRegistry;
use rmcp::ServiceExt;

use crate::server::RezMcp;

#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    #[error("the MCP session could not start: {0}")]
    Start(String),
    #[error("the MCP session ended with an error: {0}")]
    Run(String),
}

/// Serve MCP on stdin/stdout until the client closes the stream.
pub async fn serve_stdio(registry: ToolRegistry) -> Result<(), StdioError> {
    let running = RezMcp::new(registry)
        .serve(rmcp::transport::io::stdio_pipes())
        .await
        .map_err(|e| StdioError::Start(e.to_string()))?;
    tracing::info!("MCP session on stdio started");
    let reason = running.waiting().await.map_err(|e| StdioError::Run(e.to_string()))?;
    tracing::info!(?reason, "MCP session on stdio ended");
    Ok(())
}
