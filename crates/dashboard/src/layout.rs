//! The page shell: skip link, navigation (what the viewer's scope may reach), the signed-in
//! key and the sign-out form, the stylesheet and the script.

use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use crate::assets;
use crate::guard::Viewer;

/// The navigation entries: (path, label, admin only).
const NAV: &[(&str, &str, bool)] = &[
    ("/", "Overview", false),
    ("/messages", "Messages", false),
    ("/schedules", "Schedules", false),
    ("/dead-letters", "Dead letters", false),
    ("/notifications", "Notifications", false),
    ("/agent/runs", "Agent runs", false),
    ("/agent/chat", "Chat", false),
    ("/approvals", "Approvals", false),
    ("/courses", "Courses", false),
    ("/keys", "API keys", true),
];

fn head(title: &str) -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        title { (title) " · rez" }
        link rel="stylesheet" href=(assets::css_path());
        script src=(assets::js_path()) defer {}
    }
}

/// A whole page for a signed-in viewer; `current` is the nav path it belongs to.
pub fn page(viewer: &Viewer, current: &str, title: &str, body: Markup) -> Response {
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(title)) }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "rez" }
                    nav.main aria-label="Main" {
                        ul {
                            @for (path, label, admin) in NAV {
                                @if !admin || viewer.is_admin() {
                                    li { a href=(path) aria-current=[(*path == current).then_some("page")] { (label) } }
                                }
                            }
                        }
                    }
                    form method="post" action="/signout" {
                        span.who { (viewer.name) " (" (viewer.scope) ")" }
                        input type="hidden" name="csrf" value=(viewer.csrf);
                        button.secondary type="submit" { "Sign out" }
                    }
                }
                main #main { h1 { (title) } (body) }
            }
        }
    };
    Html(doc.into_string()).into_response()
}

/// A page with no navigation (sign-in, refusals).
pub fn bare(title: &str, body: impl maud::Render) -> Html<String> {
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(title)) }
            body { main #main.signin { h1 { (title) } (body) } }
        }
    };
    Html(doc.into_string())
}

/// The hidden CSRF field of a form.
pub fn csrf(viewer: &Viewer) -> Markup {
    html! { input type="hidden" name="csrf" value=(viewer.csrf); }
}

/// A one-button form posting to `action` (an action the viewer may take).
pub fn button(viewer: &Viewer, action: &str, label: &str, class: &str) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf(viewer))
            button type="submit" class=(class) { (label) }
        }
    }
}

/// A notice after a redirect, from a fixed list (`?done=...`).
pub fn notice(text: Option<&str>) -> Markup {
    html! { @if let Some(t) = text { p.notice role="status" { (t) } } }
}
