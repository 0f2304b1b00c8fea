//! The OpenAPI 3.1 document, generated from the handlers' annotations (utoipa), so it
//! cannot drift from the code.

use std::sync::OnceLock;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "rez_agent API", description = "Messages, queues, dead letters, notifications, schedules and agent runs of rez_agent."),
    paths(
        super::messages::create, super::messages::list, super::messages::show, super::messages::retry,
        super::dlq::list, super::dlq::redrive, super::dlq::remove,
        super::notifications::list,
        super::results::list,
        super::schedules::create, super::schedules::list, super::schedules::show, super::schedules::update,
        super::schedules::remove, super::schedules::pause, super::schedules::resume, super::schedules::run,
        super::schedules::preview,
        super::agent::create, super::agent::list, super::agent::show, super::agent::cancel, super::agent::chat,
        super::agent::session, super::agent::usage_report,
        super::approvals::list, super::approvals::show, super::approvals::approve, super::approvals::decline,
        super::ops::health, super::ops::metrics_json, super::ops::metrics_prometheus,
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// The document as JSON, built once.
pub fn document_json() -> String {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| ApiDoc::openapi().to_json().unwrap_or_else(|_| "{}".into())).clone()
}
