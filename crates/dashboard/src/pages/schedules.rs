//! Schedules: the list, creating one (with the next fires previewed in its zone before
//! it is saved), one schedule with its edit form, and pause, resume, run now, delete.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::{Extension, Form};
use maud::{Markup, html};
use rez_core::ScheduleId;
use rez_core::message::CreatedBy;
use rez_core::ports::ScheduleFilter;
use rez_core::schedule::{ScheduleExpression, Timezone};
use rez_core::schedule_spec::{SchedulePatch, ScheduleSpec};
use rez_core::schedules::{Schedule, ScheduleStatus};
use rez_runtime::scheduling::service::{PreviewTime, preview};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{PageError, PageResult, done, enc};
use crate::guard::Viewer;
use crate::{Dash, layout, time};

const PAGE_SIZE: usize = 50;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    cursor: Option<String>,
    done: Option<String>,
}

fn notice(done: Option<&str>) -> Markup {
    layout::notice(match done {
        Some("created") => Some("The schedule was created."),
        Some("updated") => Some("The schedule was saved."),
        Some("paused") => Some("The schedule is paused."),
        Some("resumed") => Some("The schedule is active again."),
        Some("ran") => Some("The schedule fired once now."),
        Some("deleted") => Some("The schedule was deleted."),
        _ => None,
    })
}

pub async fn list(
    State(dash): State<Dash>,
    Extension(viewer): Extension<Viewer>,
    Query(q): Query<ListQuery>,
) -> PageResult<Response> {
    let page = dash
        .services
        .schedules
        .list(&ScheduleFilter {
            status: None,
            target_type: None,
            limit: PAGE_SIZE,
            cursor: q.cursor.clone().filter(|c| !c.is_empty()),
        })
        .await?;
    let body = html! {
        (notice(q.done.as_deref()))
        @if viewer.can_write() { p { a.button href="/schedules/new" { "New schedule" } } }
        @if page.items.is_empty() {
            p.muted { "No schedule yet." }
        } @else {
            div.table-wrap {
                table {
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Expression" } th scope="col" { "Status" }
                        th scope="col" { "Next fire" } th scope="col" { "Target" } } }
                    tbody {
                        @for s in &page.items {
                            tr {
                                td { a href=(format!("/schedules/{}", s.id)) { (s.name) } }
                                td { code { (s.schedule_expression.to_string()) } " " span.muted { (s.timezone) } }
                                td { (s.status) }
                                td { (time::maybe(s.next_fire_at)) }
                                td { (s.target_type) }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(c) = &page.next_cursor {
            p.pager { a href=(format!("/schedules?cursor={}", enc(c))) rel="next" { "More schedules →" } }
        }
    };
    Ok(layout::page(&viewer, "/schedules", "Schedules", body))
}

/// The fields of the create and edit forms.
#[derive(Deserialize, Default, Clone)]
pub struct ScheduleForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    schedule_expression: String,
    #[serde(default)]
    timezone: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    message: String,
}

/// The next fires of the form's expression in its zone, or why there are none.
fn preview_of(dash: &Dash, f: &ScheduleForm) -> Result<Vec<PreviewTime>, String> {
    let expr = ScheduleExpression::parse(f.schedule_expression.trim()).map_err(|e| e.to_string())?;
    let tz = if f.timezone.trim().is_empty() {
        Timezone::UTC
    } else {
        Timezone::parse(f.timezone.trim()).map_err(|e| e.message)?
    };
    Ok(preview(&expr, tz, dash.services.clock.now(), 10))
}

fn preview_markup(p: Option<&Result<Vec<PreviewTime>, String>>) -> Markup {
    html! {
        section aria-live="polite" #preview {
            h2 { "Next fires" }
            @match p {
                None => p.muted { "Type an expression to see its next fires." },
                Some(p) => @match p {
                Ok(times) if times.is_empty() => p.muted { "This expression will not fire again." },
                Ok(times) => ol { @for t in times { li { (t.local) " " span.muted { "(" (t.utc) ")" } } } },
                    Err(e) => p.error role="alert" { (e) },
                },
            }
        }
    }
}

fn fields(f: &ScheduleForm, with_target: bool) -> Markup {
    html! {
        label { "Name" input type="text" name="name" value=(f.name) required maxlength="200"; }
        label {
            "Expression"
            input type="text" name="schedule_expression" value=(f.schedule_expression) required
                placeholder="cron(0 6 ? * FRI *), rate(5 minutes) or at(2026-12-24T09:00:00)" aria-describedby="expr-help";
        }
        p.muted #expr-help { "EventBridge Scheduler syntax; at() and cron() are read in the zone below." }
        label { "Time zone" input type="text" name="timezone" value=(f.timezone) placeholder="UTC or America/New_York"; }
        label { "Description" input type="text" name="description" value=(f.description); }
        @if with_target {
            label { "Notification title" input type="text" name="title" value=(f.title); }
            label { "Notification text" textarea name="message" required rows="3" { (f.message) } }
        }
    }
}

/// The preview section alone, for the script that refreshes it as the expression or
/// zone is typed (`GET /schedules/preview?schedule_expression=…&timezone=…`).
pub async fn preview_fragment(State(dash): State<Dash>, Query(f): Query<ScheduleForm>) -> Response {
    use axum::response::IntoResponse;
    let p = (!f.schedule_expression.trim().is_empty()).then(|| preview_of(&dash, &f));
    axum::response::Html(preview_markup(p.as_ref()).into_string()).into_response()
}

pub async fn new_form(
    State(dash): State<Dash>,
    Extension(viewer): Extension<Viewer>,
    Query(f): Query<ScheduleForm>,
) -> PageResult<Response> {
    if !viewer.can_write() {
        return Err(PageError::new(axum::http::StatusCode::FORBIDDEN, "Your key may not create schedules."));
    }
    Ok(new_page(&dash, &viewer, &f, None))
}

fn new_page(dash: &Dash, viewer: &Viewer, f: &ScheduleForm, error: Option<&str>) -> Response {
    let preview = (!f.schedule_expression.trim().is_empty()).then(|| preview_of(dash, f));
    let body = html! {
        @if let Some(e) = error { p.error role="alert" { (e) } }
        form.stack method="post" action="/schedules" data-preview="/schedules/preview" {
            (layout::csrf(viewer))
            (fields(f, true))
            div.actions {
                button type="submit" formmethod="get" formaction="/schedules/new" formnovalidate class="secondary" { "Preview next fires" }
                button type="submit" { "Create schedule" }
            }
        }
        (preview_markup(preview.as_ref()))
    };
    layout::page(viewer, "/schedules", "New schedule", body)
}

fn text(v: &str) -> Value {
    let v = v.trim();
    if v.is_empty() { Value::Null } else { Value::String(v.to_owned()) }
}

pub async fn create(
    State(dash): State<Dash>,
    Extension(viewer): Extension<Viewer>,
    Form(f): Form<ScheduleForm>,
) -> PageResult<Response> {
    let mut payload = json!({"message": f.message.trim()});
    if let Value::String(t) = text(&f.title) {
        payload["title"] = Value::String(t);
    }
    let mut body = json!({
        "name": f.name.trim(),
        "schedule_expression": f.schedule_expression.trim(),
        "target_type": "notify",
        "target": {"payload": payload},
    });
    for (k, v) in [("timezone", text(&f.timezone)), ("description", text(&f.description))] {
        if !v.is_null() {
            body[k] = v;
        }
    }
    let spec = match ScheduleSpec::from_json(&body, dash.services.stage) {
        Ok(s) => s,
        Err(e) => {
            let msg = format!("{}: {}", e.field, e.message);
            return Ok(with_status(axum::http::StatusCode::BAD_REQUEST, new_page(&dash, &viewer, &f, Some(&msg))));
        }
    };
    match dash.services.schedules.create(spec, CreatedBy::Api).await {
        Ok(s) => {
            tracing::info!(schedule_id = %s.id, "schedule created from the dashboard");
            Ok(done(&format!("/schedules/{}", s.id), "created"))
        }
        Err(e) => {
            let e = PageError::from(e);
            Ok(with_status(e.status(), new_page(&dash, &viewer, &f, Some(e.message()))))
        }
    }
}

fn with_status(status: axum::http::StatusCode, mut r: Response) -> Response {
    *r.status_mut() = status;
    r
}

fn parse_id(raw: &str) -> PageResult<ScheduleId> {
    ScheduleId::parse(raw).map_err(|e| PageError::bad_request(e.message))
}

fn edit_form_of(s: &Schedule) -> ScheduleForm {
    ScheduleForm {
        name: s.name.clone(),
        schedule_expression: s.schedule_expression.to_string(),
        timezone: s.timezone.to_string(),
        description: s.description.clone().unwrap_or_default(),
        ..ScheduleForm::default()
    }
}

pub async fn show(
    State(dash): State<Dash>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> PageResult<Response> {
    let s = dash.services.schedules.get(&parse_id(&id)?).await?;
    Ok(show_page(&dash, &viewer, &s, &edit_form_of(&s), q.done.as_deref(), None))
}

fn show_page(
    dash: &Dash,
    viewer: &Viewer,
    s: &Schedule,
    form: &ScheduleForm,
    done: Option<&str>,
    error: Option<&str>,
) -> Response {
    let base = format!("/schedules/{}", s.id);
    let body = html! {
        (notice(done))
        @if let Some(e) = error { p.error role="alert" { (e) } }
        dl.facts {
            dt { "Id" } dd { code { (s.id) } }
            dt { "Status" } dd { (s.status) }
            dt { "Expression" } dd { code { (s.schedule_expression.to_string()) } " in " (s.timezone) }
            dt { "Next fire" } dd { (time::maybe(s.next_fire_at)) }
            dt { "Last fired" } dd { (time::maybe(s.last_fired_at)) }
            dt { "Fired" } dd { (s.execution_count) " time(s), " (s.missed_count) " missed" }
            dt { "Target" } dd { (s.target_type) }
            @if let Some(e) = &s.last_error { dt { "Last error" } dd { (e) } }
        }
        pre { (super::messages::pretty(&s.target)) }
        @if viewer.can_write() && s.status != ScheduleStatus::Deleted {
            div.actions {
                @if s.status == ScheduleStatus::Active { (layout::button(viewer, &format!("{base}/pause"), "Pause", "secondary")) }
                @if s.status == ScheduleStatus::Paused { (layout::button(viewer, &format!("{base}/resume"), "Resume", "secondary")) }
                (layout::button(viewer, &format!("{base}/run"), "Run now", "secondary"))
                (layout::button(viewer, &format!("{base}/delete"), "Delete", "danger"))
            }
            h2 { "Edit" }
            form.stack method="post" action=(format!("{base}/edit")) data-preview="/schedules/preview" {
                (layout::csrf(viewer))
                (fields(form, false))
                button type="submit" { "Save" }
            }
            (preview_markup(Some(&preview_of(dash, form))))
        }
    };
    layout::page(viewer, "/schedules", &s.name, body)
}

pub async fn update(
    State(dash): State<Dash>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    Form(f): Form<ScheduleForm>,
) -> PageResult<Response> {
    let id = parse_id(&id)?;
    let mut body = json!({
        "name": f.name.trim(),
        "schedule_expression": f.schedule_expression.trim(),
        "description": text(&f.description),
    });
    if let Value::String(tz) = text(&f.timezone) {
        body["timezone"] = Value::String(tz);
    }
    let result = match SchedulePatch::from_json(&body) {
        Ok(patch) => dash.services.schedules.update(&id, patch).await.map_err(PageError::from),
        Err(e) => Err(PageError::bad_request(format!("{}: {}", e.field, e.message))),
    };
    match result {
        Ok(_) => Ok(done(&format!("/schedules/{id}"), "updated")),
        Err(e) => {
            let s = dash.services.schedules.get(&id).await?;
            Ok(with_status(e.status(), show_page(&dash, &viewer, &s, &f, None, Some(e.message()))))
        }
    }
}

pub async fn pause(State(dash): State<Dash>, Path(id): Path<String>) -> PageResult<Response> {
    let id = parse_id(&id)?;
    dash.services.schedules.pause(&id).await?;
    Ok(done(&format!("/schedules/{id}"), "paused"))
}

pub async fn resume(State(dash): State<Dash>, Path(id): Path<String>) -> PageResult<Response> {
    let id = parse_id(&id)?;
    dash.services.schedules.resume(&id).await?;
    Ok(done(&format!("/schedules/{id}"), "resumed"))
}

pub async fn run(State(dash): State<Dash>, Path(id): Path<String>) -> PageResult<Response> {
    let id = parse_id(&id)?;
    let m = dash.services.schedules.run_now(&id).await?;
    tracing::info!(schedule_id = %id, message_id = %m.id, "schedule run from the dashboard");
    Ok(done(&format!("/schedules/{id}"), "ran"))
}

pub async fn delete(State(dash): State<Dash>, Path(id): Path<String>) -> PageResult<Response> {
    let id = parse_id(&id)?;
    dash.services.schedules.delete(&id).await?;
    tracing::info!(schedule_id = %id, "schedule deleted from the dashboard");
    Ok(done("/schedules", "deleted"))
}
