//! Times on a page: a `<time>` element in UTC that the script shows in the viewer's zone,
//! with the UTC form kept on hover (its title).

use chrono::{DateTime, SecondsFormat, Utc};
use maud::{Markup, html};

pub fn at(t: DateTime<Utc>) -> Markup {
    let utc = t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    html! { time datetime=(t.to_rfc3339_opts(SecondsFormat::Secs, true)) title=(utc) { (utc) } }
}

pub fn maybe(t: Option<DateTime<Utc>>) -> Markup {
    match t {
        Some(t) => at(t),
        None => html! { span.muted { "—" } },
    }
}
