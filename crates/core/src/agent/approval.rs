//! Approvals: a run with `approval: required` does not execute a side-effecting tool call
//! (a booking, a schedule change); it stores the exact call with its idempotency key as a
//! pending approval, asks the user, and pauses. The first decision wins, in one
//! conditional store write; approval executes the stored call with its stored key.
//!
//! The tokens of the push's Approve and Decline buttons are minted at random (256 bits),
//! shown once (in the push) and stored only as SHA-256 hashes, each bound to its approval
//! and its decision; a decision consumes the approval, so every token is single-use, and
//! none is accepted after the approval's expiry.

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::id::{ApprovalId, RunId};
use crate::message::IdempotencyKey;
use crate::ports::{Page, StoreResult};
use crate::time::{Timestamp, serde_rfc3339, serde_rfc3339_opt};

/// Whether a run asks before its side effects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalPolicy {
    /// Side effects happen when the model asks for them (booking still needs `auto_book`).
    #[default]
    None,
    /// Each side-effecting call waits for the user's decision.
    Required,
}

impl ApprovalPolicy {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "none" => Some(ApprovalPolicy::None),
            "required" => Some(ApprovalPolicy::Required),
            _ => None,
        }
    }
}

/// A user's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Decline,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Decline => "decline",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "approve" => Some(Decision::Approve),
            "decline" => Some(Decision::Decline),
            _ => None,
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    Pending,
    Approved,
    Declined,
    /// Not answered before its deadline.
    Expired,
}

impl ApprovalState {
    pub const ALL: [ApprovalState; 4] =
        [ApprovalState::Pending, ApprovalState::Approved, ApprovalState::Declined, ApprovalState::Expired];

    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Approved => "approved",
            ApprovalState::Declined => "declined",
            ApprovalState::Expired => "expired",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

impl fmt::Display for ApprovalState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored approval: the exact call waiting for the user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub id: ApprovalId,
    pub run_id: RunId,
    /// The step of the tool call in its run.
    pub step: u32,
    pub tool: String,
    pub arguments: Value,
    /// The call's idempotency key: approval executes the call with it, never a new one.
    pub idempotency_key: IdempotencyKey,
    /// What it will do, in one readable line.
    pub summary: String,
    pub state: ApprovalState,
    #[serde(with = "serde_rfc3339")]
    pub created_at: Timestamp,
    #[serde(with = "serde_rfc3339")]
    pub expires_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_rfc3339_opt")]
    pub decided_at: Option<Timestamp>,
    /// Who decided: `link` (a push button), `key:<key id>`, `admin`, `cli`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// SHA-256 (hex) of the approve and decline tokens; empty until the user is asked.
    #[serde(default, skip_serializing)]
    pub approve_token_hash: String,
    #[serde(default, skip_serializing)]
    pub decline_token_hash: String,
    /// When the push asking for it was sent.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_rfc3339_opt")]
    pub asked_at: Option<Timestamp>,
}

impl Approval {
    /// The token hash of `decision`.
    pub fn token_hash(&self, decision: Decision) -> &str {
        match decision {
            Decision::Approve => &self.approve_token_hash,
            Decision::Decline => &self.decline_token_hash,
        }
    }

    /// Still waiting at `now`.
    pub fn is_open(&self, now: Timestamp) -> bool {
        self.state == ApprovalState::Pending && now < self.expires_at
    }
}

/// How a decision is presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// A push button's token, hashed (SHA-256, hex): valid only for its decision.
    TokenHash(String),
    /// An API key (or the admin CLI) with the right to decide: who it is.
    Principal(String),
}

/// The answer to [`ApprovalStore::decide`].
#[derive(Debug, Clone, PartialEq)]
pub enum Decided {
    /// This call decided it.
    Now(Approval),
    /// It was decided (or expired) before: the approval as it stands.
    Already(Approval),
    /// The token is not this approval's token for this decision.
    BadToken,
    NotFound,
}

/// Filters of `GET /api/approvals`.
#[derive(Debug, Clone, Default)]
pub struct ApprovalFilter {
    pub state: Option<ApprovalState>,
    pub run_id: Option<RunId>,
    /// 1..=100.
    pub limit: usize,
    pub cursor: Option<String>,
}

/// Approvals, decided once.
#[async_trait]
pub trait ApprovalStore: Send + Sync + 'static {
    /// Store `approval` unless its run already has one at its step; answer the stored one
    /// and whether this call created it.
    async fn create_approval(&self, approval: &Approval) -> StoreResult<(Approval, bool)>;
    async fn get_approval(&self, id: &ApprovalId) -> StoreResult<Option<Approval>>;
    async fn approval_for_step(&self, run: &RunId, step: u32) -> StoreResult<Option<Approval>>;
    /// Newest first.
    async fn list_approvals(&self, filter: &ApprovalFilter) -> StoreResult<Page<Approval>>;
    /// Record that the user was asked with tokens of these hashes, if still pending (a
    /// repeated ask replaces the tokens: only the latest push's buttons work).
    async fn record_ask(
        &self,
        id: &ApprovalId,
        approve_hash: &str,
        decline_hash: &str,
        at: Timestamp,
    ) -> StoreResult<Approval>;
    /// Decide, if the approval is pending and not expired at `now` and the proof holds,
    /// in one conditional write: of two decisions at once exactly one wins.
    async fn decide(&self, id: &ApprovalId, decision: Decision, proof: &Proof, now: Timestamp) -> StoreResult<Decided>;
    /// Mark a pending approval past its expiry `expired`; answer it as it stands.
    async fn expire(&self, id: &ApprovalId, now: Timestamp) -> StoreResult<Option<Approval>>;
}
