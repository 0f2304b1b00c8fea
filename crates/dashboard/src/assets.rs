//! The stylesheet and the one script, compiled into the binary and served under a path
//! that carries their content hash, so browsers may cache them for a year.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

const CSS: &[u8] = include_bytes!("../assets/app.css");
const JS: &[u8] = include_bytes!("../assets/app.js");

struct Asset {
    /// `app.<hash>.css`
    name: String,
    bytes: &'static [u8],
    content_type: &'static str,
}

fn named(stem: &str, ext: &str, bytes: &'static [u8], content_type: &'static str) -> Asset {
    let hash = hex::encode(&Sha256::digest(bytes)[..6]);
    Asset { name: format!("{stem}.{hash}.{ext}"), bytes, content_type }
}

static ASSETS: LazyLock<[Asset; 2]> = LazyLock::new(|| {
    [named("app", "css", CSS, "text/css; charset=utf-8"), named("app", "js", JS, "text/javascript; charset=utf-8")]
});

/// The path of the stylesheet.
pub fn css_path() -> String {
    format!("/assets/{}", ASSETS[0].name)
}

/// The path of the script.
pub fn js_path() -> String {
    format!("/assets/{}", ASSETS[1].name)
}

pub async fn serve(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(a.content_type)),
                (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable")),
            ],
            a.bytes,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
