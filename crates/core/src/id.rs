//! Identifiers. Every id is `<prefix>_<ULID>`: ASCII, URL-safe, unique, and sortable by
//! creation time (the ULID's first 48 bits are milliseconds since the epoch). They are
//! built only through [`new`](MessageId::new) or the checked [`parse`](MessageId::parse),
//! so an id held in a value is always well formed.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use ulid::Ulid;

use crate::error::ValidationError;
use crate::time::Timestamp;

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The prefix every id of this kind starts with, without the underscore.
            pub const PREFIX: &'static str = $prefix;

            /// A fresh id for something created at `at`.
            pub fn new(at: Timestamp) -> Self {
                let ms = u64::try_from(at.timestamp_millis()).unwrap_or(0);
                let ulid = Ulid::from_parts(ms, rand_u128());
                Self(format!("{}_{}", $prefix, ulid))
            }

            /// Checked constructor: `<prefix>_` followed by a valid 26-character ULID.
            pub fn parse(raw: &str) -> Result<Self, ValidationError> {
                let rest = raw.strip_prefix(concat!($prefix, "_")).ok_or_else(|| {
                    ValidationError::new(
                        "invalid_id",
                        "id",
                        format!("`{}` is not a {} id (expected `{}_<ULID>`)", truncate(raw), stringify!($name), $prefix),
                    )
                })?;
                let ulid = Ulid::from_string(rest).map_err(|_| {
                    ValidationError::new(
                        "invalid_id",
                        "id",
                        format!("`{}` is not a {} id (expected `{}_<ULID>`)", truncate(raw), stringify!($name), $prefix),
                    )
                })?;
                // Canonical (upper-case) form, so equal ids compare equal as strings. Ids
                // read back from storage are canonical already: those are copied as they are.
                let mut canonical = [0u8; ulid::ULID_LEN];
                if ulid.array_to_str(&mut canonical).as_bytes() == rest.as_bytes() {
                    return Ok(Self(raw.to_owned()));
                }
                Ok(Self(format!("{}_{}", $prefix, ulid)))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Milliseconds since the epoch at which this id was minted.
            pub fn timestamp_ms(&self) -> u64 {
                self.0[$prefix.len() + 1..]
                    .parse::<Ulid>()
                    .map(|u| u.timestamp_ms())
                    .unwrap_or(0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = ValidationError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some(concat!("^", $prefix, "_[0-9A-HJKMNP-TV-Z]{26}$")))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

prefixed_id!(
    /// Id of a message: `msg_<ULID>`.
    MessageId,
    "msg"
);
prefixed_id!(
    /// Id of a schedule: `sch_<ULID>`.
    ScheduleId,
    "sch"
);
prefixed_id!(
    /// Id of a stored web-action result: `res_<ULID>`.
    ResultId,
    "res"
);
prefixed_id!(
    /// Id of an API key: `key_<ULID>`.
    ApiKeyId,
    "key"
);
prefixed_id!(
    /// Id of one attempt at a golf booking (the owner of a ledger row's lease): `att_<ULID>`.
    AttemptId,
    "att"
);

prefixed_id!(
    /// Id of an agent run: `run_<ULID>`. A run fired from a message (a schedule's, the
    /// API's) has the ULID of its `agent_response` message, so each message is one run.
    RunId,
    "run"
);
prefixed_id!(
    /// Id of an agent chat session: `chs_<ULID>`.
    ChatSessionId,
    "chs"
);

prefixed_id!(
    /// Id of an approval a run waits for: `apr_<ULID>`.
    ApprovalId,
    "apr"
);

impl RunId {
    /// The run an `agent_response` message carries out: the message's own ULID.
    pub fn for_message(message: &MessageId) -> Self {
        Self(format!("run_{}", &message.as_str()[MessageId::PREFIX.len() + 1..]))
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

fn rand_u128() -> u128 {
    // ULID randomness: 80 bits. `Ulid::new` would read the system clock itself; we take
    // the time from the caller's clock and only the random part from ulid.
    Ulid::new().random()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    #[test]
    fn ids_are_ascii_and_sort_by_time() {
        let t1 = chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let t2 = t1 + chrono::Duration::milliseconds(1);
        let a = MessageId::new(t1);
        let b = MessageId::new(t2);
        assert!(a.as_str().is_ascii());
        assert!(a < b, "{a} < {b}");
        assert_eq!(a.as_str().len(), 4 + 26);
        assert_eq!(a.timestamp_ms(), u64::try_from(t1.timestamp_millis()).unwrap());
    }

    #[test]
    fn parse_round_trips_and_rejects_garbage() {
        let id = MessageId::new(chrono::Utc::now());
        assert_eq!(MessageId::parse(id.as_str()).unwrap(), id);
        assert_eq!(MessageId::parse(&id.as_str().to_lowercase()).unwrap(), id);
        for bad in ["", "msg_", "msg_123", "sch_01ARZ3NDEKTSV4RRFFQ69G5FAV", "msg_01ARZ3NDEKTSV4RRFFQ69G5FAVX", "msg_񕬘"]
        {
            assert!(MessageId::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".*") {
            let _ = MessageId::parse(&s);
        }

        #[test]
        fn later_ms_sorts_later(a in 0i64..4_000_000_000_000, d in 1i64..1_000_000) {
            let t1 = chrono::Utc.timestamp_millis_opt(a).unwrap();
            let t2 = chrono::Utc.timestamp_millis_opt(a + d).unwrap();
            prop_assert!(MessageId::new(t1) < MessageId::new(t2));
        }
    }
}
