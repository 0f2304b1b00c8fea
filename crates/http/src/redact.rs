//! Redaction at the client boundary: nothing that leaves this crate in an error message or
//! a log line may carry a secret (SPEC §6.1).
//!
//! Secrets travel in three places: the `Authorization` (and similar) headers, query
//! parameters such as `?token=` or `?api_key=`, and `user:password@` in URLs. The
//! [`Redactor`] masks all three, also inside free text such as an underlying library's
//! error message.

use reqwest::header::{HeaderMap, HeaderName};
use url::Url;

/// What replaces a secret.
pub const MASK: &str = "[REDACTED]";

/// Header names whose values are always masked.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-auth-token",
    "x-amz-security-token",
];

/// Query parameter names are masked when they contain one of these (case-insensitive).
const SECRET_PARAM_PARTS: &[&str] =
    &["token", "key", "secret", "password", "passwd", "pwd", "auth", "signature", "credential", "session", "sig"];

/// Masks secrets in URLs, headers and free text.
#[derive(Debug, Clone, Copy, Default)]
pub struct Redactor;

impl Redactor {
    /// Whether a query parameter called `name` holds a secret.
    pub fn is_secret_param(name: &str) -> bool {
        let lower = name.to_ascii_lowercase();
        SECRET_PARAM_PARTS.iter().any(|p| lower.contains(p))
    }

    /// Whether header `name` holds a secret.
    pub fn is_secret_header(name: &HeaderName) -> bool {
        SECRET_HEADERS.contains(&name.as_str())
    }

    /// `url` with userinfo removed and secret query values masked.
    pub fn url(&self, url: &Url) -> String {
        let mut u = url.clone();
        if !u.username().is_empty() || u.password().is_some() {
            // Both calls only fail for URLs that cannot have credentials at all.
            let _ = u.set_username("");
            let _ = u.set_password(None);
        }
        if let Some(query) = u.query() {
            let masked: Vec<String> = query
                .split('&')
                .map(|pair| {
                    let (raw_key, _) = pair.split_once('=').unwrap_or((pair, ""));
                    let key = url::form_urlencoded::parse(raw_key.as_bytes())
                        .next()
                        .map(|(k, _)| k.into_owned())
                        .unwrap_or_default();
                    if Self::is_secret_param(&key) { format!("{raw_key}={MASK}") } else { pair.to_owned() }
                })
                .collect();
            u.set_query(Some(&masked.join("&")));
        }
        u.to_string()
    }

    /// A copy of `headers` with secret values masked, for logging.
    pub fn headers(&self, headers: &HeaderMap) -> Vec<(String, String)> {
        headers
            .iter()
            .map(|(k, v)| {
                let v = if Self::is_secret_header(k) {
                    MASK.to_owned()
                } else {
                    String::from_utf8_lossy(v.as_bytes()).into_owned()
                };
                (k.as_str().to_owned(), v)
            })
            .collect()
    }

    /// A URL whose path is itself a credential (a public ntfy topic: whoever knows it can
    /// read and post): only its scheme, host and port, with the path masked.
    pub fn origin_only(&self, raw: &str) -> String {
        match Url::parse(raw.trim()) {
            Ok(u) if u.host_str().is_some() => {
                let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
                format!("{}://{}{port}/{MASK}", u.scheme(), u.host_str().unwrap_or_default())
            }
            _ => MASK.to_owned(),
        }
    }

    /// Mask secrets in free text: every `http(s)://` URL in it is passed through
    /// [`Redactor::url`], and `Bearer …` / `Basic …` credentials are masked.
    pub fn text(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(pos) = find_url_start(rest) {
            out.push_str(&rest[..pos]);
            let tail = &rest[pos..];
            let end = tail
                .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`' | ')'))
                .unwrap_or(tail.len());
            let candidate = &tail[..end];
            match Url::parse(candidate) {
                Ok(u) => out.push_str(&self.url(&u)),
                // Not parseable: keep only the scheme and host-ish part, drop the rest.
                Err(_) => out.push_str(&candidate[..candidate.find(['?', '@']).unwrap_or(candidate.len())]),
            }
            rest = &tail[end..];
        }
        out.push_str(rest);
        mask_auth_schemes(&out)
    }
}

fn find_url_start(s: &str) -> Option<usize> {
    let lower = s.to_ascii_lowercase();
    match (lower.find("http://"), lower.find("https://")) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `Bearer abc` → `Bearer [REDACTED]`, same for `Basic`.
fn mask_auth_schemes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut words = s.split_inclusive(char::is_whitespace).peekable();
    while let Some(w) = words.next() {
        out.push_str(w);
        let bare = w.trim_end();
        let is_scheme = bare.eq_ignore_ascii_case("bearer") || bare.eq_ignore_ascii_case("basic");
        if is_scheme
            && w.len() > bare.len()
            && let Some(next) = words.next()
        {
            out.push_str(MASK);
            out.push_str(&next[next.trim_end().len()..]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{AUTHORIZATION, HeaderValue};

    #[test]
    fn url_userinfo_and_params() {
        let u = Url::parse("https://user:hunter2@api.example.com/p?q=golf&token=abc&API_KEY=k&client_secret=s&page=2")
            .expect("url");
        let r = Redactor.url(&u);
        assert!(!r.contains("hunter2") && !r.contains("user@"), "{r}");
        assert!(!r.contains("abc") && !r.contains("=k&") && !r.contains("=s&"), "{r}");
        assert!(r.contains("q=golf") && r.contains("page=2"), "{r}");
        assert!(r.starts_with("https://api.example.com/p?"), "{r}");
        assert!(r.contains("token=[REDACTED]"), "{r}");
    }

    #[test]
    fn origin_only_hides_the_path() {
        assert_eq!(Redactor.origin_only("https://ntfy.sh/my-secret-topic"), format!("https://ntfy.sh/{MASK}"));
        assert_eq!(Redactor.origin_only("http://10.0.0.5:8090/a/b"), format!("http://10.0.0.5:8090/{MASK}"));
        assert_eq!(Redactor.origin_only("not a url /secret"), MASK);
    }

    #[test]
    fn headers_masked() {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer tk_secret"));
        h.insert("x-title", HeaderValue::from_static("hello"));
        let v = Redactor.headers(&h);
        assert!(v.iter().any(|(k, v)| k == "authorization" && v == MASK));
        assert!(v.iter().any(|(k, v)| k == "x-title" && v == "hello"));
    }

    #[test]
    fn free_text() {
        let t = "error sending request for url (https://u:pw@ntfy.sh/topic?auth=xyz): Authorization: Bearer tk_abc123 rejected";
        let r = Redactor.text(t);
        assert!(!r.contains("pw@") && !r.contains("xyz") && !r.contains("tk_abc123"), "{r}");
        assert!(r.contains("ntfy.sh/topic"), "{r}");
        assert_eq!(Redactor.text("Basic dXNlcjpwYXNz"), format!("Basic {MASK}"));
        assert_eq!(Redactor.text("no secrets here"), "no secrets here");
    }
}
