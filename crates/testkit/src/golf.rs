//! A fake cps.golf (Club Prophet) course on 127.0.0.1 for tests and demos.
//!
//! The golf client books real tee times with a real account, so it cannot be tested
//! against the real service. This fake speaks the wire format of prior-system §5.4 closely
//! enough to exercise every path of the client, including the unhappy ones:
//!
//! - `POST /identityapi/connect/token`: OAuth password grant (form body, with a
//!   `client_id` the identity server knows, else `invalid_client`) issuing **real
//!   RS256-signed JWTs** with a `kid` and the claims `golferId`, `acct` and `email`, with
//!   a configurable lifetime; on demand it issues expired, tampered, unknown-`kid`,
//!   `kid`-less, HS256 or `alg: none` tokens instead;
//! - `GET /identityapi/.well-known/openid-configuration/jwks`: the published keys;
//!   [`FakeCpsGolf::rotate_keys`] publishes a new key and signs with it;
//! - `GET …/onlinereservation/TeeTimes`, `POST …/LockTeeTimes`,
//!   `POST …/TeeTimePricesCalculation` (participants recorded for assertions),
//!   `POST …/ReserveTeeTimes`, `GET …/UpcomingReservation`, over a tee sheet that behaves
//!   like a real one:
//!   - a slot has four places ([`FakeSlot::places`]); it stays searchable with the places
//!     it has left until it is full, and a lock or a reserve for more players than are
//!     left is refused;
//!   - nothing stops one golfer from holding two reservations on one slot (that is how a
//!     double booking shows); a per-day limit that answers "already have a reservation"
//!     is a knob ([`FakeCpsGolf::limit_reservations_per_day`]), off by default;
//!   - a lock holds its slot: a second lock from another session is refused with an
//!     `error` until the first expires ([`FakeCpsGolf::set_lock_lifetime`]) or a reserve
//!     consumes it;
//!   - a reservation appears in `UpcomingReservation` only some time after the reserve
//!     answered ([`FakeCpsGolf::set_listing_delay`]: eventually consistent);
//! - bearer tokens are checked on every API call (401 once expired or revoked);
//! - slowness per step ([`FakeCpsGolf::set_latency`]) and faults per request: fail with a
//!   status, delay (longer than a client's timeout), or drop the connection before or
//!   **after** performing the step (e.g. the reservation is made, then the connection is
//!   closed without an answer). A delayed or slow step is carried out even when the client
//!   hung up meanwhile, as a real server does;
//! - counters and recorded requests per step, and the tee sheet's state for assertions
//!   (every reservation, per slot, per golfer, what the list shows, places left, locks).
//!
//! RSA keys are slow to generate in debug builds, so a process-wide pool generates each
//! key once and fakes share them (every fake has its own JWKS URL, so no client can mix
//! them up).

use crate::server::LoopbackServer;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::{NaiveDate, NaiveDateTime};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::{Value, json};
use tokio::time::Instant;

const API: &str = "/onlineres/onlineapi/api/v1/onlinereservation";

/// The user name of the account every fake knows.
pub const FAKE_USERNAME: &str = "golfer@example.com";
/// Its password.
pub const FAKE_PASSWORD: &str = "correct horse battery staple";
/// Its golfer id (sent as the string claim `golferId`, as cps.golf does).
pub const FAKE_GOLFER_ID: i64 = 48213;
/// Its account number (`acct`).
pub const FAKE_ACCT: &str = "A-100217";
/// The OAuth client the course's web app signs in as; the only client a fake knows at
/// first.
pub const FAKE_CLIENT_ID: &str = "onlineresweb";
/// The course name the fake reports.
pub const FAKE_COURSE_NAME: &str = "Birdsfoot Golf Course";

/// One endpoint of the fake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GolfStep {
    Token,
    Jwks,
    TeeTimes,
    Lock,
    Price,
    Reserve,
    Reservations,
}

/// A fault injected into one request of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GolfFault {
    /// Answer with this status (and a small JSON body) without performing the step.
    Status(u16),
    /// Wait this long, then perform the step and answer normally (a client with a shorter
    /// timeout gives up while the step still happens).
    Delay(Duration),
    /// Close the connection without performing the step.
    DropBefore,
    /// Perform the step, then close the connection without answering.
    DropAfter,
}

/// How the fake answers a reserve it carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReserveAnswer {
    /// `reservationResult: 1` with the reservation id, booking ids and confirmation key.
    #[default]
    Complete,
    /// `reservationResult: 1` and nothing else: the reservation exists, unnamed.
    WithoutReservationId,
    /// This result code (not 0 or 1) and no id: the reservation exists all the same.
    ResultCode(i64),
}

/// What the token endpoint issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// RS256, signed with the current published key.
    Valid,
    /// Valid signature, `exp` ten minutes in the past.
    Expired,
    /// Signed, then the payload changed (another golfer id) without re-signing.
    Tampered,
    /// Signed with a key that is not in the JWKS.
    UnknownKid,
    /// RS256 without a `kid` header.
    MissingKid,
    /// HS256, keyed with the RSA public modulus (the classic algorithm-confusion attack).
    Hs256,
    /// `alg: none`, no signature.
    AlgNone,
}

/// An account of the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeUser {
    pub username: String,
    pub password: String,
    pub golfer_id: i64,
    pub acct: String,
    pub email: String,
}

impl FakeUser {
    /// The account every fake starts with ([`FAKE_USERNAME`], [`FAKE_PASSWORD`]).
    pub fn default_user() -> Self {
        Self {
            username: FAKE_USERNAME.into(),
            password: FAKE_PASSWORD.into(),
            golfer_id: FAKE_GOLFER_ID,
            acct: FAKE_ACCT.into(),
            email: FAKE_USERNAME.into(),
        }
    }
}

/// A tee time on the fake's tee sheet.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeSlot {
    pub tee_sheet_id: i64,
    /// Course-local start.
    pub start: NaiveDateTime,
    /// `holesDisplay`: `"18"` or `"9/18"`.
    pub holes_display: String,
    pub min_players: u8,
    pub max_players: u8,
    /// 18-hole green fee per player.
    pub price: f64,
    /// Places on the tee time (a foursome: 4), shared by every reservation on it.
    pub places: u8,
}

impl FakeSlot {
    /// An 18-hole slot of four places for 1–4 players at $45.
    pub fn new(tee_sheet_id: i64, start: NaiveDateTime) -> Self {
        Self { tee_sheet_id, start, holes_display: "18".into(), min_players: 1, max_players: 4, price: 45.0, places: 4 }
    }
}

/// The lifetime of a lock unless [`FakeCpsGolf::set_lock_lifetime`] changes it.
pub const DEFAULT_LOCK_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// The refusal of a lock on a tee time another session holds.
pub const LOCK_HELD_ERROR: &str =
    "This tee time is being booked by another golfer. Please select another tee time or try again later.";

/// The warning of a lock past the per-day reservation limit.
pub const ONE_PER_DAY_WARNING: &str =
    "It looks like you already have a reservation on this day. Only one reservation per day is allowed.";

/// A reservation held by the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeReservation {
    pub reservation_id: i64,
    pub confirmation_key: String,
    pub golfer_id: i64,
    pub tee_sheet_id: i64,
    pub start: NaiveDateTime,
    pub course_name: String,
    pub players: u8,
}

/// One `TeeTimePricesCalculation` request.
#[derive(Debug, Clone, PartialEq)]
pub struct PricingCall {
    pub selected_tee_sheet_id: i64,
    pub number_of_player: u64,
    pub holes: u64,
    /// The `bookingList` entries, as sent.
    pub participants: Vec<Value>,
}

/// A request as the fake received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub step: GolfStep,
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl RecordedRequest {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON (null if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

// ---- keys ------------------------------------------------------------------------------------

struct SigningKey {
    kid: String,
    /// PKCS#1 DER of the private key.
    der: Vec<u8>,
    n: Vec<u8>,
    e: Vec<u8>,
}

impl SigningKey {
    fn generate(index: usize) -> Self {
        use rsa::pkcs1::EncodeRsaPrivateKey as _;
        use rsa::traits::PublicKeyParts as _;
        let key = match rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048) {
            Ok(k) => k,
            Err(e) => panic!("fake cps.golf: RSA key generation failed: {e}"),
        };
        let der = match key.to_pkcs1_der() {
            Ok(d) => d.as_bytes().to_vec(),
            Err(e) => panic!("fake cps.golf: cannot encode the RSA key: {e}"),
        };
        let suffix: String = rand::rng().sample_iter(&Alphanumeric).take(10).map(char::from).collect();
        Self { kid: format!("fake-{index}-{suffix}"), der, n: key.n().to_bytes_be(), e: key.e().to_bytes_be() }
    }

    fn jwk(&self) -> Value {
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        json!({"kty": "RSA", "use": "sig", "kid": self.kid, "e": b64(&self.e), "n": b64(&self.n), "alg": "RS256"})
    }
}

/// The `i`-th key of the process-wide pool, generated on first use.
fn pooled_key(i: usize) -> Arc<SigningKey> {
    static POOL: OnceLock<Mutex<Vec<Arc<SigningKey>>>> = OnceLock::new();
    let mut pool = POOL.get_or_init(|| Mutex::new(Vec::new())).lock().unwrap_or_else(|e| e.into_inner());
    while pool.len() <= i {
        let k = SigningKey::generate(pool.len());
        pool.push(Arc::new(k));
    }
    pool[i].clone()
}

// ---- state -----------------------------------------------------------------------------------

struct IssuedToken {
    golfer_id: i64,
    expires: u64,
    revoked: bool,
}

struct Lock {
    tee_sheet_id: i64,
    golfer_id: i64,
    expires: Instant,
}

/// A committed reservation and the moment the reservations list starts showing it.
struct Held {
    reservation: FakeReservation,
    listed_from: Instant,
}

struct Txn {
    tee_sheet_id: i64,
    players: u8,
}

struct Inner {
    users: Vec<FakeUser>,
    clients: Vec<String>,
    published: Vec<Arc<SigningKey>>,
    signing: Arc<SigningKey>,
    unpublished: Arc<SigningKey>,
    next_pool_index: usize,
    token_kind: TokenKind,
    token_lifetime: Duration,
    tokens: HashMap<String, IssuedToken>,
    tokens_issued: usize,
    slots: Vec<FakeSlot>,
    locks: HashMap<String, Lock>,
    lock_lifetime: Duration,
    txns: HashMap<String, Txn>,
    reservations: Vec<Held>,
    listing_delay: Duration,
    per_day_limit: Option<usize>,
    latency: HashMap<GolfStep, Duration>,
    reserve_answer: ReserveAnswer,
    course_number: i64,
    next_reservation_id: i64,
    pricing: Vec<PricingCall>,
    requests: Vec<RecordedRequest>,
    counts: HashMap<GolfStep, usize>,
    faults: HashMap<GolfStep, VecDeque<GolfFault>>,
}

struct Shared {
    inner: Mutex<Inner>,
    base: String,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Handle of a running fake cps.golf course; the server stops when the handle is dropped.
pub struct FakeCpsGolf {
    server: LoopbackServer,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FakeCpsGolf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeCpsGolf").field("addr", &self.server.addr()).finish()
    }
}

impl FakeCpsGolf {
    /// Start on an ephemeral port of 127.0.0.1 with the default account and no tee times.
    ///
    /// # Panics
    /// If 127.0.0.1 cannot be bound; see [`FakeCpsGolf::try_start`].
    pub async fn start() -> Self {
        match Self::try_start().await {
            Ok(fake) => fake,
            Err(e) => panic!("fake cps.golf: cannot listen on 127.0.0.1: {e}"),
        }
    }

    pub async fn try_start() -> std::io::Result<Self> {
        let (signing, unpublished) =
            tokio::task::spawn_blocking(|| (pooled_key(0), pooled_key(1))).await.map_err(std::io::Error::other)?;
        let (listener, addr) = LoopbackServer::bind().await?;
        let inner = Inner {
            users: vec![FakeUser::default_user()],
            clients: vec![FAKE_CLIENT_ID.to_owned()],
            published: vec![signing.clone()],
            signing,
            unpublished,
            next_pool_index: 2,
            token_kind: TokenKind::Valid,
            token_lifetime: Duration::from_secs(3600),
            tokens: HashMap::new(),
            tokens_issued: 0,
            slots: Vec::new(),
            locks: HashMap::new(),
            lock_lifetime: DEFAULT_LOCK_LIFETIME,
            txns: HashMap::new(),
            reservations: Vec::new(),
            listing_delay: Duration::ZERO,
            per_day_limit: None,
            latency: HashMap::new(),
            reserve_answer: ReserveAnswer::Complete,
            course_number: 1,
            next_reservation_id: 5001,
            pricing: Vec::new(),
            requests: Vec::new(),
            counts: HashMap::new(),
            faults: HashMap::new(),
        };
        let shared = Arc::new(Shared { inner: Mutex::new(inner), base: format!("http://{addr}") });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let server = LoopbackServer::serve(listener, app, "cps.golf");
        Ok(Self { server, shared })
    }

    /// A user courses file (`REZ_COURSES_FILE`) that points course `birdsfoot` at this fake.
    pub fn courses_yaml(&self) -> String {
        format!(
            "courses:\n  - id: birdsfoot\n    course_id: 1\n    name: Birdsfoot Golf Course\n    address: 225 Furnace Run Rd, Freeport, PA 16229\n    latitude: 40.7196\n    longitude: -79.6526\n    time_zone: America/New_York\n    origin: {}\n    client_id: {FAKE_CLIENT_ID}\n    website_id: 94fa26b7-2e63-4cbc-99e5-08d7d7f41522\n    scope: openid profile onlinereservation\n",
            self.url()
        )
    }

    /// The course origin: `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.shared.base.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Add an account.
    pub fn add_user(&self, user: FakeUser) {
        self.shared.lock().users.push(user);
    }

    /// Let the identity server know another OAuth client id.
    pub fn add_client_id(&self, client_id: &str) {
        self.shared.lock().clients.push(client_id.to_owned());
    }

    /// Put a tee time on the sheet. Searches answer in insertion order (not sorted).
    pub fn add_slot(&self, slot: FakeSlot) {
        self.shared.lock().slots.push(slot);
    }

    /// The tee sheet (full slots included).
    pub fn slots(&self) -> Vec<FakeSlot> {
        self.shared.lock().slots.clone()
    }

    /// Every reservation the fake holds, in the order they were made (listed or not yet).
    pub fn reservations(&self) -> Vec<FakeReservation> {
        self.shared.lock().reservations.iter().map(|h| h.reservation.clone()).collect()
    }

    /// The reservations on one tee time.
    pub fn reservations_on_slot(&self, tee_sheet_id: i64) -> Vec<FakeReservation> {
        self.reservations().into_iter().filter(|r| r.tee_sheet_id == tee_sheet_id).collect()
    }

    /// The reservations of one golfer (listed or not yet).
    pub fn reservations_of(&self, golfer_id: i64) -> Vec<FakeReservation> {
        self.reservations().into_iter().filter(|r| r.golfer_id == golfer_id).collect()
    }

    /// The reservations of one golfer that `UpcomingReservation` shows now.
    pub fn listed_reservations_of(&self, golfer_id: i64) -> Vec<FakeReservation> {
        let now = Instant::now();
        let inner = self.shared.lock();
        inner
            .reservations
            .iter()
            .filter(|h| h.reservation.golfer_id == golfer_id && h.listed_from <= now)
            .map(|h| h.reservation.clone())
            .collect()
    }

    /// Places left on a tee time (none if the sheet has no such tee time).
    pub fn places_left(&self, tee_sheet_id: i64) -> Option<u8> {
        let inner = self.shared.lock();
        inner.slots.iter().find(|s| s.tee_sheet_id == tee_sheet_id).map(|s| places_left(&inner, s))
    }

    /// Whether a live (unexpired, unconsumed) lock holds the tee time.
    pub fn is_locked(&self, tee_sheet_id: i64) -> bool {
        let now = Instant::now();
        self.shared.lock().locks.values().any(|l| l.tee_sheet_id == tee_sheet_id && l.expires > now)
    }

    /// Add a reservation (made elsewhere, listed at once) for `golfer_id` at `start`.
    pub fn add_reservation(&self, golfer_id: i64, tee_sheet_id: i64, start: NaiveDateTime, players: u8) -> i64 {
        let mut inner = self.shared.lock();
        let id = inner.next_reservation_id;
        inner.next_reservation_id += 1;
        inner.reservations.push(Held {
            reservation: FakeReservation {
                reservation_id: id,
                confirmation_key: confirmation_key(),
                golfer_id,
                tee_sheet_id,
                start,
                course_name: FAKE_COURSE_NAME.into(),
                players,
            },
            listed_from: Instant::now(),
        });
        id
    }

    /// How long a lock holds its tee time (default [`DEFAULT_LOCK_LIFETIME`]).
    pub fn set_lock_lifetime(&self, lifetime: Duration) {
        self.shared.lock().lock_lifetime = lifetime;
    }

    /// How long after a reserve answered its reservation starts to show in
    /// `UpcomingReservation` (default: at once).
    pub fn set_listing_delay(&self, delay: Duration) {
        self.shared.lock().listing_delay = delay;
    }

    /// Refuse a lock with the "already have a reservation" warning once the golfer holds
    /// `limit` reservations on that day (none: no limit, the default).
    pub fn limit_reservations_per_day(&self, limit: Option<usize>) {
        self.shared.lock().per_day_limit = limit;
    }

    /// How reserves are answered from now on (they are carried out whatever the answer).
    pub fn answer_reserves(&self, answer: ReserveAnswer) {
        self.shared.lock().reserve_answer = answer;
    }

    /// The site's number of this course (`courseId` of its tee times; a search whose
    /// `courseIds` does not name it finds nothing). Default 1; every site numbers its own.
    pub fn set_course_number(&self, number: i64) {
        self.shared.lock().course_number = number;
    }

    /// Slow every request of `step` down by `latency` (the step is still carried out when
    /// the client gives up meanwhile). Zero removes it.
    pub fn set_latency(&self, step: GolfStep, latency: Duration) {
        self.shared.lock().latency.insert(step, latency);
    }

    /// Lifetime of the tokens issued from now on (`expires_in` and `exp`).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.shared.lock().token_lifetime = lifetime;
    }

    /// What kind of token the endpoint issues from now on.
    pub fn issue_tokens(&self, kind: TokenKind) {
        self.shared.lock().token_kind = kind;
    }

    /// Invalidate every token issued so far: API calls with them answer 401.
    pub fn revoke_tokens(&self) {
        for t in self.shared.lock().tokens.values_mut() {
            t.revoked = true;
        }
    }

    /// Publish a new key and sign new tokens with it (the old key stays published).
    /// Returns the new `kid`. Blocks while the key is generated the first time.
    pub fn rotate_keys(&self) -> String {
        let index = self.shared.lock().next_pool_index;
        let key = pooled_key(index);
        let mut inner = self.shared.lock();
        inner.next_pool_index = index + 1;
        inner.published.push(key.clone());
        inner.signing = key.clone();
        key.kid.clone()
    }

    /// The `kid` new tokens are signed with.
    pub fn current_kid(&self) -> String {
        self.shared.lock().signing.kid.clone()
    }

    /// Inject `fault` into the next request of `step`.
    pub fn fail(&self, step: GolfStep, fault: GolfFault) {
        self.fail_times(step, fault, 1);
    }

    /// Inject `fault` into the next `n` requests of `step`.
    pub fn fail_times(&self, step: GolfStep, fault: GolfFault, n: usize) {
        self.shared.lock().faults.entry(step).or_default().extend(std::iter::repeat_n(fault, n));
    }

    /// Requests received for `step`, faulted ones included.
    pub fn count(&self, step: GolfStep) -> usize {
        self.shared.lock().counts.get(&step).copied().unwrap_or(0)
    }

    /// Tokens issued (of any kind).
    pub fn tokens_issued(&self) -> usize {
        self.shared.lock().tokens_issued
    }

    /// The requests received for `step`, in order.
    pub fn requests(&self, step: GolfStep) -> Vec<RecordedRequest> {
        self.shared.lock().requests.iter().filter(|r| r.step == step).cloned().collect()
    }

    /// Every pricing request, in order.
    pub fn pricing_calls(&self) -> Vec<PricingCall> {
        self.shared.lock().pricing.clone()
    }
}

// ---- HTTP ------------------------------------------------------------------------------------

/// Unwinding out of the handler closes the connection without an answer. `resume_unwind`
/// skips the panic hook, so nothing is printed.
fn drop_connection() -> ! {
    std::panic::resume_unwind(Box::new("fake cps.golf: connection dropped on purpose"))
}

fn route(method: &Method, path: &str) -> Option<GolfStep> {
    let api = path.strip_prefix(API);
    Some(match (method.as_str(), path, api) {
        ("POST", "/identityapi/connect/token", _) => GolfStep::Token,
        ("GET", "/identityapi/.well-known/openid-configuration/jwks", _) => GolfStep::Jwks,
        ("GET", _, Some("/TeeTimes")) => GolfStep::TeeTimes,
        ("POST", _, Some("/LockTeeTimes")) => GolfStep::Lock,
        ("POST", _, Some("/TeeTimePricesCalculation")) => GolfStep::Price,
        ("POST", _, Some("/ReserveTeeTimes")) => GolfStep::Reserve,
        ("GET", _, Some("/UpcomingReservation")) => GolfStep::Reservations,
        _ => return None,
    })
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn api_error(status: StatusCode, message: &str) -> Response {
    json_response(status, json!({"message": message}))
}

fn unauthorized() -> Response {
    let mut resp = StatusCode::UNAUTHORIZED.into_response();
    resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""));
    resp
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(step) = route(&method, uri.path()) else {
        return api_error(StatusCode::NOT_FOUND, "not found");
    };
    let (fault, latency) = {
        let mut inner = shared.lock();
        *inner.counts.entry(step).or_default() += 1;
        inner.requests.push(RecordedRequest {
            step,
            method: method.clone(),
            path: uri.path().to_owned(),
            query: uri.query().map(str::to_owned),
            headers: headers.clone(),
            body: body.clone(),
        });
        let fault = inner.faults.get_mut(&step).and_then(VecDeque::pop_front);
        (fault, inner.latency.get(&step).copied().unwrap_or_default())
    };
    let wait = match fault {
        Some(GolfFault::Delay(d)) => latency + d,
        _ => latency,
    };
    match fault {
        Some(GolfFault::Status(code)) => {
            tokio::time::sleep(latency).await;
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return api_error(status, "injected failure");
        }
        Some(GolfFault::DropBefore) => {
            tokio::time::sleep(latency).await;
            drop_connection()
        }
        Some(GolfFault::Delay(_) | GolfFault::DropAfter) | None => {}
    }
    let resp = if wait.is_zero() {
        perform(&shared, step, &uri, &headers, &body)
    } else {
        // A real server finishes the work even when the client hangs up meanwhile; hyper
        // drops this handler when the connection closes, so the work runs in its own task.
        let work = tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            perform(&shared, step, &uri, &headers, &body)
        });
        work.await.unwrap_or_else(|_| api_error(StatusCode::INTERNAL_SERVER_ERROR, "fake failed"))
    };
    if fault == Some(GolfFault::DropAfter) {
        drop_connection();
    }
    resp
}

fn perform(shared: &Shared, step: GolfStep, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Response {
    match step {
        GolfStep::Token => token(shared, body),
        GolfStep::Jwks => {
            let keys: Vec<Value> = shared.lock().published.iter().map(|k| k.jwk()).collect();
            json_response(StatusCode::OK, json!({"keys": keys}))
        }
        api => {
            let Some(golfer) = authorized(shared, headers) else { return unauthorized() };
            let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let mut inner = shared.lock();
            match api {
                GolfStep::TeeTimes => tee_times(&inner, uri),
                GolfStep::Lock => lock(&mut inner, &golfer, &json),
                GolfStep::Price => price(&mut inner, &json),
                GolfStep::Reserve => reserve(&mut inner, &golfer, &json),
                _ => reservations(&inner, &golfer, uri),
            }
        }
    }
}

fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn random_text(n: usize) -> String {
    rand::rng().sample_iter(&Alphanumeric).take(n).map(char::from).collect()
}

fn confirmation_key() -> String {
    random_text(8).to_ascii_uppercase()
}

fn guid() -> String {
    let b: [u8; 16] = rand::random();
    let h = |r: std::ops::Range<usize>| b[r].iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!("{}-{}-{}-{}-{}", h(0..4), h(4..6), h(6..8), h(8..10), h(10..16))
}

/// The golfer a valid bearer token belongs to.
fn authorized(shared: &Shared, headers: &HeaderMap) -> Option<FakeUser> {
    let token = headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")?.trim();
    let inner = shared.lock();
    let issued = inner.tokens.get(token)?;
    if issued.revoked || issued.expires <= now_unix() {
        return None;
    }
    inner.users.iter().find(|u| u.golfer_id == issued.golfer_id).cloned()
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn sign(kind: TokenKind, claims: &Value, signing: &SigningKey, unpublished: &SigningKey) -> Option<String> {
    let rs256 = |key: &SigningKey, kid: Option<String>| {
        let mut h = Header::new(Algorithm::RS256);
        h.kid = kid;
        h.typ = Some("at+jwt".into());
        jsonwebtoken::encode(&h, claims, &EncodingKey::from_rsa_der(&key.der)).ok()
    };
    match kind {
        TokenKind::Valid | TokenKind::Expired => rs256(signing, Some(signing.kid.clone())),
        TokenKind::UnknownKid => rs256(unpublished, Some(unpublished.kid.clone())),
        TokenKind::MissingKid => rs256(signing, None),
        TokenKind::Tampered => {
            let token = rs256(signing, Some(signing.kid.clone()))?;
            let mut parts = token.split('.');
            let (h, _, s) = (parts.next()?, parts.next()?, parts.next()?);
            let mut forged = claims.clone();
            forged["golferId"] = json!("1");
            Some(format!("{h}.{}.{s}", b64url(forged.to_string().as_bytes())))
        }
        TokenKind::Hs256 => {
            let mut h = Header::new(Algorithm::HS256);
            h.kid = Some(signing.kid.clone());
            jsonwebtoken::encode(&h, claims, &EncodingKey::from_secret(&signing.n)).ok()
        }
        TokenKind::AlgNone => {
            let header = json!({"alg": "none", "typ": "JWT", "kid": signing.kid});
            Some(format!("{}.{}.", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes())))
        }
    }
}

fn token(shared: &Shared, body: &[u8]) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let oauth_error = |error: &str, description: &str| {
        json_response(StatusCode::BAD_REQUEST, json!({"error": error, "error_description": description}))
    };
    if form.get("grant_type").map(String::as_str) != Some("password") {
        return oauth_error("unsupported_grant_type", "grant_type must be password");
    }
    let mut inner = shared.lock();
    let Some(client_id) = form.get("client_id").filter(|c| inner.clients.contains(c)).cloned() else {
        return oauth_error("invalid_client", "unknown or missing client_id");
    };
    let user = inner
        .users
        .iter()
        .find(|u| Some(&u.username) == form.get("username") && Some(&u.password) == form.get("password"))
        .cloned();
    let Some(user) = user else {
        return oauth_error("invalid_grant", "invalid_username_or_password");
    };
    let now = now_unix();
    let lifetime = inner.token_lifetime.as_secs();
    let kind = inner.token_kind;
    let (iat, exp) = if kind == TokenKind::Expired { (now - 4200, now - 600) } else { (now, now + lifetime) };
    let scope = form.get("scope").cloned().unwrap_or_default();
    let claims = json!({
        "iss": format!("{}/identityapi", shared.base),
        "nbf": iat,
        "iat": iat,
        "exp": exp,
        "aud": ["onlinereservation", "sale", "inventory", "sh", "customer", "references"],
        "scope": scope.split_whitespace().collect::<Vec<_>>(),
        "amr": ["pwd"],
        "client_id": client_id,
        "sub": user.golfer_id.to_string(),
        "auth_time": iat,
        "idp": "local",
        "golferId": user.golfer_id.to_string(),
        "acct": user.acct,
        "email": user.email,
        "jti": random_text(24),
    });
    let Some(token) = sign(kind, &claims, &inner.signing, &inner.unpublished) else {
        return api_error(StatusCode::INTERNAL_SERVER_ERROR, "cannot sign the token");
    };
    inner.tokens_issued += 1;
    if kind == TokenKind::Valid {
        inner.tokens.insert(token.clone(), IssuedToken { golfer_id: user.golfer_id, expires: exp, revoked: false });
    }
    json_response(
        StatusCode::OK,
        json!({"access_token": token, "expires_in": lifetime, "token_type": "Bearer", "scope": scope}),
    )
}

fn query_map(uri: &Uri) -> HashMap<String, String> {
    uri.query().map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default()
}

/// Players already booked on a tee time.
fn booked_players(inner: &Inner, tee_sheet_id: i64) -> u32 {
    inner
        .reservations
        .iter()
        .filter(|h| h.reservation.tee_sheet_id == tee_sheet_id)
        .map(|h| u32::from(h.reservation.players))
        .sum()
}

/// Places of `slot` not taken by a reservation.
fn places_left(inner: &Inner, slot: &FakeSlot) -> u8 {
    let left = u32::from(slot.places).saturating_sub(booked_players(inner, slot.tee_sheet_id));
    u8::try_from(left).unwrap_or(u8::MAX)
}

/// A slot as the search shows it: the booked players as `participants`, and at most the
/// places left as `maxPlayer`.
fn slot_json(s: &FakeSlot, left: u8, course_number: i64) -> Value {
    let holes: u8 = if s.holes_display.contains("18") { 18 } else { 9 };
    let max_players = s.max_players.min(left);
    json!({
        "teeSheetId": s.tee_sheet_id,
        "startTime": s.start.format("%Y-%m-%dT%H:%M:%S").to_string(),
        "courseTimeId": s.tee_sheet_id * 3,
        "startingTee": 1,
        "crossOverTeeSheetId": null,
        "participants": s.places.saturating_sub(left),
        "courseId": course_number,
        "courseDate": s.start.date().format("%Y-%m-%dT00:00:00").to_string(),
        "defaultRateCode": "N",
        "teeTypeId": 1,
        "holes": holes,
        "defaultHoles": holes,
        "siteId": 3,
        "courseName": FAKE_COURSE_NAME,
        "shItemPrices": [{
            "itemGuid": guid(),
            "shItemCode": "GreenFee18",
            "itemCode": "GF18",
            "price": s.price,
            "taxInclusivePrice": s.price,
            "taxCode": "NT",
            "itemDesc": "18 Hole Green Fee",
            "classCode": "R",
            "rateCode": "N",
            "currentPrice": s.price,
            "priceType": 1,
            "priceTypeName": "Regular"
        }],
        "holesDisplay": s.holes_display,
        "playersDisplay": format!("{}-{}", s.min_players, max_players),
        "minPlayer": s.min_players,
        "maxPlayer": max_players,
        "defaultClassCode": "R",
        "teeSuffix": ""
    })
}

fn tee_times(inner: &Inner, uri: &Uri) -> Response {
    let q = query_map(uri);
    let Some(date) = q.get("searchDate").and_then(|d| NaiveDate::parse_from_str(d.trim(), "%a %b %d %Y").ok()) else {
        return api_error(StatusCode::BAD_REQUEST, "searchDate is required, e.g. Sat Jun 14 2025");
    };
    let players: u8 = q.get("numberOfPlayer").and_then(|p| p.parse().ok()).unwrap_or(1);
    let this_course = q
        .get("courseIds")
        .is_none_or(|ids| ids.split(',').any(|id| id.trim().parse::<i64>().ok() == Some(inner.course_number)));
    let slots: Vec<Value> = inner
        .slots
        .iter()
        .filter(|s| this_course && s.start.date() == date && s.max_players >= players)
        .map(|s| (s, places_left(inner, s)))
        .filter(|(_, left)| *left >= players)
        .map(|(s, left)| slot_json(s, left, inner.course_number))
        .collect();
    if slots.is_empty() {
        return json_response(
            StatusCode::OK,
            json!({"isSuccess": false, "messageKey": "NO_TEETIMES", "message": "No tee times available"}),
        );
    }
    json_response(StatusCode::OK, Value::Array(slots))
}

fn lock(inner: &mut Inner, golfer: &FakeUser, body: &Value) -> Response {
    let reply = |session: Value, error: Value, warning: Value, ids: Value| {
        json_response(
            StatusCode::OK,
            json!({"teeSheetIds": ids, "sessionId": session, "error": error, "warning": warning}),
        )
    };
    let Some(id) = body["teeSheetIds"].get(0).and_then(Value::as_i64) else {
        return api_error(StatusCode::BAD_REQUEST, "teeSheetIds is required");
    };
    if body["golferId"].as_i64() != Some(golfer.golfer_id) {
        return api_error(StatusCode::FORBIDDEN, "golferId does not match the signed-in golfer");
    }
    let Some(slot) = inner.slots.iter().find(|s| s.tee_sheet_id == id).cloned() else {
        return reply(Value::Null, json!("Tee time not found"), Value::Null, json!([]));
    };
    let players = body["numberOfPlayer"].as_u64().unwrap_or(1);
    if players == 0 || players > u64::from(slot.max_players) || players < u64::from(slot.min_players) {
        return reply(
            Value::Null,
            json!("The number of players is not allowed for this tee time"),
            Value::Null,
            json!([]),
        );
    }
    if let Some(limit) = inner.per_day_limit {
        let that_day = inner
            .reservations
            .iter()
            .filter(|h| h.reservation.golfer_id == golfer.golfer_id && h.reservation.start.date() == slot.start.date())
            .count();
        if that_day >= limit {
            return reply(Value::Null, Value::Null, json!(ONE_PER_DAY_WARNING), json!([]));
        }
    }
    let left = places_left(inner, &slot);
    if left == 0 {
        return reply(Value::Null, json!("The selected tee time is no longer available"), Value::Null, json!([]));
    }
    if u64::from(left) < players {
        let message = format!("Only {left} place(s) left on the selected tee time");
        return reply(Value::Null, json!(message), Value::Null, json!([]));
    }
    let now = Instant::now();
    inner.locks.retain(|_, l| l.expires > now);
    let session = body["sessionId"].as_str().map(str::to_owned).unwrap_or_else(guid);
    if inner.locks.iter().any(|(s, l)| l.tee_sheet_id == id && *s != session) {
        return reply(Value::Null, json!(LOCK_HELD_ERROR), Value::Null, json!([]));
    }
    let expires = now + inner.lock_lifetime;
    inner.locks.insert(session.clone(), Lock { tee_sheet_id: id, golfer_id: golfer.golfer_id, expires });
    reply(json!(session), Value::Null, Value::Null, json!([id]))
}

fn price(inner: &mut Inner, body: &Value) -> Response {
    let Some(id) = body["selectedTeeSheetId"].as_i64() else {
        return api_error(StatusCode::BAD_REQUEST, "selectedTeeSheetId is required");
    };
    let participants = body["bookingList"].as_array().cloned().unwrap_or_default();
    let players = body["numberOfPlayer"].as_u64().unwrap_or(0);
    let holes = body["holes"].as_u64().unwrap_or(18);
    inner.pricing.push(PricingCall {
        selected_tee_sheet_id: id,
        number_of_player: players,
        holes,
        participants: participants.clone(),
    });
    let Some(slot) = inner.slots.iter().find(|s| s.tee_sheet_id == id).cloned() else {
        return api_error(StatusCode::BAD_REQUEST, "Tee time not found");
    };
    if participants.len() as u64 != players || players == 0 {
        return api_error(StatusCode::BAD_REQUEST, "bookingList must list every player");
    }
    let transaction_id = guid();
    let Some(players) = u8::try_from(players).ok().filter(|p| *p <= slot.max_players) else {
        return api_error(StatusCode::BAD_REQUEST, "numberOfPlayer is more than the tee time allows");
    };
    inner.txns.insert(transaction_id.clone(), Txn { tee_sheet_id: id, players });
    let total = slot.price * f64::from(players);
    json_response(
        StatusCode::OK,
        json!({
            "transactionId": transaction_id,
            "startTime": slot.start.format("%Y-%m-%dT%H:%M:%S").to_string(),
            "courseName": FAKE_COURSE_NAME,
            "holes": holes,
            "numberOfPlayer": players,
            "summaryDetail": {"subTotal": total, "total": total, "totalDueAtCourse": total, "totalTax": 0.0}
        }),
    )
}

fn reserve(inner: &mut Inner, golfer: &FakeUser, body: &Value) -> Response {
    let refuse = |message: &str| {
        json_response(
            StatusCode::OK,
            json!({"reservationId": 0, "bookingIds": [], "confirmationKey": null, "reservationResult": 0,
                   "bookingGolferId": null, "message": message}),
        )
    };
    if body["finalizeSaleModel"]["acct"].as_str() != Some(golfer.acct.as_str()) {
        return api_error(StatusCode::BAD_REQUEST, "acct does not match the signed-in golfer");
    }
    let session = body["lockedTeeTimesSessionId"].as_str().unwrap_or_default().to_owned();
    let txn_id = body["transactionId"].as_str().unwrap_or_default().to_owned();
    let now = Instant::now();
    let Some(lock) = inner.locks.get(&session).filter(|l| l.golfer_id == golfer.golfer_id && l.expires > now) else {
        return refuse("The tee time lock has expired");
    };
    let Some(txn) = inner.txns.get(&txn_id).filter(|t| t.tee_sheet_id == lock.tee_sheet_id) else {
        return refuse("Unknown transaction");
    };
    let (tee_sheet_id, players) = (txn.tee_sheet_id, txn.players);
    let Some(slot) = inner.slots.iter().find(|s| s.tee_sheet_id == tee_sheet_id).cloned() else {
        return refuse("Tee time not found");
    };
    if places_left(inner, &slot) < players {
        return refuse("The selected tee time is no longer available");
    }
    let id = inner.next_reservation_id;
    inner.next_reservation_id += 1;
    let key = confirmation_key();
    inner.locks.remove(&session);
    inner.txns.remove(&txn_id);
    let listed_from = now + inner.listing_delay;
    inner.reservations.push(Held {
        reservation: FakeReservation {
            reservation_id: id,
            confirmation_key: key.clone(),
            golfer_id: golfer.golfer_id,
            tee_sheet_id,
            start: slot.start,
            course_name: FAKE_COURSE_NAME.into(),
            players,
        },
        listed_from,
    });
    let booking_ids: Vec<i64> = (0..i64::from(players)).map(|i| id * 10 + i).collect();
    let answer = match inner.reserve_answer {
        ReserveAnswer::Complete => {
            json!({"reservationId": id, "bookingIds": booking_ids, "confirmationKey": key, "reservationResult": 1,
                   "bookingGolferId": golfer.golfer_id})
        }
        ReserveAnswer::WithoutReservationId => json!({"reservationResult": 1}),
        ReserveAnswer::ResultCode(code) => {
            json!({"reservationId": 0, "bookingIds": [], "confirmationKey": null, "reservationResult": code,
                   "bookingGolferId": null, "message": "The reservation is being processed"})
        }
    };
    json_response(StatusCode::OK, answer)
}

fn reservations(inner: &Inner, golfer: &FakeUser, uri: &Uri) -> Response {
    let q = query_map(uri);
    if q.get("golferId").and_then(|g| g.parse::<i64>().ok()) != Some(golfer.golfer_id) {
        return api_error(StatusCode::FORBIDDEN, "golferId does not match the signed-in golfer");
    }
    let page_size: usize = q.get("pageSize").and_then(|p| p.parse().ok()).filter(|p| *p > 0).unwrap_or(14);
    let page: usize = q.get("currentPage").and_then(|p| p.parse().ok()).filter(|p| *p > 0).unwrap_or(1);
    let now = Instant::now();
    let mut mine: Vec<&FakeReservation> = inner
        .reservations
        .iter()
        .filter(|h| h.reservation.golfer_id == golfer.golfer_id && h.listed_from <= now)
        .map(|h| &h.reservation)
        .collect();
    mine.sort_by_key(|r| r.start);
    let total = mine.len();
    let items: Vec<Value> = mine
        .iter()
        .skip((page - 1) * page_size)
        .take(page_size)
        .map(|r| {
            json!({
                "reservationId": r.reservation_id,
                "startTime": r.start.format("%Y-%m-%dT%H:%M:%S").to_string(),
                "courseName": r.course_name,
                "numberOfPlayer": r.players,
                "reservationConfirmKey": r.confirmation_key
            })
        })
        .collect();
    json_response(
        StatusCode::OK,
        json!({"items": items, "totalItems": total, "currentPage": page, "totalPages": total.div_ceil(page_size).max(1)}),
    )
}
