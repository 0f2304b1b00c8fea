//! MCP session ids bound to the key that opened them, verifiable without memory.
//!
//! rmcp issues a session id `X`; the client is given `X_<mac>`, where `mac` is the first
//! 16 bytes of HMAC-SHA-256 keyed with the bearer key that made the `initialize`, over
//! `X`, in hex. On every later request the guard recomputes the MAC with the key that
//! request presents: a different key (or a forged id) does not verify and gets `404`, as
//! for an unknown session. Nothing is stored, so a bound id this process does not hold
//! (after a restart, or on another instance) is still restored on the spot, for its own
//! key only. The MAC reveals nothing about the key.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Hex characters of the MAC (16 bytes).
const MAC_HEX: usize = 32;

fn mac(key: &[u8], inner: &str) -> Hmac<Sha256> {
    // HMAC takes a key of any length; this cannot fail.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC accepts any key"));
    m.update(inner.as_bytes());
    m
}

/// The id the client sees for rmcp's session `inner`, opened with `key`.
pub fn bind(inner: &str, key: &[u8]) -> String {
    let tag = mac(key, inner).finalize().into_bytes();
    format!("{inner}_{}", hex::encode(&tag[..MAC_HEX / 2]))
}

/// rmcp's session id inside `outer`, if `outer` was bound to `key`.
pub fn unbind(outer: &str, key: &[u8]) -> Option<String> {
    let (inner, tag) = outer.rsplit_once('_')?;
    if inner.is_empty() || tag.len() != MAC_HEX {
        return None;
    }
    let tag = hex::decode(tag).ok()?;
    // Constant-time comparison of the truncated tag.
    mac(key, inner).verify_truncated_left(&tag).ok()?;
    Some(inner.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_verifies_only_with_its_own_key() {
        let id = bind("1b671a64-40d5-491e-99b0-da01ff1f3341", b"rez_key_a");
        assert_eq!(unbind(&id, b"rez_key_a").as_deref(), Some("1b671a64-40d5-491e-99b0-da01ff1f3341"));
        assert_eq!(unbind(&id, b"rez_key_b"), None);
        assert_eq!(unbind("1b671a64-40d5-491e-99b0-da01ff1f3341", b"rez_key_a"), None);
        let mut forged = id.clone();
        forged.replace_range(id.len() - 1.., if id.ends_with('0') { "1" } else { "0" });
        assert_eq!(unbind(&forged, b"rez_key_a"), None);
        assert_eq!(unbind("_", b"k"), None);
    }
}
