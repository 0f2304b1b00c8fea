//! API keys and scopes. A key is shown to its owner once, as
//! `rez_<26-char ULID>_<secret>`; the store keeps only the SHA-256 of the whole token.

use serde::{Deserialize, Serialize};
use std::fmt;

pub use crate::id::ApiKeyId;
use crate::time::{Timestamp, serde_rfc3339, serde_rfc3339_opt};

/// What a key may do. `admin` ⊇ `write` ⊇ {`read`, `mcp`}.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Read messages, results, schedules, metrics.
    Read,
    /// Read, and use the MCP endpoint with the tools that only read. Tools that act
    /// (notifications, web actions, schedule changes) need `write`, as they do through
    /// the REST API.
    Mcp,
    /// Create messages and schedules, retry, redrive.
    Write,
    /// Everything, including key management.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Mcp, Scope::Write, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Mcp => "mcp",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Whether a key with scope `self` may do what needs `required`.
    pub fn allows(self, required: Scope) -> bool {
        match self {
            Scope::Admin => true,
            Scope::Write => required != Scope::Admin,
            Scope::Mcp => matches!(required, Scope::Mcp | Scope::Read),
            Scope::Read => required == Scope::Read,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored API key (never the secret itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ApiKeyRecord {
    pub id: ApiKeyId,
    pub name: String,
    pub scope: Scope,
    /// SHA-256 of the full token.
    #[serde(skip)]
    pub hash: [u8; 32],
    #[serde(with = "serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_date: Timestamp,
    #[serde(with = "serde_rfc3339_opt", skip_serializing_if = "Option::is_none", default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_date: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_lattice() {
        assert!(Scope::Admin.allows(Scope::Admin));
        assert!(
            Scope::Write.allows(Scope::Mcp) && Scope::Write.allows(Scope::Read) && !Scope::Write.allows(Scope::Admin)
        );
        assert!(Scope::Mcp.allows(Scope::Read) && !Scope::Mcp.allows(Scope::Write));
        assert!(!Scope::Read.allows(Scope::Write) && !Scope::Read.allows(Scope::Mcp));
    }
}
