//! The cps.golf API client: search, reservations, and the three booking steps.
//!
//! Every request is built from the course configuration (URLs, `client-id`, `origin`,
//! `referer`, `x-websiteid`…) and goes through `rez-http`. The time-zone headers are
//! computed from the course's IANA zone on the date concerned (`x-timezone-offset: 300`
//! in winter, `240` in summer for New York), not fixed as before.
//!
//! Retries are deliberate: the read-only GETs are retried on 5xx/429/connection errors
//! and, on a 401, the token is replaced once and the GET repeated once. The booking POSTs
//! (lock, price, reserve) are sent exactly once; exactly-once booking is the job of
//! [`super::booking::Booker`], which uses [`GolfClient::lock_tee_time`],
//! [`GolfClient::price_tee_time`] and [`GolfClient::reserve_tee_time`].

use std::fmt;
use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use rez_http::{HttpClient, HttpError, HttpResponse, OutboundRequest, Redactor, RetryPolicy, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::auth::{AuthConfig, AuthError, GolfCredentials, GolfSession, TokenManager};
use super::courses::{Course, CourseError};
use super::model::{
    BookingListItem, CreditCardInfo, FinalizeSaleModel, Holes, LockRequest, LockResponse, LockedTeeTime, PriceRequest,
    PriceResponse, PricedTeeTime, Reservation, ReservationPage, ReservationReceipt, ReserveRequest, ReserveResponse,
    TeeTimeSlot, WireTeeTime,
};

/// The `User-Agent` of cps.golf requests: honest about what is calling.
pub const DEFAULT_USER_AGENT: &str = concat!("Mozilla/5.0 (compatible; rez_agent/", env!("CARGO_PKG_VERSION"), ")");
/// Reservations asked for per page, as the web app does.
const RESERVATIONS_PAGE_SIZE: u32 = 14;
/// Pages of reservations read at most.
const MAX_RESERVATION_PAGES: u32 = 10;
/// The lock's `action` value the web app sends.
const LOCK_ACTION: &str = "Online Reservation V5";

/// One step of a golf operation, for errors and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    SignIn,
    TeeTimes,
    Lock,
    Price,
    Reserve,
    Reservations,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::SignIn => "sign-in",
            Step::TeeTimes => "tee-time search",
            Step::Lock => "tee-time lock",
            Step::Price => "price calculation",
            Step::Reserve => "reservation",
            Step::Reservations => "reservation list",
        })
    }
}

/// A failed golf operation. [`GolfError::is_transient`] tells a caller whether the same
/// request may succeed later; [`GolfError::Conflict`] must never be retried.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GolfError {
    #[error("invalid golf request: {0}")]
    InvalidRequest(String),
    #[error(transparent)]
    Course(#[from] CourseError),
    #[error("cps.golf sign-in failed: {0}")]
    Auth(#[from] AuthError),
    #[error("{step} failed: {source}")]
    Http { step: Step, source: HttpError },
    #[error("{step}: cps.golf answered {status}: {detail}")]
    Status { step: Step, status: u16, detail: String },
    #[error("{step}: unexpected answer from cps.golf: {message}")]
    Decode { step: Step, message: String },
    #[error("{step} refused by cps.golf: {message}")]
    Rejected { step: Step, message: String },
    /// cps.golf says the golfer already has a reservation that conflicts. Reported to the
    /// user; retrying cannot help.
    #[error("reservation conflict: {message}")]
    Conflict { message: String },
    /// The reserve request may or may not have been carried out (the connection broke, it
    /// timed out, or the answer was unreadable). Retrying with the same booking key
    /// resolves it by reading the upcoming reservations first.
    #[error("booking outcome unknown: {message}")]
    Uncertain { message: String },
    #[error("no tee time available: {0}")]
    NoTeeTimes(String),
}

impl GolfError {
    /// Whether the same request may succeed if tried again later.
    pub fn is_transient(&self) -> bool {
        match self {
            GolfError::Auth(e) => e.is_transient(),
            GolfError::Http { source, .. } => source.is_retryable(),
            GolfError::Status { status, .. } => *status >= 500 || *status == 429 || *status == 401,
            GolfError::Uncertain { .. } => true,
            GolfError::InvalidRequest(_)
            | GolfError::Course(_)
            | GolfError::Decode { .. }
            | GolfError::Rejected { .. }
            | GolfError::Conflict { .. }
            | GolfError::NoTeeTimes(_) => false,
        }
    }

    pub fn is_conflict(&self) -> bool {
        matches!(self, GolfError::Conflict { .. })
    }
}

/// Settings of the golf client.
#[derive(Debug, Clone, Default)]
pub struct GolfConfig {
    pub auth: AuthConfig,
    /// Retries of the read-only GETs.
    pub retry: RetryPolicy,
}

/// A tee-time search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchRequest {
    pub date: NaiveDate,
    /// Earliest start, inclusive (course-local); none = from the first tee time.
    pub window_start: Option<NaiveTime>,
    /// Latest start, inclusive; none = until the last tee time.
    pub window_end: Option<NaiveTime>,
    /// 1–4.
    pub players: u8,
    pub holes: Holes,
}

impl SearchRequest {
    pub fn new(date: NaiveDate, players: u8) -> Self {
        Self { date, window_start: None, window_end: None, players, holes: Holes::Eighteen }
    }

    pub fn window(mut self, start: NaiveTime, end: NaiveTime) -> Self {
        self.window_start = Some(start);
        self.window_end = Some(end);
        self
    }

    pub fn holes(mut self, holes: Holes) -> Self {
        self.holes = holes;
        self
    }

    fn validate(&self) -> Result<(), GolfError> {
        check_players(self.players)?;
        if let (Some(s), Some(e)) = (self.window_start, self.window_end)
            && s > e
        {
            return Err(GolfError::InvalidRequest(format!("the time window starts ({s}) after it ends ({e})")));
        }
        Ok(())
    }

    /// Whether `slot` satisfies the request (date, window, players, holes; a slot that
    /// does not say which holes it offers is kept).
    pub fn accepts(&self, slot: &TeeTimeSlot) -> bool {
        let t = slot.start_time.time();
        slot.start_time.date() == self.date
            && self.window_start.is_none_or(|s| t >= s)
            && self.window_end.is_none_or(|e| t <= e)
            && (slot.min_players..=slot.max_players).contains(&self.players)
            && (slot.holes.is_empty() || slot.holes.contains(&self.holes.count()))
    }
}

pub(crate) fn check_players(players: u8) -> Result<(), GolfError> {
    if (1..=4).contains(&players) {
        Ok(())
    } else {
        Err(GolfError::InvalidRequest(format!("players must be between 1 and 4, not {players}")))
    }
}

/// A random version-4 UUID, the form of the web app's lock session ids.
fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = |r: std::ops::Range<usize>| b[r].iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!("{}-{}-{}-{}-{}", h(0..4), h(4..6), h(6..8), h(8..10), h(10..16))
}

fn short(detail: &str) -> String {
    let mut d = Redactor.text(detail.trim());
    if d.len() > 300 {
        let cut = (0..=300).rev().find(|&i| d.is_char_boundary(i)).unwrap_or(0);
        d.truncate(cut);
    }
    d
}

/// The cps.golf client for all configured courses.
#[derive(Clone)]
pub struct GolfClient {
    http: HttpClient,
    tokens: Arc<TokenManager>,
    config: GolfConfig,
}

impl fmt::Debug for GolfClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GolfClient").field("http", &self.http).field("config", &self.config).finish()
    }
}

/// Which extra headers a request carries.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavor {
    /// GETs of the search and reservation pages.
    Read,
    /// The lock.
    Lock,
    /// Pricing and reserving.
    Checkout,
}

impl GolfClient {
    pub fn new(http: HttpClient, config: GolfConfig) -> Self {
        let tokens = Arc::new(TokenManager::new(http.clone(), config.auth.clone()));
        Self { http, tokens, config }
    }

    /// The token cache (shared by clones of this client).
    pub fn tokens(&self) -> &TokenManager {
        &self.tokens
    }

    /// Sign in (or reuse the cached token): the verified identity and token.
    pub async fn session(&self, course: &Course, creds: &GolfCredentials) -> Result<Arc<GolfSession>, GolfError> {
        Ok(self.tokens.session(course, creds).await?)
    }

    fn build(
        &self,
        course: &Course,
        req: OutboundRequest,
        session: &GolfSession,
        flavor: Flavor,
        referer_path: &str,
        tz_at: Option<NaiveDateTime>,
    ) -> Result<OutboundRequest, GolfError> {
        let ids = &course.api;
        let origin = course.origin.trim_end_matches('/');
        let mut headers: Vec<(&str, String)> = vec![
            ("accept", "application/json, text/plain, */*".into()),
            ("accept-language", "en-US,en;q=0.9".into()),
            ("cache-control", "no-cache, no-store, must-revalidate".into()),
            ("client-id", course.client_id.clone()),
            ("origin", origin.to_owned()),
            ("referer", course.link(referer_path)),
            ("user-agent", self.config.auth.user_agent.clone()),
            ("x-componentid", ids.component_id.to_string()),
            ("x-websiteid", course.website_id.clone()),
        ];
        if flavor == Flavor::Checkout {
            headers.extend([
                ("x-ismobile", "true".to_owned()),
                ("x-moduleid", ids.module_id.to_string()),
                ("x-productid", ids.product_id.to_string()),
                ("x-siteid", ids.site_id.to_string()),
                ("x-terminalid", ids.terminal_id.to_string()),
                ("if-modified-since", "0".to_owned()),
                ("pragma", "no-cache".to_owned()),
            ]);
        }
        if let Some(at) = tz_at {
            headers.push(("x-timezone-offset", course.timezone_offset_minutes(at)?.to_string()));
            headers.push(("x-timezoneid", course.time_zone.clone()));
        }
        let mut req = req;
        for (name, value) in headers {
            req = req.try_header(name, &value).map_err(|e| GolfError::InvalidRequest(e.to_string()))?;
        }
        req.bearer_auth(session.token.secret()).map_err(|e| GolfError::InvalidRequest(e.to_string()))
    }

    /// Send a read-only GET built by `make` for the current session; on 401 replace the
    /// token once and repeat once.
    async fn get_authed(
        &self,
        course: &Course,
        creds: &GolfCredentials,
        step: Step,
        make: impl Fn(&GolfSession) -> Result<OutboundRequest, GolfError>,
    ) -> Result<(HttpResponse, Arc<GolfSession>), GolfError> {
        let mut session = self.session(course, creds).await?;
        let mut refreshed = false;
        loop {
            let resp = self
                .http
                .send_with_retry(make(&session)?, &self.config.retry)
                .await
                .map_err(|source| GolfError::Http { step, source })?;
            if resp.status == StatusCode::UNAUTHORIZED && !refreshed {
                session = self.tokens.refresh_after_rejection(course, creds, &session.token).await?;
                refreshed = true;
                continue;
            }
            if !resp.status.is_success() {
                return Err(status_error(step, &resp));
            }
            return Ok((resp, session));
        }
    }

    /// Tee times matching `req`, earliest first (ties by tee sheet id).
    pub async fn search_tee_times(
        &self,
        course: &Course,
        creds: &GolfCredentials,
        req: &SearchRequest,
    ) -> Result<Vec<TeeTimeSlot>, GolfError> {
        req.validate()?;
        let ids = &course.api;
        let search_date = req.date.format("%a %b %-d %Y").to_string().replace(' ', "%20");
        let query = format!(
            "searchDate={search_date}&holes=0&numberOfPlayer={}&courseIds={}&searchTimeType=0&teeSheetSearchView=5\
             &classCode={}&defaultOnlineRate={}&isUseCapacityPricing=false&memberStoreId={}&searchType=1",
            req.players,
            course.course_id,
            enc(&ids.class_code),
            enc(&ids.rate_code),
            ids.member_store_id,
        );
        let mut url = course.url(&course.paths.tee_times)?;
        url.set_query(Some(&query));
        let noon = req.date.and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap_or(NaiveTime::MIN));
        let (resp, _) = self
            .get_authed(course, creds, Step::TeeTimes, |s| {
                let r = OutboundRequest::from_url(rez_http::Method::GET, url.clone());
                self.build(course, r, s, Flavor::Read, &course.paths.search_page, Some(noon))
            })
            .await?;
        let body: Value = match resp.json() {
            Ok(v) => v,
            Err(_) if resp.text().contains("NO_TEETIMES") => Value::Array(vec![]),
            Err(e) => return Err(GolfError::Decode { step: Step::TeeTimes, message: e.to_string() }),
        };
        let wire: Vec<WireTeeTime> = match body {
            Value::Array(_) => serde_json::from_value(body)
                .map_err(|e| GolfError::Decode { step: Step::TeeTimes, message: e.to_string() })?,
            other if other.to_string().contains("NO_TEETIMES") => vec![],
            other => {
                return Err(GolfError::Decode {
                    step: Step::TeeTimes,
                    message: format!("expected a list of tee times, got {}", short(&other.to_string())),
                });
            }
        };
        let offered = wire.len();
        let mut slots: Vec<TeeTimeSlot> =
            wire.into_iter().map(|w| w.into_slot(&course.name)).filter(|s| req.accepts(s)).collect();
        slots.sort_by(|a, b| a.start_time.cmp(&b.start_time).then(a.tee_sheet_id.cmp(&b.tee_sheet_id)));
        tracing::info!(course = %course.id, date = %req.date, offered, matching = slots.len(), "tee-time search");
        Ok(slots)
    }

    /// The golfer's upcoming reservations, earliest first.
    pub async fn fetch_reservations(
        &self,
        course: &Course,
        creds: &GolfCredentials,
    ) -> Result<Vec<Reservation>, GolfError> {
        let mut out = Vec::new();
        let mut page = 1;
        loop {
            let base = course.url(&course.paths.reservations)?;
            let (resp, _) = self
                .get_authed(course, creds, Step::Reservations, |s| {
                    let mut url = base.clone();
                    url.set_query(Some(&format!(
                        "golferId={}&pageSize={RESERVATIONS_PAGE_SIZE}&currentPage={page}",
                        s.identity.golfer_id
                    )));
                    let r = OutboundRequest::from_url(rez_http::Method::GET, url);
                    self.build(course, r, s, Flavor::Read, &course.paths.reservations_page, None)
                })
                .await?;
            let data: ReservationPage =
                resp.json().map_err(|e| GolfError::Decode { step: Step::Reservations, message: e.to_string() })?;
            let count = data.items.len();
            out.extend(data.items.into_iter().map(|r| Reservation {
                reservation_id: r.reservation_id,
                start_time: r.start_time,
                course_name: r.course_name.filter(|n| !n.is_empty()).unwrap_or_else(|| course.name.clone()),
                players: r.number_of_player,
                confirmation_key: r.reservation_confirm_key,
            }));
            let pages = data.total_pages.unwrap_or(1);
            if page >= pages || page >= MAX_RESERVATION_PAGES || count == 0 {
                break;
            }
            page += 1;
        }
        out.sort_by_key(|r| r.start_time);
        Ok(out)
    }

    /// Send a booking POST once. A 401 drops the token (the next call signs in again).
    async fn post_once(
        &self,
        course: &Course,
        creds: &GolfCredentials,
        session: &GolfSession,
        step: Step,
        req: OutboundRequest,
    ) -> Result<HttpResponse, GolfError> {
        let resp = self.http.send(req).await.map_err(|source| GolfError::Http { step, source })?;
        if resp.status == StatusCode::UNAUTHORIZED {
            self.tokens.forget(course, creds, &session.token).await;
        }
        if !resp.status.is_success() {
            return Err(status_error(step, &resp));
        }
        Ok(resp)
    }

    /// Step 1 of a booking: hold the tee time. A warning that the golfer "already has a
    /// reservation" is a [`GolfError::Conflict`].
    pub async fn lock_tee_time(
        &self,
        course: &Course,
        creds: &GolfCredentials,
        session: &GolfSession,
        tee_sheet_id: i64,
        players: u8,
    ) -> Result<LockedTeeTime, GolfError> {
        check_players(players)?;
        let session_id = uuid_v4();
        let body = LockRequest {
            tee_sheet_ids: [tee_sheet_id],
            email: &session.identity.email,
            action: LOCK_ACTION,
            session_id: &session_id,
            golfer_id: session.identity.golfer_id,
            class_code: &course.api.class_code,
            number_of_player: players,
            navigate_url: "",
            is_group_booking: false,
        };
        let r = OutboundRequest::from_url(rez_http::Method::POST, course.url(&course.paths.lock)?)
            .json(&body)
            .map_err(|e| GolfError::InvalidRequest(e.to_string()))?;
        let req = self.build(course, r, session, Flavor::Lock, &course.paths.search_page, None)?;
        let resp = self.post_once(course, creds, session, Step::Lock, req).await?;
        let answer: LockResponse =
            resp.json().map_err(|e| GolfError::Decode { step: Step::Lock, message: e.to_string() })?;
        if let Some(w) = answer.warning.as_deref()
            && w.to_ascii_lowercase().contains("already have a reservation")
        {
            tracing::warn!(course = %course.id, tee_sheet_id, "lock refused: the golfer already has a reservation");
            return Err(GolfError::Conflict { message: short(w) });
        }
        if let Some(e) = answer.error.as_deref().filter(|e| !e.trim().is_empty()) {
            return Err(GolfError::Rejected { step: Step::Lock, message: short(e) });
        }
        if let Some(w) = answer.warning.as_deref().filter(|w| !w.trim().is_empty()) {
            tracing::info!(course = %course.id, tee_sheet_id, warning = %short(w), "lock answered with a warning");
        }
        if answer.tee_sheet_ids.as_ref().is_some_and(|ids| !ids.is_empty() && !ids.contains(&tee_sheet_id)) {
            return Err(GolfError::Decode { step: Step::Lock, message: "the lock names another tee time".into() });
        }
        tracing::info!(course = %course.id, tee_sheet_id, players, "tee time locked");
        Ok(LockedTeeTime { tee_sheet_id, session_id: answer.session_id.unwrap_or(session_id), players })
    }

    /// Step 2: price the locked tee time for every player (one participant entry each;
    /// the first is the account holder, the others unassigned players on the account).
    pub async fn price_tee_time(
        &self,
        course: &Course,
        creds: &GolfCredentials,
        session: &GolfSession,
        lock: &LockedTeeTime,
        holes: Holes,
        at: Option<NaiveDateTime>,
    ) -> Result<PricedTeeTime, GolfError> {
        check_players(lock.players)?;
        let ids = &course.api;
        let booking_list = (1..=lock.players)
            .map(|n| BookingListItem {
                tee_sheet_id: lock.tee_sheet_id,
                holes: holes.count(),
                participant_no: n,
                golfer_id: session.identity.golfer_id,
                rate_code: &ids.rate_code,
                is_un_assigned_player: n > 1,
                member_class_code: &ids.class_code,
                member_store_id: ids.member_store_id.to_string(),
                cart_type: 1,
                player_id: "0",
                acct: &session.identity.acct,
                is_guest_of: false,
                is_use_capacity_pricing: false,
            })
            .collect();
        let body = PriceRequest {
            selected_tee_sheet_id: lock.tee_sheet_id,
            booking_list,
            holes: holes.count(),
            number_of_player: lock.players,
            number_of_rider: lock.players,
            cart_type: 1,
            coupon: None,
            deposit_type: 0,
            deposit_amount: 0,
            selected_value_package_code: None,
            is_use_capacity_pricing: false,
            third_party_id: None,
            ibx_card_on_file: None,
            transaction_id: None,
        };
        let r = OutboundRequest::from_url(rez_http::Method::POST, course.url(&course.paths.price)?)
            .json(&body)
            .map_err(|e| GolfError::InvalidRequest(e.to_string()))?;
        let tz_at = Some(match at {
            Some(t) => t,
            None => course_now(course)?,
        });
        let req = self.build(course, r, session, Flavor::Checkout, &course.paths.search_page, tz_at)?;
        let resp = self.post_once(course, creds, session, Step::Price, req).await?;
        let answer: PriceResponse =
            resp.json().map_err(|e| GolfError::Decode { step: Step::Price, message: e.to_string() })?;
        let transaction_id = answer
            .transaction_id
            .filter(|v| !v.is_null() && v.as_str() != Some(""))
            .ok_or_else(|| GolfError::Decode { step: Step::Price, message: "no transactionId".into() })?;
        let summary = answer.summary_detail.unwrap_or_default();
        Ok(PricedTeeTime {
            transaction_id,
            start_time: answer.start_time,
            course_name: answer.course_name,
            holes: answer.holes.unwrap_or(holes.count()),
            players: lock.players,
            sub_total: summary.sub_total,
            total: summary.total,
            total_due_at_course: summary.total_due_at_course,
        })
    }

    /// Step 3: reserve (pay at the course; no card is sent). `reservationResult: 1` is a
    /// success, even without a `reservationId` (the receipt then has none, and the caller
    /// completes it from the reservations list); `0` is a refusal. A broken connection, a
    /// timeout, a 5xx, an unreadable 2xx answer or any other result code is
    /// [`GolfError::Uncertain`]: the reservation may exist.
    pub async fn reserve_tee_time(
        &self,
        course: &Course,
        creds: &GolfCredentials,
        session: &GolfSession,
        lock: &LockedTeeTime,
        priced: &PricedTeeTime,
    ) -> Result<ReservationReceipt, GolfError> {
        let body = ReserveRequest {
            cancel_reservation_link: course.link(&course.paths.cancel_reservation_link),
            home_page_link: course.link(&course.paths.home_page_link),
            affiliate_id: None,
            finalize_sale_model: FinalizeSaleModel {
                acct: &session.identity.acct,
                player_id: 0,
                is_guest: false,
                credit_card_info: CreditCardInfo {
                    card_number: None,
                    card_holder: None,
                    expire_mm: None,
                    expire_yy: None,
                    cvv: None,
                    email: &session.identity.email,
                    card_token: None,
                },
                moneris_cc: None,
                ibx_cc: None,
            },
            session_guid: None,
            locked_tee_times_session_id: &lock.session_id,
            transaction_id: &priced.transaction_id,
        };
        let r = OutboundRequest::from_url(rez_http::Method::POST, course.url(&course.paths.reserve)?)
            .json(&body)
            .map_err(|e| GolfError::InvalidRequest(e.to_string()))?;
        let tz_at = Some(match priced.start_time {
            Some(t) => t,
            None => course_now(course)?,
        });
        let req = self.build(course, r, session, Flavor::Checkout, &course.paths.search_page, tz_at)?;
        let resp = match self.post_once(course, creds, session, Step::Reserve, req).await {
            Ok(resp) => resp,
            Err(GolfError::Http { source, .. }) if !source.is_refused() => {
                return Err(GolfError::Uncertain { message: format!("reserve request broke off: {source}") });
            }
            Err(GolfError::Status { status, detail, .. }) if status >= 500 => {
                return Err(GolfError::Uncertain { message: format!("reserve answered {status}: {detail}") });
            }
            Err(e) => return Err(e),
        };
        let answer: ReserveResponse =
            resp.json().map_err(|e| GolfError::Uncertain { message: format!("unreadable reserve answer: {e}") })?;
        match answer.reservation_result {
            Some(1) => {
                let reservation_id = answer.reservation_id.filter(|id| *id > 0);
                if reservation_id.is_none() {
                    tracing::info!(course = %course.id, tee_sheet_id = lock.tee_sheet_id, "reserved without a reservation id");
                }
                Ok(ReservationReceipt {
                    reservation_id,
                    confirmation_key: answer.confirmation_key.unwrap_or_default(),
                    booking_ids: answer
                        .booking_ids
                        .unwrap_or_default()
                        .iter()
                        .map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()))
                        .collect(),
                })
            }
            Some(0) => Err(GolfError::Rejected {
                step: Step::Reserve,
                message: answer.message.map(|m| short(&m)).unwrap_or_else(|| "reservationResult 0".into()),
            }),
            other => {
                let code = other.map(|r| r.to_string()).unwrap_or_else(|| "missing".into());
                let detail = answer.message.map(|m| format!(": {}", short(&m))).unwrap_or_default();
                Err(GolfError::Uncertain { message: format!("reserve answered reservationResult {code}{detail}") })
            }
        }
    }
}

/// The current local time at the course.
fn course_now(course: &Course) -> Result<NaiveDateTime, GolfError> {
    Ok(chrono::Utc::now().with_timezone(&course.tz()?).naive_local())
}

/// Percent-encode a query value.
fn enc(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>().replace('+', "%20")
}

fn status_error(step: Step, resp: &HttpResponse) -> GolfError {
    let status = resp.status.as_u16();
    tracing::warn!(%step, status, "cps.golf request failed");
    GolfError::Status { step, status, detail: short(&resp.text()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shape() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "{u}");
        assert_ne!(uuid_v4(), u);
    }

    #[test]
    fn errors_classify() {
        assert!(!GolfError::Conflict { message: "x".into() }.is_transient());
        assert!(GolfError::Uncertain { message: "x".into() }.is_transient());
        assert!(GolfError::Status { step: Step::Lock, status: 503, detail: String::new() }.is_transient());
        assert!(!GolfError::Status { step: Step::Lock, status: 400, detail: String::new() }.is_transient());
        assert!(!GolfError::Rejected { step: Step::Reserve, message: String::new() }.is_transient());
    }
}
