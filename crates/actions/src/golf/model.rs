//! cps.golf wire types (prior-system §5.4) and the structured results built from them.
//!
//! Wire structs mirror the JSON the cps.golf online-reservation API sends and expects,
//! field for field (camelCase), so a change in the API shows up here and nowhere else.
//! Answers are parsed leniently (unknown fields ignored, optional fields optional, times
//! with or without an offset) because the API is undocumented; requests are built exactly.
//! The public result types ([`TeeTimeSlot`], [`Reservation`], …) are what the rest of
//! rez_agent stores and renders.

use chrono::{DateTime, FixedOffset, NaiveDateTime};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Local course time as cps.golf writes it (`2025-06-14T08:10:00`), tolerating
/// fractional seconds and an offset (which is dropped: times are course-local).
pub(crate) fn parse_local_time(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M"))
        .ok()
        .or_else(|| DateTime::<FixedOffset>::parse_from_rfc3339(s).ok().map(|d| d.naive_local()))
}

fn de_local_time<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDateTime, D::Error> {
    let s = String::deserialize(d)?;
    parse_local_time(&s).ok_or_else(|| serde::de::Error::custom(format!("invalid local time {s:?}")))
}

fn de_opt_local_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDateTime>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    Ok(s.as_deref().and_then(parse_local_time))
}

/// A string, a number or null, as text (ids and keys arrive in either form).
fn de_opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) if !s.is_empty() => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// A number or a numeric string.
fn de_opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

// ---- token endpoint ----------------------------------------------------------------------

#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    pub access_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

#[derive(Deserialize)]
pub(crate) struct TokenErrorBody {
    pub error: Option<String>,
    pub error_description: Option<String>,
}

// ---- TeeTimes ------------------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireItemPrice {
    #[serde(default)]
    pub sh_item_code: Option<String>,
    #[serde(default)]
    pub price: Option<f64>,
    #[serde(default)]
    pub current_price: Option<f64>,
    #[serde(default)]
    pub item_desc: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireTeeTime {
    pub tee_sheet_id: i64,
    #[serde(deserialize_with = "de_local_time")]
    pub start_time: NaiveDateTime,
    #[serde(default)]
    pub course_name: Option<String>,
    #[serde(default)]
    pub holes: Option<u8>,
    #[serde(default)]
    pub default_holes: Option<u8>,
    #[serde(default)]
    pub holes_display: Option<String>,
    #[serde(default)]
    pub min_player: Option<u8>,
    #[serde(default)]
    pub max_player: Option<u8>,
    #[serde(default)]
    pub sh_item_prices: Vec<WireItemPrice>,
}

// ---- LockTeeTimes ----------------------------------------------------------------------------

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LockRequest<'a> {
    pub tee_sheet_ids: [i64; 1],
    pub email: &'a str,
    pub action: &'static str,
    pub session_id: &'a str,
    pub golfer_id: i64,
    pub class_code: &'a str,
    pub number_of_player: u8,
    pub navigate_url: &'static str,
    pub is_group_booking: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LockResponse {
    #[serde(default)]
    pub tee_sheet_ids: Option<Vec<i64>>,
    #[serde(default, deserialize_with = "de_opt_text")]
    pub session_id: Option<String>,
    #[serde(default, deserialize_with = "de_opt_text")]
    pub error: Option<String>,
    #[serde(default, deserialize_with = "de_opt_text")]
    pub warning: Option<String>,
}

// ---- TeeTimePricesCalculation ----------------------------------------------------------------

/// One participant of a pricing request. Participant 1 is the account holder; the others
/// are unassigned players booked under the same account (`isUnAssignedPlayer: true`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BookingListItem<'a> {
    pub tee_sheet_id: i64,
    pub holes: u8,
    pub participant_no: u8,
    pub golfer_id: i64,
    pub rate_code: &'a str,
    pub is_un_assigned_player: bool,
    pub member_class_code: &'a str,
    pub member_store_id: String,
    pub cart_type: u8,
    pub player_id: &'static str,
    pub acct: &'a str,
    pub is_guest_of: bool,
    pub is_use_capacity_pricing: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PriceRequest<'a> {
    pub selected_tee_sheet_id: i64,
    pub booking_list: Vec<BookingListItem<'a>>,
    pub holes: u8,
    pub number_of_player: u8,
    pub number_of_rider: u8,
    pub cart_type: u8,
    pub coupon: Option<()>,
    pub deposit_type: u8,
    pub deposit_amount: u8,
    pub selected_value_package_code: Option<()>,
    pub is_use_capacity_pricing: bool,
    pub third_party_id: Option<()>,
    pub ibx_card_on_file: Option<()>,
    pub transaction_id: Option<()>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SummaryDetail {
    #[serde(default)]
    pub sub_total: Option<f64>,
    #[serde(default)]
    pub total: Option<f64>,
    #[serde(default)]
    pub total_due_at_course: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PriceResponse {
    /// Kept as sent (a GUID string or a number) and echoed in the reserve body.
    #[serde(default)]
    pub transaction_id: Option<Value>,
    #[serde(default, deserialize_with = "de_opt_local_time")]
    pub start_time: Option<NaiveDateTime>,
    #[serde(default)]
    pub course_name: Option<String>,
    #[serde(default)]
    pub holes: Option<u8>,
    #[serde(default)]
    pub summary_detail: Option<SummaryDetail>,
}

// ---- ReserveTeeTimes -------------------------------------------------------------------------

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreditCardInfo<'a> {
    pub card_number: Option<()>,
    pub card_holder: Option<()>,
    #[serde(rename = "expireMM")]
    pub expire_mm: Option<()>,
    #[serde(rename = "expireYY")]
    pub expire_yy: Option<()>,
    pub cvv: Option<()>,
    pub email: &'a str,
    pub card_token: Option<()>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FinalizeSaleModel<'a> {
    pub acct: &'a str,
    pub player_id: u8,
    pub is_guest: bool,
    pub credit_card_info: CreditCardInfo<'a>,
    #[serde(rename = "monerisCC")]
    pub moneris_cc: Option<()>,
    #[serde(rename = "ibxCC")]
    pub ibx_cc: Option<()>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReserveRequest<'a> {
    pub cancel_reservation_link: String,
    pub home_page_link: String,
    pub affiliate_id: Option<()>,
    pub finalize_sale_model: FinalizeSaleModel<'a>,
    pub session_guid: Option<()>,
    pub locked_tee_times_session_id: &'a str,
    pub transaction_id: &'a Value,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReserveResponse {
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub reservation_id: Option<i64>,
    #[serde(default)]
    pub booking_ids: Option<Vec<Value>>,
    #[serde(default, deserialize_with = "de_opt_text")]
    pub confirmation_key: Option<String>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub reservation_result: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_text")]
    pub message: Option<String>,
}

// ---- UpcomingReservation ---------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireReservation {
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub reservation_id: Option<i64>,
    #[serde(deserialize_with = "de_local_time")]
    pub start_time: NaiveDateTime,
    #[serde(default)]
    pub course_name: Option<String>,
    #[serde(default)]
    pub number_of_player: Option<u8>,
    #[serde(default, deserialize_with = "de_opt_text")]
    pub reservation_confirm_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReservationPage {
    #[serde(default)]
    pub items: Vec<WireReservation>,
    #[serde(default)]
    pub total_pages: Option<u32>,
}

// ---- public results ---------------------------------------------------------------------------

/// Number of holes to play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum Holes {
    Nine,
    Eighteen,
}

impl Holes {
    pub fn count(self) -> u8 {
        match self {
            Holes::Nine => 9,
            Holes::Eighteen => 18,
        }
    }
}

impl TryFrom<u8> for Holes {
    type Error = String;
    fn try_from(v: u8) -> Result<Self, String> {
        match v {
            9 => Ok(Holes::Nine),
            18 => Ok(Holes::Eighteen),
            _ => Err(format!("holes must be 9 or 18, not {v}")),
        }
    }
}

impl From<Holes> for u8 {
    fn from(h: Holes) -> u8 {
        h.count()
    }
}

/// A bookable tee time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeeTimeSlot {
    pub tee_sheet_id: i64,
    /// Course-local start.
    pub start_time: NaiveDateTime,
    pub course_name: String,
    /// Holes the slot can be played for (`[9, 18]`, `[18]`).
    pub holes: Vec<u8>,
    pub min_players: u8,
    pub max_players: u8,
    /// The 18-hole (or else the first) green fee.
    pub price: Option<f64>,
    pub price_description: Option<String>,
}

/// A reservation of the signed-in golfer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reservation {
    pub reservation_id: Option<i64>,
    pub start_time: NaiveDateTime,
    pub course_name: String,
    pub players: Option<u8>,
    pub confirmation_key: Option<String>,
}

/// A tee time held by `LockTeeTimes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockedTeeTime {
    pub tee_sheet_id: i64,
    pub session_id: String,
    pub players: u8,
}

/// The price of a locked tee time, from `TeeTimePricesCalculation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PricedTeeTime {
    pub transaction_id: Value,
    pub start_time: Option<NaiveDateTime>,
    pub course_name: Option<String>,
    pub holes: u8,
    pub players: u8,
    pub sub_total: Option<f64>,
    pub total: Option<f64>,
    pub total_due_at_course: Option<f64>,
}

/// What `ReserveTeeTimes` answered on success.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReservationReceipt {
    /// None when cps.golf confirmed (`reservationResult: 1`) without naming the
    /// reservation: the reservations list then tells which one it is.
    pub reservation_id: Option<i64>,
    pub confirmation_key: String,
    pub booking_ids: Vec<String>,
}

impl WireTeeTime {
    /// Holes the slot offers: from `holesDisplay` ("9/18") when present, else `holes`.
    pub(crate) fn offered_holes(&self) -> Vec<u8> {
        let mut out: Vec<u8> = self
            .holes_display
            .as_deref()
            .unwrap_or_default()
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|s| s.parse::<u8>().ok())
            .filter(|h| matches!(h, 9 | 18))
            .collect();
        if out.is_empty() {
            out.extend(self.holes.or(self.default_holes));
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    pub(crate) fn into_slot(self, fallback_course_name: &str) -> TeeTimeSlot {
        let holes = self.offered_holes();
        let price_item = self
            .sh_item_prices
            .iter()
            .find(|p| p.sh_item_code.as_deref() == Some("GreenFee18"))
            .or_else(|| self.sh_item_prices.first());
        TeeTimeSlot {
            tee_sheet_id: self.tee_sheet_id,
            start_time: self.start_time,
            course_name: self.course_name.filter(|n| !n.is_empty()).unwrap_or_else(|| fallback_course_name.to_owned()),
            holes,
            min_players: self.min_player.unwrap_or(1),
            max_players: self.max_player.unwrap_or(4),
            price: price_item.and_then(|p| p.current_price.or(p.price)),
            price_description: price_item.and_then(|p| p.item_desc.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_times_parse_leniently() {
        let want = NaiveDateTime::parse_from_str("2025-06-14 08:10:00", "%Y-%m-%d %H:%M:%S").expect("time");
        for s in ["2025-06-14T08:10:00", "2025-06-14T08:10:00.000", "2025-06-14T08:10", "2025-06-14T08:10:00-04:00"] {
            assert_eq!(parse_local_time(s), Some(want), "{s}");
        }
        assert_eq!(parse_local_time("8:10"), None);
    }

    #[test]
    fn price_request_lists_every_participant_in_wire_form() {
        let item = |n| BookingListItem {
            tee_sheet_id: 7,
            holes: 18,
            participant_no: n,
            golfer_id: 42,
            rate_code: "N",
            is_un_assigned_player: n > 1,
            member_class_code: "R",
            member_store_id: "1".into(),
            cart_type: 1,
            player_id: "0",
            acct: "A1",
            is_guest_of: false,
            is_use_capacity_pricing: false,
        };
        let v = serde_json::to_value(item(2)).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"teeSheetId": 7, "holes": 18, "participantNo": 2, "golferId": 42, "rateCode": "N",
                "isUnAssignedPlayer": true, "memberClassCode": "R", "memberStoreId": "1", "cartType": 1,
                "playerId": "0", "acct": "A1", "isGuestOf": false, "isUseCapacityPricing": false})
        );
        let card = serde_json::to_value(CreditCardInfo {
            card_number: None,
            card_holder: None,
            expire_mm: None,
            expire_yy: None,
            cvv: None,
            email: "e",
            card_token: None,
        })
        .expect("json");
        assert!(card.get("expireMM").is_some() && card.get("expireYY").is_some(), "{card}");
    }

    #[test]
    fn offered_holes() {
        let slot = |display: Option<&str>, holes| WireTeeTime {
            tee_sheet_id: 1,
            start_time: parse_local_time("2025-06-14T08:10:00").expect("t"),
            course_name: None,
            holes,
            default_holes: None,
            holes_display: display.map(str::to_owned),
            min_player: None,
            max_player: None,
            sh_item_prices: vec![],
        };
        assert_eq!(slot(Some("9/18"), Some(18)).offered_holes(), vec![9, 18]);
        assert_eq!(slot(Some("18"), Some(18)).offered_holes(), vec![18]);
        assert_eq!(slot(None, Some(9)).offered_holes(), vec![9]);
    }
}
