//! The signed session cookie and the CSRF tokens bound to it.
//!
//! A cookie is `<subject>.<expiry unix seconds>.<nonce>.<HMAC>`: the subject is the signed-in key's
//! id (never the key itself) or `admin` for the `REZ_API_KEY` admin key, whose hash is
//! mixed into that session's MAC so a changed admin key ends its sessions. The MAC is
//! HMAC-SHA256 under the dashboard's 32-byte secret; the random nonce makes each
//! sign-in its own session (and its own CSRF token). A form's CSRF token is the HMAC of
//! the whole cookie value under the same secret with another label, so it is valid only
//! with the session it was issued for.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rez_core::auth::ApiKeyId;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The cookie's name.
pub const COOKIE: &str = "rez_session";
/// How long a session lasts from sign-in.
pub const LIFETIME_SECS: i64 = 12 * 3600;
/// The subject of a session of the `REZ_API_KEY` admin key.
const ADMIN_SUBJECT: &str = "admin";

/// The 32-byte key every session and CSRF token is signed with.
#[derive(Clone)]
pub struct SessionSecret([u8; 32]);

impl SessionSecret {
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The secret every instance of a deployment derives from its admin key (SHA-256 of
    /// the key, domain-separated): Lambda instances share no file, so they share this.
    /// Changing the admin key ends every session.
    pub fn derived_from_admin_key(admin_key: &str) -> Self {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"rez dashboard session secret\0");
        h.update(admin_key.as_bytes());
        Self(h.finalize().into())
    }

    /// A fresh random secret (sessions end when it is dropped).
    pub fn random() -> Self {
        use rand::RngCore;
        let mut b = [0u8; 32];
        rand::rng().fill_bytes(&mut b);
        Self(b)
    }

    fn mac(&self, label: &str, parts: &[&[u8]]) -> [u8; 32] {
        // A 32-byte key is always a valid HMAC key; `new_from_slice` cannot fail here.
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!());
        m.update(label.as_bytes());
        for p in parts {
            m.update(&(p.len() as u64).to_be_bytes());
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for SessionSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionSecret(..)")
    }
}

/// Who a session belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Key(ApiKeyId),
    Admin,
}

/// A verified, unexpired session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub subject: Subject,
    pub expires: i64,
    /// The cookie value it came from (the CSRF tokens are bound to it).
    pub cookie: String,
}

/// Sign a session for `subject` expiring at `expires` (unix seconds). `admin_hash` is
/// the SHA-256 of the configured admin key (only for [`Subject::Admin`]).
pub fn issue(secret: &SessionSecret, subject: &Subject, expires: i64, admin_hash: Option<&[u8; 32]>) -> String {
    use rand::RngCore;
    let name = subject_str(subject);
    let exp = expires.to_string();
    let mut nonce = [0u8; 12];
    rand::rng().fill_bytes(&mut nonce);
    let nonce = URL_SAFE_NO_PAD.encode(nonce);
    let mac = secret
        .mac("session", &[name.as_bytes(), exp.as_bytes(), nonce.as_bytes(), admin_hash.map_or(&[][..], |h| &h[..])]);
    format!("{name}.{exp}.{nonce}.{}", URL_SAFE_NO_PAD.encode(mac))
}

fn subject_str(subject: &Subject) -> &str {
    match subject {
        Subject::Key(id) => id.as_str(),
        Subject::Admin => ADMIN_SUBJECT,
    }
}

/// Check a cookie value: its MAC, its expiry against `now` (unix seconds).
pub fn verify(secret: &SessionSecret, value: &str, now: i64, admin_hash: Option<&[u8; 32]>) -> Option<Session> {
    let mut parts = value.split('.');
    let (name, exp, nonce, mac) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let subject = if name == ADMIN_SUBJECT {
        admin_hash?;
        Subject::Admin
    } else {
        Subject::Key(ApiKeyId::parse(name).ok()?)
    };
    let expires: i64 = exp.parse().ok()?;
    let given = URL_SAFE_NO_PAD.decode(mac).ok()?;
    let hash = if subject == Subject::Admin { admin_hash } else { None };
    let want =
        secret.mac("session", &[name.as_bytes(), exp.as_bytes(), nonce.as_bytes(), hash.map_or(&[][..], |h| &h[..])]);
    if !bool::from(want.as_slice().ct_eq(&given)) || expires <= now {
        return None;
    }
    Some(Session { subject, expires, cookie: value.to_owned() })
}

/// The CSRF token of a session.
pub fn csrf_token(secret: &SessionSecret, session: &Session) -> String {
    URL_SAFE_NO_PAD.encode(secret.mac("csrf", &[session.cookie.as_bytes()]))
}

/// Whether `token` is the CSRF token of `session`.
pub fn csrf_matches(secret: &SessionSecret, session: &Session, token: &str) -> bool {
    let want = csrf_token(secret, session);
    bool::from(want.as_bytes().ct_eq(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_id() -> ApiKeyId {
        ApiKeyId::new(chrono::Utc::now())
    }

    #[test]
    fn a_secret_derived_from_the_admin_key_is_the_same_everywhere_and_only_for_that_key() {
        use sha2::Digest;
        let a = SessionSecret::derived_from_admin_key("admin-key-0123456789");
        assert_eq!(a.0, SessionSecret::derived_from_admin_key("admin-key-0123456789").0);
        assert_ne!(a.0, SessionSecret::derived_from_admin_key("admin-key-0123456788").0);
        let bare: [u8; 32] = sha2::Sha256::digest(b"admin-key-0123456789").into();
        assert_ne!(a.0, bare, "not the key's bare hash");
    }

    #[test]
    fn two_sign_ins_are_two_sessions() {
        let s = SessionSecret::random();
        let sub = Subject::Key(key_id());
        assert_ne!(issue(&s, &sub, 1000, None), issue(&s, &sub, 1000, None));
    }

    #[test]
    fn a_session_round_trips_and_expires() {
        let s = SessionSecret::random();
        let sub = Subject::Key(key_id());
        let c = issue(&s, &sub, 1000, None);
        let v = verify(&s, &c, 999, None).expect("valid");
        assert_eq!(v.subject, sub);
        assert!(verify(&s, &c, 1000, None).is_none(), "expired at its expiry");
        assert!(verify(&SessionSecret::random(), &c, 999, None).is_none(), "another secret");
    }

    #[test]
    fn a_tampered_cookie_is_refused() {
        let s = SessionSecret::random();
        let c = issue(&s, &Subject::Key(key_id()), 1000, None);
        let longer = c.replacen(".1000.", ".999999.", 1);
        assert!(verify(&s, &longer, 999, None).is_none());
        let other = issue(&s, &Subject::Key(key_id()), 1000, None);
        let (mac, _) = (other.rsplit_once('.').expect("mac").1, ());
        let swapped = format!("{}.{mac}", c.rsplit_once('.').expect("mac").0);
        assert!(verify(&s, &swapped, 999, None).is_none());
        assert!(verify(&s, "garbage", 0, None).is_none());
    }

    #[test]
    fn an_admin_session_ends_when_the_admin_key_changes() {
        let s = SessionSecret::random();
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let c = issue(&s, &Subject::Admin, 1000, Some(&a));
        assert!(verify(&s, &c, 0, Some(&a)).is_some());
        assert!(verify(&s, &c, 0, Some(&b)).is_none());
        assert!(verify(&s, &c, 0, None).is_none(), "no admin key configured any more");
    }

    #[test]
    fn a_csrf_token_is_bound_to_its_session() {
        let s = SessionSecret::random();
        let one = verify(&s, &issue(&s, &Subject::Key(key_id()), 1000, None), 0, None).expect("one");
        let two = verify(&s, &issue(&s, &Subject::Key(key_id()), 1000, None), 0, None).expect("two");
        let t = csrf_token(&s, &one);
        assert!(csrf_matches(&s, &one, &t));
        assert!(!csrf_matches(&s, &two, &t));
        assert!(!csrf_matches(&s, &one, ""));
    }
}
