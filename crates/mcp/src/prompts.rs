//! MCP prompts: canned starting points a user picks in their client. `weekly_tee_time`
//! walks the model through the weekly routine the prior system automated by hand —
//! weather, search, book on confirmation, and a reminder schedule — using the tools.

use rez_runtime::tools::CourseInfo;
use rmcp::ErrorData;
use rmcp::model::{GetPromptResult, Prompt, PromptArgument, PromptMessage, Role};
use serde_json::{Map, Value};

pub const WEEKLY_TEE_TIME: &str = "weekly_tee_time";

const DAYS: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

pub fn list() -> Vec<Prompt> {
    let arg = |name: &str, description: &str, required: bool| {
        PromptArgument::new(name).with_description(description).with_required(required)
    };
    vec![
        Prompt::new(
            WEEKLY_TEE_TIME,
            Some("Find (and, once you confirm, book) this week's tee time: weather, open times, booking, reminder."),
            Some(vec![
                arg("course", "Course id or name (see the courses resource), e.g. birdsfoot", true),
                arg("day", "Day of the week to play (default Saturday)", false),
                arg("earliest", "Earliest tee time, HH:MM (default 08:00)", false),
                arg("latest", "Latest tee time, HH:MM (default 11:00)", false),
                arg("players", "Number of golfers, 1–4 (default 4)", false),
            ]),
        )
        .with_title("Weekly tee time"),
    ]
}

fn text_arg<'a>(args: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    args.get(name).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

fn invalid(message: String) -> ErrorData {
    ErrorData::invalid_params(message, None)
}

pub fn get(name: &str, args: &Map<String, Value>, courses: &[CourseInfo]) -> Result<GetPromptResult, ErrorData> {
    if name != WEEKLY_TEE_TIME {
        return Err(invalid(format!(
            "unknown prompt `{}`; prompts/list shows the available ones",
            crate::server::truncate(name)
        )));
    }
    let course = text_arg(args, "course").ok_or_else(|| invalid("the `course` argument is required".into()))?;
    if course.len() > 128 {
        return Err(invalid("`course` is too long".into()));
    }
    let day_raw = text_arg(args, "day").unwrap_or("Saturday");
    let day = DAYS
        .iter()
        .find(|d| d.eq_ignore_ascii_case(day_raw) || d[..3].eq_ignore_ascii_case(day_raw))
        .ok_or_else(|| {
            invalid(format!(
                "`day` must be a day of the week, e.g. Saturday (got {})",
                crate::server::truncate(day_raw)
            ))
        })?;
    let time = |name: &str, default: &'static str| -> Result<String, ErrorData> {
        let t = text_arg(args, name).unwrap_or(default);
        let ok = t.len() == 5
            && t.as_bytes()[2] == b':'
            && t[..2].parse::<u8>().is_ok_and(|h| h < 24)
            && t[3..].parse::<u8>().is_ok_and(|m| m < 60);
        if ok { Ok(t.to_owned()) } else { Err(invalid(format!("`{name}` must be a time like 08:30"))) }
    };
    let earliest = time("earliest", "08:00")?;
    let latest = time("latest", "11:00")?;
    let players = match text_arg(args, "players") {
        None => 4,
        Some(p) => p
            .parse::<u8>()
            .ok()
            .filter(|p| (1..=4).contains(p))
            .ok_or_else(|| invalid("`players` must be 1–4".into()))?,
    };
    let known = courses.iter().map(|c| format!("{} ({})", c.id, c.name)).collect::<Vec<_>>().join(", ");
    // Remind two days before: cron day-of-week is 1–7 = SUN–SAT.
    let day_index = DAYS.iter().position(|d| d == day).unwrap_or(6);
    let remind_dow = (day_index + 5) % 7 + 1;
    let text = format!(
        "I play golf every week on {day} at {course}, teeing off between {earliest} and {latest}, {players} \
         player(s). Please help me get this week's tee time:\n\
         1. Make sure the course is one rez knows (known courses: {known}); if not, ask me.\n\
         2. Work out the date of the coming {day}.\n\
         3. Call get_weather_forecast for the course (with days covering {day}) and tell me briefly what to expect.\n\
         4. Call golf_search_tee_times for that date, window_start {earliest}, window_end {latest}, players \
         {players}, and list the options.\n\
         5. Ask me which one to book. Only after I confirm, call golf_book_tee_time with players {players}, and \
         tell me the confirmation.\n\
         6. Offer to create a reminder with create_schedule: a notify target firing cron(0 18 ? * {remind_dow} *) \
         in my time zone, saying \"Book your {day} tee time at {course}\"."
    );
    Ok(GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
        .with_description(format!("This week's {day} tee time at {course}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn weekly_tee_time_fills_in_its_arguments() {
        let r = get(WEEKLY_TEE_TIME, &args(json!({"course": "birdsfoot", "day": "sun", "players": "2"})), &[]).unwrap();
        let text = serde_json::to_value(&r.messages[0]).unwrap()["content"]["text"].as_str().unwrap().to_owned();
        assert!(text.contains("every week on Sunday at birdsfoot"), "{text}");
        assert!(text.contains("players 2"), "{text}");
        assert!(text.contains("cron(0 18 ? * 6 *)"), "Friday is 6: {text}");
    }

    #[test]
    fn bad_arguments_are_invalid_params() {
        for a in [
            json!({}),
            json!({"course": "x", "day": "someday"}),
            json!({"course": "x", "players": "9"}),
            json!({"course": "x", "earliest": "8am"}),
        ] {
            assert!(get(WEEKLY_TEE_TIME, &args(a), &[]).is_err());
        }
        assert!(get("nope", &args(json!({"course": "x"})), &[]).is_err());
    }
}
