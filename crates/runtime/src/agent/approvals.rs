//! Asking before acting (`approval: required`). The run loop hands a side-effecting call
//! here instead of executing it: the call — already stored as a step with its idempotency
//! key — becomes a pending approval, the user is asked by push (with Approve and Decline
//! buttons when `REZ_PUBLIC_URL` is set), and the run pauses without holding a worker: its
//! message is deferred to the approval's deadline. A decision (button, API, CLI) is one
//! conditional write; the winner enqueues the run's continuation, which executes the stored
//! call with its stored key, or tells the model the user said no. An approval not answered
//! by its deadline (2 h by default, never past the tee time) ends the run
//! `approval_expired`.

use std::time::Duration;

use base64::Engine;
use chrono::{NaiveDateTime, TimeDelta};
use rand::RngCore;
use rez_core::agent::approval::{Approval, ApprovalPolicy, ApprovalState, Decided, Decision, Proof};
use rez_core::agent::run::ToolCall;
use rez_core::agent::{AgentRun, Step, StepKind};
use rez_core::id::{ApprovalId, MessageId};
use rez_core::message::{CreatedBy, IdempotencyKey};
use rez_core::notify::{NotifyAction, NotifyActionKind, NotifyPayload, Priority};
use rez_core::ports::{MAX_DEFER, StoreError};
use rez_core::time::Timestamp;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::start::{RunOrigin, run_message};
use super::{AgentPorts, AgentSettings};
use crate::Services;
use crate::intake;
use crate::tools::{CourseInfo, ToolName};
use crate::workers::HandlerError;

/// Whether `tool` waits for the user in `run`: bookings and schedule changes, when the run
/// asks for approval.
pub fn needs_approval(run: &AgentRun, tool: &str) -> bool {
    run.request.approval == ApprovalPolicy::Required
        && matches!(
            ToolName::parse(tool),
            Some(
                ToolName::GolfBookTeeTime
                    | ToolName::CreateSchedule
                    | ToolName::PauseSchedule
                    | ToolName::ResumeSchedule
                    | ToolName::DeleteSchedule
            )
        )
}

/// SHA-256 of a token, hex: what is stored and compared.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// 256 random bits, URL-safe.
fn mint_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The tee time a booking call is for, as its run's earlier search found it: (course name,
/// local start, green fee).
fn searched_slot(steps: &[Step], tee_sheet_id: i64) -> Option<(String, NaiveDateTime, Option<f64>)> {
    steps.iter().rev().find_map(|s| {
        let StepKind::ToolCall(c) = &s.kind else { return None };
        let slots = c.outcome.as_ref()?.structured.as_ref()?.get("output")?.get("tee_times")?.as_array()?;
        let slot = slots.iter().find(|t| t["tee_sheet_id"].as_i64() == Some(tee_sheet_id))?;
        let start = NaiveDateTime::parse_from_str(slot["start_time"].as_str()?, "%Y-%m-%dT%H:%M:%S").ok()?;
        Some((slot["course_name"].as_str().unwrap_or("").to_owned(), start, slot["price"].as_f64()))
    })
}

fn course<'a>(courses: &'a [CourseInfo], raw: &str) -> Option<&'a CourseInfo> {
    let raw = raw.trim().to_lowercase();
    courses.iter().find(|c| c.id == raw || c.name.to_lowercase() == raw)
}

/// What the call will do, in one line, and the latest moment it may still be approved
/// (the tee time, for a booking whose slot the run found).
pub fn describe(call: &ToolCall, steps: &[Step], courses: &[CourseInfo]) -> (String, Option<Timestamp>) {
    let args = &call.arguments;
    let s = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or("?");
    match ToolName::parse(&call.name) {
        Some(ToolName::GolfBookTeeTime) => {
            let players = args.get("players").and_then(Value::as_u64).unwrap_or(1);
            let id = args.get("tee_sheet_id").and_then(Value::as_i64).unwrap_or(0);
            let info = course(courses, s("course"));
            let name = info.map_or_else(|| s("course").to_owned(), |c| c.name.clone());
            match searched_slot(steps, id) {
                Some((_, start, price)) => {
                    let zone = info.and_then(|c| c.time_zone.parse::<chrono_tz::Tz>().ok());
                    let deadline = zone.and_then(|z| start.and_local_timezone(z).earliest()).map(|t| t.to_utc());
                    let fee = price.map_or(String::new(), |p| format!(", ${:.0}", p * players as f64));
                    let when = start.format("%a %-d %b %H:%M");
                    let who = if players == 1 { "1 player".to_owned() } else { format!("{players} players") };
                    (format!("Book {name}, {when}, {who}{fee}"), deadline)
                }
                None => (format!("Book tee time {id} at {name} for {players}"), None),
            }
        }
        Some(ToolName::CreateSchedule) => {
            (format!("Create the schedule \"{}\" ({})", s("name"), s("schedule_expression")), None)
        }
        Some(ToolName::PauseSchedule) => (format!("Pause schedule {}", s("schedule_id")), None),
        Some(ToolName::ResumeSchedule) => (format!("Resume schedule {}", s("schedule_id")), None),
        Some(ToolName::DeleteSchedule) => (format!("Delete schedule {}", s("schedule_id")), None),
        _ => (format!("Call {}", call.name), None),
    }
}

/// A call waiting for the user: the tool-call step at `index` of `run`.
pub struct WaitingCall<'a> {
    pub run: &'a AgentRun,
    pub steps: &'a [Step],
    pub index: u32,
    pub call: &'a ToolCall,
}

/// The approval of the waiting call, created if new; asked (pushed) if the user was not
/// asked yet.
pub async fn ask(
    services: &Services,
    ports: &AgentPorts,
    settings: &AgentSettings,
    courses: &[CourseInfo],
    waiting: WaitingCall<'_>,
) -> Result<Approval, HandlerError> {
    let WaitingCall { run, steps, index, call } = waiting;
    let store =
        ports.approvals.as_ref().ok_or_else(|| HandlerError::permanent("this deployment keeps no approvals"))?;
    let now = services.clock.now();
    let (summary, latest) = describe(call, steps, courses);
    let ttl = TimeDelta::from_std(settings.approval_ttl).unwrap_or(TimeDelta::hours(2));
    let expires_at = latest.map_or(now + ttl, |l| (now + ttl).min(l));
    let fresh = Approval {
        id: ApprovalId::new(now),
        run_id: run.id.clone(),
        step: index,
        tool: call.name.clone(),
        arguments: call.arguments.clone(),
        idempotency_key: call.idempotency_key.clone(),
        summary,
        state: ApprovalState::Pending,
        created_at: now,
        expires_at,
        decided_at: None,
        decided_by: None,
        approve_token_hash: String::new(),
        decline_token_hash: String::new(),
        asked_at: None,
    };
    let store_err = |e: StoreError| HandlerError::transient(format!("storing the approval: {e}"));
    let (approval, _) = store.create_approval(&fresh).await.map_err(store_err)?;
    if approval.asked_at.is_some() || approval.state != ApprovalState::Pending {
        return Ok(approval);
    }
    let (approve, decline) = (mint_token(), mint_token());
    let approval =
        store.record_ask(&approval.id, &token_hash(&approve), &token_hash(&decline), now).await.map_err(store_err)?;
    push(services, settings, &approval, &approve, &decline).await;
    tracing::info!(approval_id = %approval.id, run_id = %run.id, step = index, tool = %call.name, "approval asked");
    Ok(approval)
}

/// The push asking for `approval`. The tokens go into the buttons' URLs and nowhere else.
async fn push(services: &Services, settings: &AgentSettings, approval: &Approval, approve: &str, decline: &str) {
    let Some(notifier) = &services.notifier else {
        tracing::info!(approval_id = %approval.id, "no push server: the approval waits for `rez approvals` or the API");
        return;
    };
    let until = approval.expires_at.with_timezone(&settings.zone).format("%a %H:%M");
    let mut n = NotifyPayload::text(match &settings.public_url {
        Some(_) => format!("{}\n\nApprove or decline by {until}.", approval.summary),
        None => format!(
            "{}\n\nAnswer by {until} with `rez approvals approve {}` or `rez approvals decline {}`.",
            approval.summary, approval.id, approval.id
        ),
    });
    n.title = Some("rez agent asks: approve?".into());
    n.priority = Priority::try_from(4).ok();
    n.tags = vec!["question".into(), "robot".into()];
    if let Some(base) = &settings.public_url {
        let url = |d: Decision, token: &str| {
            let mut u = base.clone();
            u.set_path(&format!("{}/api/approvals/{}/{}", base.path().trim_end_matches('/'), approval.id, d));
            u.query_pairs_mut().clear().append_pair("token", token);
            u.to_string()
        };
        let button = |label: &str, d: Decision, token: &str| NotifyAction {
            action: NotifyActionKind::Http,
            label: label.into(),
            url: url(d, token),
            method: Some("POST".into()),
            clear: true,
        };
        n.actions = vec![button("Approve", Decision::Approve, approve), button("Decline", Decision::Decline, decline)];
    }
    // The approval's ULID as the push's sequence id: asking again replaces it on the phone.
    let sequence = MessageId::parse(&format!("msg_{}", &approval.id.as_str()[ApprovalId::PREFIX.len() + 1..]));
    let Ok(sequence) = sequence else { return };
    if let Err(e) = notifier.push(&sequence, &n).await {
        tracing::warn!(approval_id = %approval.id, error = %e, "the approval push failed; it can still be answered by API or CLI");
    }
}

/// How long a paused run's message waits before it looks again: until the approval's
/// deadline, at most the longest deferral a queue allows.
pub fn wait_for(approval: &Approval, now: Timestamp) -> Duration {
    let left = (approval.expires_at - now).to_std().unwrap_or_default() + Duration::from_secs(1);
    left.min(MAX_DEFER)
}

/// Why a decision was not taken.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("no such approval")]
    NotFound,
    #[error("the token is not valid for this approval and decision")]
    BadToken,
    #[error("already {}", .0.state)]
    Already(Box<Approval>),
    #[error("this deployment keeps no approvals")]
    Off,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("queueing the run's continuation: {0}")]
    Continue(String),
}

/// Decide `id`, and if this decision won, queue the run's continuation.
pub async fn decide(
    services: &Services,
    id: &ApprovalId,
    decision: Decision,
    proof: Proof,
) -> Result<Approval, DecideError> {
    let ports = services.agent.as_ref().ok_or(DecideError::Off)?;
    let store = ports.approvals.as_ref().ok_or(DecideError::Off)?;
    let approval = match store.decide(id, decision, &proof, services.clock.now()).await? {
        Decided::Now(a) => a,
        Decided::Already(a) => return Err(DecideError::Already(Box::new(a))),
        Decided::BadToken => return Err(DecideError::BadToken),
        Decided::NotFound => return Err(DecideError::NotFound),
    };
    continue_run(services, ports, &approval).await?;
    Ok(approval)
}

/// Queue the message that resumes the run of `approval` (idempotent per approval).
pub async fn continue_run(services: &Services, ports: &AgentPorts, approval: &Approval) -> Result<(), DecideError> {
    let run = ports.runs.get_run(&approval.run_id).await?.ok_or(DecideError::NotFound)?;
    let key = IdempotencyKey::parse(&format!("{}.{}", approval.id, approval.state)).ok();
    let mut new = run_message(services, &run.request, &RunOrigin { idempotency_key: key, ..RunOrigin::default() });
    let mut args = Map::new();
    args.insert("run_id".into(), Value::String(run.id.to_string()));
    args.insert("approval_id".into(), Value::String(approval.id.to_string()));
    new.arguments = args;
    intake::submit(services, new, CreatedBy::Agent).await.map_err(|e| DecideError::Continue(e.to_string()))?;
    Ok(())
}
