//! Which AWS actions each function performs, on which of the template's resources: the
//! table the template's role policies are checked against (a test below compares them
//! both ways, so a role can neither lack a call the code makes nor grant one it does
//! not). Resources are named as [`rez_aws::policies::resource_label`] writes them: the
//! logical id for `!Ref X` / `!GetAtt X.Arn`, `X/index/*` for a table's indexes, and
//! the `!Sub` text otherwise.
//!
//! Where each entry comes from (the adapters in `crates/aws`):
//! - a message submission (`MessageStore::submit`, and `Schedules::fire` for firings)
//!   is a DynamoDB transaction of puts on the messages and idempotency tables (IAM
//!   authorises each item as `dynamodb:PutItem`), a `GetItem` on the idempotency key
//!   when it is taken, `sns:Publish` to the message type's topic, then a read-modify-write
//!   of the message item (`GetItem`, conditional `PutItem`);
//! - every delivery step of a queue consumer is a read-modify-write of the message item,
//!   plus `DeleteMessage` / `ChangeMessageVisibility` on its queue and `SendMessage` to
//!   its DLQ when it dead-letters; the event source mapping itself receives, deletes and
//!   reads the queue's attributes;
//! - listings are `Query` on the tables' indexes (`by-all`, `by-status`, ...); results
//!   are a `Query` on the results table itself (partition key `message_id`);
//! - the API's `/api/health` pings with `DescribeTable` on the messages table; its DLQ
//!   routes receive, delete and release DLQ copies and send redriven messages to the
//!   source queues; `/api/metrics` reads queue depths (`GetQueueAttributes`);
//! - API keys are verified with a `GetItem` (keys are created by `rez-lambda create-key`
//!   with the operator's own credentials, never by a function);
//! - schedules are mirrored in EventBridge Scheduler (create, update, get, delete) with
//!   the scheduler execution role passed to the service;
//! - the agent function claims and advances runs on the agent-runs table (updates, and
//!   transactions of puts, updates and a `ConditionCheckItem` on the run), reserves and
//!   settles spend on the agent-budget table (transactions of a put and updates), runs the
//!   tools (what MCP's tools read and send), calls `bedrock:InvokeModel` on the one
//!   configured model and reads the provider-key secrets; the api function creates, lists,
//!   reads and cancels runs and reads budget reports;
//! - approvals: the agent function creates them (a transaction of two conditional puts),
//!   reads them (`GetItem`), records the ask and marks them expired (`UpdateItem`), pushes
//!   the ask itself (the ntfy token secret) and defers a paused run's message
//!   (`SendMessage` to its own queue, as for any deferral); the api function lists them
//!   (the by-all index), reads and decides them (`GetItem`, conditional `UpdateItem`) and
//!   submits the run's continuation (an agent-response message);
//! - every function writes to its own log group, and trace segments to X-Ray when the
//!   template's `TracingMode` is `Active` (Lambda does both, with the function's role;
//!   X-Ray has no resource-level permissions, hence its `*`). Metrics are embedded in log
//!   lines (`metrics.rs`), so no function calls CloudWatch.

use crate::settings::Function;

/// One allowed `(action, resource)` pair.
pub type Grant = (&'static str, &'static str);

const LOGS: [&str; 2] = ["logs:CreateLogStream", "logs:PutLogEvents"];
const XRAY: [&str; 2] = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"];

const ALL_TOPICS: [&str; 4] = ["WebActionsTopic", "NotificationsTopic", "ScheduleCreationTopic", "AgentResponseTopic"];
const ALL_QUEUES: [&str; 4] = ["WebActionsQueue", "NotificationsQueue", "ScheduleCreationQueue", "AgentResponseQueue"];
const ALL_DLQS: [&str; 4] = ["WebActionsDlq", "NotificationsDlq", "ScheduleCreationDlq", "AgentResponseDlq"];

const SCHEDULE_GROUP: &str =
    "arn:${AWS::Partition}:scheduler:${AWS::Region}:${AWS::AccountId}:schedule/${ScheduleGroup}/*";
const SCHEDULER_API: [&str; 4] =
    ["scheduler:CreateSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule", "scheduler:GetSchedule"];
/// What the SQS event source mapping needs on the queue it polls.
const EVENT_SOURCE: [&str; 4] =
    ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"];

const NTFY_TOKEN: &str =
    "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:rez/${Stage}/ntfy-token-??????";
const PROVIDER_KEYS: [&str; 2] = [
    "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:rez/${Stage}/agent/anthropic-api-key-??????",
    "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:rez/${Stage}/agent/openai-api-key-??????",
];
/// The configured model, directly or through its cross-region inference profiles.
const AGENT_MODEL: [&str; 2] = [
    "arn:${AWS::Partition}:bedrock:*::foundation-model/${AgentModelId}",
    "arn:${AWS::Partition}:bedrock:${AWS::Region}:${AWS::AccountId}:inference-profile/*.${AgentModelId}",
];
const GOLF_SECRETS: &str =
    "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:rez/${Stage}/golf/*";

/// The role (logical id in `deploy/template.yaml`) of `function`.
pub fn role_of(function: Function) -> &'static str {
    match function {
        Function::Api => "ApiRole",
        Function::Mcp => "McpRole",
        Function::Processor => "ProcessorRole",
        Function::WebAction => "WebActionRole",
        Function::Scheduler => "SchedulerRole",
        Function::Sweeper => "SweeperRole",
        Function::Agent => "AgentRole",
    }
}

/// The log group (logical id) Lambda writes `function`'s output to.
fn log_group(function: Function) -> &'static str {
    match function {
        Function::Api => "ApiLogGroup",
        Function::Mcp => "McpLogGroup",
        Function::Processor => "ProcessorLogGroup",
        Function::WebAction => "WebActionLogGroup",
        Function::Scheduler => "SchedulerLogGroup",
        Function::Sweeper => "SweeperLogGroup",
        Function::Agent => "AgentLogGroup",
    }
}

fn each(out: &mut Vec<Grant>, actions: &[&'static str], resources: &[&'static str]) {
    for a in actions {
        for r in resources {
            out.push((a, r));
        }
    }
}

/// Every `(action, resource)` `function` needs, sorted and without duplicates.
pub fn grants(function: Function) -> Vec<Grant> {
    use Function::*;
    let mut g = Vec::new();
    each(&mut g, &LOGS, &[log_group(function)]);
    each(&mut g, &XRAY, &["*"]);
    // Every function reads and rewrites message items.
    each(&mut g, &["dynamodb:GetItem", "dynamodb:PutItem"], &["MessagesTable"]);
    // Submitting messages (api, mcp; the webaction's follow-up notifications; the
    // scheduler's firings): the idempotency key beside the message.
    if matches!(function, Api | Mcp | WebAction | Scheduler | Agent) {
        each(&mut g, &["dynamodb:GetItem", "dynamodb:PutItem"], &["IdempotencyTable"]);
    }
    match function {
        Api => {
            g.push(("dynamodb:DescribeTable", "MessagesTable"));
            each(
                &mut g,
                &["dynamodb:Query"],
                &["MessagesTable/index/*", "InboxTable/index/*", "SchedulesTable/index/*"],
            );
            g.push(("dynamodb:GetItem", "InboxTable"));
            g.push(("dynamodb:GetItem", "ApiKeysTable"));
            each(&mut g, &["dynamodb:GetItem", "dynamodb:PutItem"], &["SchedulesTable"]);
            g.push(("dynamodb:Query", "ResultsTable"));
            each(&mut g, &["sns:Publish"], &ALL_TOPICS);
            each(&mut g, &SCHEDULER_API, &[SCHEDULE_GROUP]);
            g.push(("iam:PassRole", "SchedulerExecutionRole"));
            g.push(("secretsmanager:GetSecretValue", "AdminApiKeySecret"));
            // Agent runs: created (PutItem), read with their steps and sessions (GetItem,
            // Query), listed (the by-all index), cancelled (UpdateItem); budget reports.
            each(
                &mut g,
                &["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"],
                &["AgentRunsTable"],
            );
            g.push(("dynamodb:Query", "AgentRunsTable/index/*"));
            each(&mut g, &["dynamodb:GetItem", "dynamodb:Query"], &["AgentBudgetTable"]);
            // Approvals: listed (the by-all index), read and decided (a conditional update).
            each(&mut g, &["dynamodb:GetItem", "dynamodb:UpdateItem"], &["ApprovalsTable"]);
            g.push(("dynamodb:Query", "ApprovalsTable/index/*"));
            each(
                &mut g,
                &["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"],
                &ALL_DLQS,
            );
            each(&mut g, &["sqs:SendMessage", "sqs:GetQueueAttributes"], &ALL_QUEUES);
        }
        Mcp => {
            g.push(("dynamodb:GetItem", "InboxTable"));
            g.push(("dynamodb:GetItem", "ApiKeysTable"));
            g.push(("dynamodb:GetItem", "SchedulesTable"));
            g.push(("dynamodb:Query", "SchedulesTable/index/*"));
            g.push(("dynamodb:Query", "ResultsTable"));
            // The tools send notifications, web actions and schedule requests; schedules
            // themselves are changed by the scheduler function.
            each(&mut g, &["sns:Publish"], &["WebActionsTopic", "NotificationsTopic", "ScheduleCreationTopic"]);
            g.push(("secretsmanager:GetSecretValue", "AdminApiKeySecret"));
        }
        Processor => {
            each(&mut g, &["dynamodb:GetItem", "dynamodb:PutItem"], &["InboxTable"]);
            each(&mut g, &EVENT_SOURCE, &["NotificationsQueue"]);
            g.push(("sqs:SendMessage", "NotificationsDlq"));
            g.push(("secretsmanager:GetSecretValue", NTFY_TOKEN));
        }
        WebAction => {
            each(&mut g, &["dynamodb:PutItem", "dynamodb:Query"], &["ResultsTable"]);
            // The booking ledger: a claim is a conditional put, the owner's writes updates.
            each(&mut g, &["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"], &["BookingLedgerTable"]);
            // Follow-up notifications only.
            g.push(("sns:Publish", "NotificationsTopic"));
            each(&mut g, &EVENT_SOURCE, &["WebActionsQueue"]);
            // Queues::defer: a booking waiting for its next lookup re-sends its message delayed.
            g.push(("sqs:SendMessage", "WebActionsQueue"));
            g.push(("sqs:SendMessage", "WebActionsDlq"));
            g.push(("secretsmanager:GetSecretValue", GOLF_SECRETS));
        }
        Scheduler => {
            each(&mut g, &["dynamodb:GetItem", "dynamodb:PutItem"], &["SchedulesTable"]);
            // A firing may target any message type.
            each(&mut g, &["sns:Publish"], &ALL_TOPICS);
            each(&mut g, &EVENT_SOURCE, &["ScheduleCreationQueue"]);
            g.push(("sqs:SendMessage", "ScheduleCreationDlq"));
            each(&mut g, &SCHEDULER_API, &[SCHEDULE_GROUP]);
            g.push(("iam:PassRole", "SchedulerExecutionRole"));
        }
        Agent => {
            // Runs: claims and updates (UpdateItem), a step with its run (a transaction of
            // PutItem and UpdateItem), a tool outcome (ConditionCheckItem on the run and
            // UpdateItem), steps (Query), chat exchanges (PutItem, UpdateItem, GetItem).
            each(
                &mut g,
                &[
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:ConditionCheckItem",
                    "dynamodb:Query",
                ],
                &["AgentRunsTable"],
            );
            // Reservations and settlements (transactions of PutItem and UpdateItem; a
            // refusal reads the committed amount back).
            each(&mut g, &["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"], &["AgentBudgetTable"]);
            // The tools: what MCP's tools read, and the messages they send (a booking is a
            // web action: the webaction function books).
            g.push(("dynamodb:GetItem", "InboxTable"));
            g.push(("dynamodb:GetItem", "SchedulesTable"));
            g.push(("dynamodb:Query", "SchedulesTable/index/*"));
            g.push(("dynamodb:Query", "ResultsTable"));
            each(&mut g, &["sns:Publish"], &["WebActionsTopic", "NotificationsTopic", "ScheduleCreationTopic"]);
            // Approvals: created (a transaction of two conditional PutItems), read, asked and
            // expired (conditional UpdateItems); the ask is pushed from here.
            each(&mut g, &["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"], &["ApprovalsTable"]);
            g.push(("secretsmanager:GetSecretValue", NTFY_TOKEN));
            each(&mut g, &EVENT_SOURCE, &["AgentResponseQueue"]);
            // A deferred delivery (a run paused for an approval, or owned by another
            // delivery) is a delayed copy sent to the queue.
            g.push(("sqs:SendMessage", "AgentResponseQueue"));
            g.push(("sqs:SendMessage", "AgentResponseDlq"));
            each(&mut g, &["bedrock:InvokeModel"], &AGENT_MODEL);
            each(&mut g, &["secretsmanager:GetSecretValue"], &PROVIDER_KEYS);
        }
        Sweeper => {
            g.push(("dynamodb:Query", "MessagesTable/index/*"));
            each(&mut g, &["sns:Publish"], &ALL_TOPICS);
            // Records what SQS moved to a DLQ and releases or deletes the copies.
            each(&mut g, &["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"], &ALL_DLQS);
        }
    }
    g.sort();
    g.dedup();
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The static check: each role grants exactly what its function's code calls.
    #[test]
    fn every_role_grants_exactly_what_its_function_calls() {
        let mut problems = Vec::new();
        for f in Function::ALL {
            let role = role_of(f);
            let granted: Vec<(String, String)> = rez_aws::policies::role_grants(role).unwrap();
            let needed: Vec<(String, String)> = grants(f).iter().map(|(a, r)| (a.to_string(), r.to_string())).collect();
            for n in &needed {
                if !granted.contains(n) {
                    problems.push(format!("{role} lacks {} on {}", n.0, n.1));
                }
            }
            for g in &granted {
                if !needed.contains(g) {
                    problems.push(format!("{role} grants {} on {}, which no code of {} calls", g.0, g.1, f.as_str()));
                }
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn only_api_and_mcp_read_the_admin_key_and_only_the_pushing_functions_the_ntfy_token() {
        for f in Function::ALL {
            let g = grants(f);
            assert_eq!(
                g.contains(&("secretsmanager:GetSecretValue", "AdminApiKeySecret")),
                matches!(f, Function::Api | Function::Mcp),
                "{f:?}"
            );
            assert_eq!(
                g.contains(&("secretsmanager:GetSecretValue", NTFY_TOKEN)),
                matches!(f, Function::Processor | Function::Agent),
                "{f:?}"
            );
            assert_eq!(g.contains(&("secretsmanager:GetSecretValue", GOLF_SECRETS)), f == Function::WebAction, "{f:?}");
            for key in PROVIDER_KEYS {
                assert_eq!(g.contains(&("secretsmanager:GetSecretValue", key)), f == Function::Agent, "{f:?}");
            }
            for model in AGENT_MODEL {
                assert_eq!(g.contains(&("bedrock:InvokeModel", model)), f == Function::Agent, "{f:?}");
            }
        }
    }

    /// What a function loads at start-up is what its role lets it read.
    #[test]
    fn each_function_loads_the_secrets_its_role_may_read() {
        use crate::wiring::Loads;
        for f in Function::ALL {
            let g = grants(f);
            let loads = Loads::for_function(f);
            assert_eq!(loads.admin_key, g.contains(&("secretsmanager:GetSecretValue", "AdminApiKeySecret")), "{f:?}");
            assert_eq!(loads.notifier, g.contains(&("secretsmanager:GetSecretValue", NTFY_TOKEN)), "{f:?}");
        }
    }

    #[test]
    fn only_x_ray_has_a_wildcard_resource() {
        for f in Function::ALL {
            for (action, resource) in grants(f) {
                assert!(resource != "*" || action.starts_with("xray:"), "{f:?}: {action} on *");
            }
        }
    }
}
