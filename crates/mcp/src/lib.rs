//! `rez-mcp`: rez_agent as an MCP server, on rmcp (the official Rust SDK). The tools are
//! the runtime's tool registry ([`rez_runtime::tools`]); this crate only speaks the
//! protocol: [`server`] maps tools, the course resource and the prompts to MCP, [`http`]
//! serves them at `/mcp` on the `rez serve` port (Streamable HTTP, DNS-rebinding
//! protection, bearer-key auth, RFC 9728 metadata) and [`stdio`] serves them to local
//! clients (`rez mcp`).

pub mod http;
pub mod prompts;
pub mod server;
pub mod session;
pub mod stdio;

pub use http::{Auth, HttpConfig, default_allowed_hosts, router};
pub use server::RezMcp;
pub use stdio::serve_stdio;
