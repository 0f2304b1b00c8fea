//! Timestamps. Every timestamp in rez_agent is UTC and serialises as RFC 3339 with
//! millisecond precision, everywhere (the prior system mixed Unix-seconds strings in).

use chrono::{DateTime, SecondsFormat, Utc};

/// The one timestamp type of the domain.
pub type Timestamp = DateTime<Utc>;

/// RFC 3339, UTC, millisecond precision, `Z` suffix: `2026-11-26T23:56:16.123Z`.
pub fn rfc3339(t: &Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Serde helpers so that every `Timestamp` field serialises the same way.
pub mod serde_rfc3339 {
    use super::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let raw = String::deserialize(d)?;
        chrono::DateTime::parse_from_rfc3339(&raw)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// Same as [`serde_rfc3339`] for optional fields.
pub mod serde_rfc3339_opt {
    use super::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&super::rfc3339(t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        let raw = Option::<String>::deserialize(d)?;
        raw.map(|r| {
            chrono::DateTime::parse_from_rfc3339(&r)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn formats_with_millis_and_z() {
        let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(rfc3339(&t), "2026-01-02T03:04:05.000Z");
    }
}
