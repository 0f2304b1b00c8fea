//! `rez schedules list|show|create|update|pause|resume|delete|run|preview`.

use rez_core::ScheduleId;
use rez_core::message::CreatedBy;
use rez_core::ports::ScheduleFilter;
use rez_core::schedule::{ScheduleExpression, Timezone};
use rez_core::schedule_spec::{SchedulePatch, ScheduleSpec};
use rez_core::schedules::{ScheduleStatus, TargetType};
use rez_runtime::Services;
use rez_runtime::scheduling::service::preview as preview_times;
use serde_json::{Map, Value};

fn id(raw: &str) -> anyhow::Result<ScheduleId> {
    ScheduleId::parse(raw).map_err(|e| anyhow::anyhow!(e.message))
}

pub async fn list(s: &Services, status: Option<String>, target_type: Option<String>, json: bool) -> anyhow::Result<()> {
    let filter = ScheduleFilter {
        status: status
            .map(|v| ScheduleStatus::parse(&v).ok_or_else(|| anyhow::anyhow!("unknown status `{v}`")))
            .transpose()?,
        target_type: target_type
            .map(|v| TargetType::parse(&v).ok_or_else(|| anyhow::anyhow!("unknown target type `{v}`")))
            .transpose()?,
        limit: 100,
        cursor: None,
    };
    let page = s.schedules.list(&filter).await?;
    if json {
        return super::print_json(&page);
    }
    if page.items.is_empty() {
        println!("no schedules");
    }
    for sc in page.items {
        let next = sc.next_fire_at.map(|t| rez_core::time::rfc3339(&t)).unwrap_or_else(|| "-".into());
        println!(
            "{}  {:<9} {:<24} {:<26} {:<20} next={}  fired={}",
            sc.id,
            sc.status.as_str(),
            sc.name.chars().take(24).collect::<String>(),
            sc.schedule_expression.to_string(),
            sc.timezone.name(),
            next,
            sc.execution_count
        );
    }
    Ok(())
}

pub async fn show(s: &Services, raw: &str) -> anyhow::Result<()> {
    super::print_json(&s.schedules.get(&id(raw)?).await?)
}

pub struct CreateArgs {
    pub name: String,
    pub expression: String,
    pub timezone: Option<String>,
    pub target_type: String,
    pub target: String,
    pub description: Option<String>,
    pub window_minutes: Option<u32>,
    pub paused: bool,
}

fn parse_target(raw: &str) -> anyhow::Result<Value> {
    let v: Value = serde_json::from_str(raw).map_err(|e| anyhow::anyhow!("--target is not valid JSON: {e}"))?;
    anyhow::ensure!(v.is_object(), "--target must be a JSON object");
    Ok(v)
}

pub async fn create(s: &Services, a: CreateArgs) -> anyhow::Result<()> {
    let mut body = Map::new();
    body.insert("name".into(), a.name.into());
    body.insert("schedule_expression".into(), a.expression.into());
    if let Some(tz) = a.timezone {
        body.insert("timezone".into(), tz.into());
    }
    body.insert("target_type".into(), a.target_type.into());
    body.insert("target".into(), parse_target(&a.target)?);
    if let Some(d) = a.description {
        body.insert("description".into(), d.into());
    }
    if let Some(w) = a.window_minutes {
        body.insert("flexible_time_window_minutes".into(), w.into());
    }
    if a.paused {
        body.insert("status".into(), "paused".into());
    }
    let spec = ScheduleSpec::from_json(&Value::Object(body), s.stage).map_err(|e| anyhow::anyhow!("{e}"))?;
    let created = s.schedules.create(spec, CreatedBy::Cli).await?;
    println!(
        "{} created; next fire {}",
        created.id,
        created.next_fire_at.map(|t| rez_core::time::rfc3339(&t)).unwrap_or_default()
    );
    Ok(())
}

pub async fn update(s: &Services, raw: &str, patch_json: &str) -> anyhow::Result<()> {
    let v: Value =
        serde_json::from_str(patch_json).map_err(|e| anyhow::anyhow!("the update is not valid JSON: {e}"))?;
    let patch = SchedulePatch::from_json(&v).map_err(|e| anyhow::anyhow!("{e}"))?;
    let updated = s.schedules.update(&id(raw)?, patch).await?;
    println!("{} updated to version {}", updated.id, updated.version);
    Ok(())
}

pub async fn pause(s: &Services, raw: &str) -> anyhow::Result<()> {
    let sc = s.schedules.pause(&id(raw)?).await?;
    println!("{} paused", sc.id);
    Ok(())
}

pub async fn resume(s: &Services, raw: &str) -> anyhow::Result<()> {
    let sc = s.schedules.resume(&id(raw)?).await?;
    println!(
        "{} resumed; next fire {}",
        sc.id,
        sc.next_fire_at.map(|t| rez_core::time::rfc3339(&t)).unwrap_or_default()
    );
    Ok(())
}

pub async fn delete(s: &Services, raw: &str) -> anyhow::Result<()> {
    let sc = s.schedules.delete(&id(raw)?).await?;
    println!("{} deleted", sc.id);
    Ok(())
}

pub async fn run(s: &Services, raw: &str) -> anyhow::Result<()> {
    let m = s.schedules.run_now(&id(raw)?).await?;
    println!("{} queued", m.id);
    Ok(())
}

/// Print the next fire times. Needs no data directory.
pub fn preview(expression: &str, timezone: &str, from: Option<&str>, count: usize, json: bool) -> anyhow::Result<()> {
    let expr = ScheduleExpression::parse(expression).map_err(|e| anyhow::anyhow!("{e}"))?;
    let tz = Timezone::parse(timezone).map_err(|e| anyhow::anyhow!("{e}"))?;
    let from = match from {
        Some(f) => chrono::DateTime::parse_from_rfc3339(f)
            .map_err(|e| anyhow::anyhow!("--from must be RFC 3339: {e}"))?
            .with_timezone(&chrono::Utc),
        None => chrono::Utc::now(),
    };
    anyhow::ensure!((1..=1000).contains(&count), "--count must be 1–1000");
    let times = preview_times(&expr, tz, from, count);
    if json {
        let utc: Vec<&str> = times.iter().map(|t| t.utc.as_str()).collect();
        println!("{}", serde_json::to_string(&utc)?);
    } else {
        if times.is_empty() {
            println!("`{expr}` never fires after {}", rez_core::time::rfc3339(&from));
        }
        for t in times {
            println!("{}  {}", t.utc, t.local);
        }
    }
    Ok(())
}
