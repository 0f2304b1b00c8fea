//! The Lambda entry points, one per [`Function`]. All of them run the same core and
//! runtime as `rez serve`; only the transport differs (API Gateway events, SQS event
//! batches, EventBridge scheduled events).

pub mod http;
pub mod sqs;
pub mod sweeper;

use std::sync::Arc;

use rez_runtime::agent::Agent;
use rez_runtime::agent::worker::AgentWorker;
use rez_runtime::scheduling::consumer::ScheduleConsumer;
use rez_runtime::workers::Handler;
use rez_runtime::workers::notify::NotificationProcessor;
use rez_runtime::workers::web_action::WebActionWorker;

use crate::settings::Function;
use crate::wiring::App;

/// Run `function` against the Lambda Runtime API until the environment is shut down.
pub async fn run(function: Function, app: App) -> Result<(), lambda_runtime::Error> {
    match function {
        Function::Api => http::run_api(app).await,
        Function::Mcp => http::run_mcp(app).await,
        Function::Processor | Function::WebAction | Function::Scheduler | Function::Agent => {
            let handler = queue_handler(function, &app).await?;
            sqs::run(function, app, handler).await
        }
        Function::Sweeper => sweeper::run(app).await,
    }
}

/// The message handler of a queue-consuming function.
pub async fn queue_handler(function: Function, app: &App) -> anyhow::Result<Arc<dyn Handler>> {
    let s = &app.services;
    Ok(match function {
        Function::Processor => {
            Arc::new(NotificationProcessor::new(s.inbox.clone(), s.notifier.clone(), s.metrics.clone()))
        }
        Function::WebAction => Arc::new(WebActionWorker::new(app.web_actions()?, s.results.clone(), s.clone())),
        Function::Scheduler => Arc::new(ScheduleConsumer::new(s.clone())),
        Function::Agent => {
            let agent = Agent::new(s.clone(), app.tools(), app.agent_model().await?);
            Arc::new(AgentWorker::new(agent))
        }
        other => anyhow::bail!("the {} function does not consume a queue", other.as_str()),
    })
}
