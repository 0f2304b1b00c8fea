//! The MCP server handler: what rez_agent offers an MCP client, over any transport.
//! Tools are the runtime's [`ToolRegistry`] translated to MCP (a failed tool is a result
//! with `isError`, never a protocol error); the course list is a resource; the prompts
//! are canned starting points (see [`crate::prompts`]).
//!
//! The handler keeps no per-session state: any request can be served by any instance
//! (the Streamable HTTP sessions rmcp keeps are only a convenience for 2025 clients, see
//! [`crate::http`]).

use std::sync::Arc;

use rez_runtime::keys::Principal;
use rez_runtime::tools::{CallContext, ToolError, ToolRegistry, ToolSpec};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, CustomRequest, CustomResult,
    GetPromptRequestParams, GetPromptResponse, Implementation, ListPromptsResult, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Map, Value};

use crate::prompts;

/// The URI of the course-list resource.
pub const COURSES_URI: &str = "rez://courses";

const INSTRUCTIONS: &str = "rez_agent acts on the user's behalf: push notifications to their phone, NOAA weather \
for golf courses, tee-time search and booking on the user's cps.golf accounts, and schedules that run these \
later. Every action is recorded as a message; tools report its id, and get_message_status looks it up. Book \
only what the user asked for.";

/// The rez_agent MCP server. Cheap to clone (one per HTTP request or session).
#[derive(Clone)]
pub struct RezMcp {
    registry: ToolRegistry,
    tools: Arc<Vec<Tool>>,
}

fn to_tool(spec: &ToolSpec) -> Tool {
    Tool::new(spec.name, spec.description, Arc::new(spec.input_schema.clone()))
        .with_title(spec.title)
        .with_raw_output_schema(Arc::new(spec.output_schema.clone()))
        .with_annotations(
            ToolAnnotations::with_title(spec.title)
                .read_only(spec.read_only)
                .destructive(spec.destructive)
                .idempotent(spec.idempotent)
                .open_world(spec.open_world),
        )
}

impl RezMcp {
    pub fn new(registry: ToolRegistry) -> Self {
        let tools = registry.specs().iter().map(to_tool).collect();
        Self { registry, tools: Arc::new(tools) }
    }

    pub fn registry(&self) -> &ToolRegistry {
        &self.registry
    }

    fn courses_json(&self) -> String {
        serde_json::to_string_pretty(&serde_json::json!({"courses": self.registry.courses()}))
            .unwrap_or_else(|_| "{\"courses\": []}".into())
    }
}

/// Client request methods of MCP. A request naming one of them reaches
/// `on_custom_request` only when its params do not fit the method.
const KNOWN_METHODS: [&str; 14] = [
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "server/discover",
];

/// The key that authenticated the HTTP request, if any (stdio and auth-less runs have none).
fn principal(context: &RequestContext<RoleServer>) -> Option<&Principal> {
    context.extensions.get::<axum::http::request::Parts>()?.extensions.get::<Principal>()
}

fn key_id(principal: &Principal) -> String {
    principal.key_id.as_ref().map(|k| k.to_string()).unwrap_or_else(|| "admin-env-key".into())
}

impl ServerHandler for RezMcp {
    #[allow(deprecated, reason = "logging/setLevel is deprecated for 2026-07-28 but part of 2025-11-25")]
    fn get_info(&self) -> ServerConfig {
        let capabilities =
            ServerCapabilities::builder().enable_logging().enable_prompts().enable_resources().enable_tools().build();
        ServerConfig::new(capabilities)
            .with_server_info(
                Implementation::new("rez_agent", env!("CARGO_PKG_VERSION"))
                    .with_title("rez_agent")
                    .with_description("Automation that acts on your behalf: notifications, weather, golf, schedules"),
            )
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools.as_ref().clone()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools.iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let ctx = match principal(&context) {
            Some(p) => {
                tracing::debug!(tool = %request.name, key_id = %key_id(p), "tool call over MCP");
                CallContext::mcp_with_scope(p.scope)
            }
            None => CallContext::mcp(),
        };
        let outcome = self.registry.call(&request.name, request.arguments, ctx).await;
        let result = match outcome {
            Ok(r) => r,
            // The spec's answer to an unknown tool is a protocol error (invalid params).
            Err(ToolError::UnknownTool(name)) => {
                return Err(ErrorData::invalid_params(
                    format!("unknown tool `{name}`; tools/list shows the available tools"),
                    None,
                ));
            }
        };
        let content = vec![ContentBlock::text(result.text)];
        let mut out = if result.is_error { CallToolResult::error(content) } else { CallToolResult::success(content) };
        out.structured_content = result.structured;
        Ok(out.into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let courses = Resource::new(COURSES_URI, "courses")
            .with_title("Golf courses")
            .with_description("The golf courses rez knows (id, name, address, location, time zone), as JSON.")
            .with_mime_type("application/json");
        Ok(ListResourcesResult::with_all_items(vec![courses]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        if request.uri != COURSES_URI {
            return Err(ErrorData::resource_not_found(
                format!("no resource {}; resources/list shows the available ones", truncate(&request.uri)),
                Some(serde_json::json!({"uri": request.uri})),
            ));
        }
        let contents = ResourceContents::TextResourceContents {
            uri: COURSES_URI.into(),
            mime_type: Some("application/json".into()),
            text: self.courses_json(),
            meta: None,
        };
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(ListPromptsResult::with_all_items(prompts::list()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let args: Map<String, Value> = request.arguments.unwrap_or_default();
        prompts::get(&request.name, &args, self.registry.courses()).map(Into::into)
    }

    /// An unknown method is `-32601`; a known one whose params did not parse, `-32602`.
    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        let method = truncate(&request.method);
        if KNOWN_METHODS.contains(&method.as_str()) {
            Err(ErrorData::invalid_params(format!("invalid params for `{method}`"), None))
        } else {
            Err(ErrorData::new(rmcp::model::ErrorCode::METHOD_NOT_FOUND, format!("method not found: `{method}`"), None))
        }
    }

    /// rez_agent sends no log notifications; the level is accepted and has no effect.
    #[allow(deprecated, reason = "logging/setLevel is deprecated for 2026-07-28 but part of 2025-11-25")]
    async fn set_level(
        &self,
        _request: rmcp::model::SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        Ok(())
    }
}

pub(crate) fn truncate(s: &str) -> String {
    s.chars().take(200).collect()
}
