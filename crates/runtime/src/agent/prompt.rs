//! The system prompt of a run: the date and time in the user's zone, the courses, the
//! standing rules, and what this run may do. Built from the run and the clock only, so a
//! resumed run is told the same rules (the time is the time of each request).

use std::fmt::Write;

use chrono_tz::Tz;
use rez_core::agent::AgentRequest;
use rez_core::agent::approval::ApprovalPolicy;
use rez_core::time::{Timestamp, rfc3339};

use crate::tools::CourseInfo;

/// The system prompt for `request` at `now`.
pub fn system_prompt(request: &AgentRequest, courses: &[CourseInfo], zone: Tz, now: Timestamp) -> String {
    let local = now.with_timezone(&zone);
    let mut p = String::with_capacity(2048);
    p.push_str(
        "You are rez, an assistant that acts for its user with the tools you are given: tee times at the golf \
         courses below (search, reservations, booking), NOAA weather forecasts, push notifications and schedules. \
         Use the tools to find facts; never guess a tee time, a price or a forecast.\n\n",
    );
    let _ = writeln!(p, "Now: {} ({}; {} UTC).", local.format("%A %-d %B %Y, %H:%M"), zone.name(), rfc3339(&now));
    p.push_str("\nCourses (pass the id as `course`):\n");
    for c in courses {
        let _ = writeln!(p, "- {}: {}, {} (time zone {})", c.id, c.name, c.address, c.time_zone);
    }
    p.push_str(
        "\nStanding rules:\n\
         1. Do not book a tee time if its forecast shows rain, thunderstorms, snow or wind above 20 mph, unless \
         the user said to book anyway. Look at the forecast for the tee time first.\n\
         2. Never make a second booking on a day that already has one: look at golf_get_reservations first.\n\
         3. Book only what the user asked for (course, day, time window, players), and at most one tee time.\n\
         4. When you finish, say exactly what was done: course, date, time, players and confirmation — or that \
         nothing was booked, and why. rez pushes your final answer to the user's phone: do not send a push \
         notification about the outcome yourself.\n",
    );
    if request.approval == ApprovalPolicy::Required {
        p.push_str(
            "5. Bookings and schedule changes wait for the user's approval: call the tool when you are sure; rez \
             asks the user and tells you the answer. Do not ask for permission in text.\n",
        );
    } else if !request.auto_book {
        p.push_str(
            "5. This run may not book: find the best tee time and propose it in your answer. The booking tool is \
             not available.\n",
        );
    }
    if request.course.is_some() || request.players.is_some() {
        p.push_str("\nThis task: ");
        if let Some(c) = &request.course {
            let _ = write!(p, "course {c}. ");
        }
        if let Some(n) = request.players {
            let _ = write!(p, "{n} player{}. ", if n == 1 { "" } else { "s" });
        }
        p.push('\n');
    }
    p
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn the_prompt_names_the_local_time_the_courses_and_the_rules() {
        let req = AgentRequest {
            prompt: "x".into(),
            course: Some("birdsfoot".into()),
            players: Some(4),
            auto_book: false,
            notify: true,
            approval: Default::default(),
        };
        let course = CourseInfo {
            id: "birdsfoot".into(),
            name: "Birdsfoot Golf Course".into(),
            address: "Freeport, PA".into(),
            description: None,
            latitude: 40.6,
            longitude: -79.7,
            time_zone: "America/New_York".into(),
        };
        let now = chrono::Utc.with_ymd_and_hms(2026, 12, 5, 23, 0, 0).unwrap();
        let p = system_prompt(&req, &[course], chrono_tz::America::New_York, now);
        assert!(p.contains("Saturday 5 December 2026, 18:00 (America/New_York; 2026-12-05T23:00:00.000Z UTC)"), "{p}");
        assert!(p.contains("- birdsfoot: Birdsfoot Golf Course"));
        assert!(p.contains("may not book"));
        assert!(p.contains("course birdsfoot. 4 players."));
        let p = system_prompt(&AgentRequest { auto_book: true, ..req }, &[], Tz::UTC, now);
        assert!(!p.contains("may not book"));
    }
}
