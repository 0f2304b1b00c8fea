//! Readable texts of golf results, for notifications and chat answers.
//!
//! The structured results are stored alongside; these texts are what a person reads on
//! their phone, so they name the course (the prior system printed "Reservations: at "
//! with the name missing), show every player count and price, and say plainly when
//! nothing was found.

use chrono::NaiveDateTime;

use super::booking::{BookingOutcome, BookingPath};
use super::client::SearchRequest;
use super::courses::Course;
use super::model::{Reservation, TeeTimeSlot};

fn when(t: &NaiveDateTime) -> String {
    t.format("%a, %b %-d at %-I:%M %p").to_string()
}

fn money(v: f64) -> String {
    format!("${v:.2}")
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Search results: up to `limit` tee times, earliest first.
pub fn tee_times_text(course: &Course, req: &SearchRequest, slots: &[TeeTimeSlot], limit: usize) -> String {
    let date = req.date.format("%a, %b %-d %Y");
    let window = match (req.window_start, req.window_end) {
        (Some(s), Some(e)) => format!(" between {} and {}", s.format("%-I:%M %p"), e.format("%-I:%M %p")),
        (Some(s), None) => format!(" from {}", s.format("%-I:%M %p")),
        (None, Some(e)) => format!(" until {}", e.format("%-I:%M %p")),
        (None, None) => String::new(),
    };
    let who = plural(usize::from(req.players), "player", "players");
    if slots.is_empty() {
        return format!(
            "⛳ {}\n\nNo tee times for {who}, {} holes, on {date}{window}.",
            course.name,
            req.holes.count()
        );
    }
    let mut out = format!("⛳ {} — tee times on {date}{window}\n{who}, {} holes\n", course.name, req.holes.count());
    for (i, s) in slots.iter().take(limit).enumerate() {
        out.push_str(&format!("\n{}. {}", i + 1, s.start_time.format("%-I:%M %p")));
        if let Some(p) = s.price {
            out.push_str(&format!(" — {} per player", money(p)));
        }
        out.push_str(&format!(" (tee sheet {})", s.tee_sheet_id));
    }
    if slots.len() > limit {
        out.push_str(&format!("\n… and {} more", slots.len() - limit));
    }
    out.push_str(&format!("\n\nFound {}.", plural(slots.len(), "tee time", "tee times")));
    out
}

/// Upcoming reservations: up to `limit`, earliest first.
pub fn reservations_text(course: &Course, reservations: &[Reservation], limit: usize) -> String {
    if reservations.is_empty() {
        return format!("⛳ {}\n\nNo upcoming reservations.", course.name);
    }
    let mut out = format!("⛳ Upcoming reservations at {}\n", course.name);
    for r in reservations.iter().take(limit) {
        out.push_str(&format!("\n• {}", when(&r.start_time)));
        if let Some(p) = r.players {
            out.push_str(&format!(" — {}", plural(usize::from(p), "player", "players")));
        }
        if let Some(k) = r.confirmation_key.as_deref().filter(|k| !k.is_empty()) {
            out.push_str(&format!(" — confirmation {k}"));
        }
    }
    if reservations.len() > limit {
        out.push_str(&format!("\n… and {} more", reservations.len() - limit));
    }
    out.push_str(&format!("\n\n{} in total.", plural(reservations.len(), "reservation", "reservations")));
    out
}

/// A booking confirmation.
pub fn booking_text(course: &Course, outcome: &BookingOutcome) -> String {
    let c = &outcome.confirmation;
    let mut out = format!("⛳ Tee time booked at {}!\n\n{}", course.name, when(&c.start_time));
    out.push_str(&format!("\n{}, {} holes", plural(usize::from(c.players), "player", "players"), c.holes));
    if !c.confirmation_key.is_empty() {
        out.push_str(&format!("\nConfirmation: {}", c.confirmation_key));
    }
    if let Some(id) = c.reservation_id {
        out.push_str(&format!("\nReservation ID: {id}"));
    }
    if let Some(t) = c.total {
        out.push_str(&format!("\nTotal: {}", money(t)));
    }
    if let Some(d) = c.total_due_at_course {
        out.push_str(&format!("\nDue at the course: {}", money(d)));
    }
    match outcome.path {
        BookingPath::Reserved => {}
        BookingPath::AlreadyConfirmed => out.push_str("\n\n(This booking was already made; nothing new was booked.)"),
        BookingPath::FoundInReservations => {
            out.push_str("\n\n(Confirmed from your reservations after an interrupted attempt.)");
        }
    }
    out
}
