//! `rez approvals list|show|approve|decline`: answer what agent runs wait for, from the
//! terminal (the admin's own decision, recorded as `cli`). The run resumes in the
//! `rez serve` on the data directory.

use rez_core::agent::approval::{ApprovalFilter, ApprovalState, Decision, Proof};
use rez_core::id::ApprovalId;
use rez_core::time::rfc3339;
use rez_runtime::Services;
use rez_runtime::agent::approvals::{DecideError, decide};

fn store(s: &Services) -> anyhow::Result<&std::sync::Arc<dyn rez_core::agent::approval::ApprovalStore>> {
    s.agent
        .as_ref()
        .and_then(|a| a.approvals.as_ref())
        .ok_or_else(|| anyhow::anyhow!("this data directory keeps no approvals"))
}

pub async fn list(s: &Services, state: Option<String>, json: bool) -> anyhow::Result<()> {
    let state = match state.as_deref() {
        None => Some(ApprovalState::Pending),
        Some("all") => None,
        Some(v) => Some(ApprovalState::parse(v).ok_or_else(|| {
            anyhow::anyhow!("unknown state `{v}`: pending (the default), approved, declined, expired or all")
        })?),
    };
    let page = store(s)?.list_approvals(&ApprovalFilter { state, limit: 100, ..Default::default() }).await?;
    if json {
        return super::print_json(&page);
    }
    if page.items.is_empty() {
        println!("no approvals{}", state.map(|s| format!(" {s}")).unwrap_or_default());
    }
    for a in page.items {
        println!("{}  {:<8}  until {}  {}", a.id, a.state.as_str(), rfc3339(&a.expires_at), a.summary);
    }
    Ok(())
}

pub async fn show(s: &Services, id: &str) -> anyhow::Result<()> {
    let id = ApprovalId::parse(id).map_err(|e| anyhow::anyhow!(e.message))?;
    let a = store(s)?.get_approval(&id).await?.ok_or_else(|| anyhow::anyhow!("no approval {id}"))?;
    super::print_json(&a)
}

pub async fn answer(s: &Services, id: &str, decision: Decision) -> anyhow::Result<()> {
    let id = ApprovalId::parse(id).map_err(|e| anyhow::anyhow!(e.message))?;
    match decide(s, &id, decision, Proof::Principal("cli".into())).await {
        Ok(a) => {
            println!("{}: {} — the run resumes", a.id, a.state);
            Ok(())
        }
        Err(DecideError::Already(a)) => anyhow::bail!(
            "approval {id} was already {} at {}",
            a.state,
            a.decided_at.map(|t| rfc3339(&t)).unwrap_or_default()
        ),
        Err(e) => anyhow::bail!("approval {id}: {e}"),
    }
}
