//! A fake NOAA api.weather.gov on 127.0.0.1 for tests and demos.
//!
//! The weather client cannot reach NOAA from where rez_agent is built, so this fake serves
//! NOAA's real JSON shapes for the three calls the client makes:
//!
//! - `GET /points/{lat},{lon}` → a GeoJSON feature whose `properties.forecast` and
//!   `properties.forecastHourly` point back at this fake
//!   (`/gridpoints/{office}/{x},{y}/forecast` and `…/forecast/hourly`);
//! - `GET /gridpoints/{office}/{x},{y}/forecast` → `properties.periods` with NOAA's field
//!   names (`number`, `name`, `startTime`, `endTime`, `isDaytime`, `temperature`,
//!   `temperatureUnit`, `temperatureTrend`, `windSpeed`, `windDirection`, `shortForecast`,
//!   `detailedForecast`, `probabilityOfPrecipitation: {unitCode, value}`);
//! - `GET …/forecast/hourly` → hourly periods.
//!
//! Like NOAA it refuses requests without a `User-Agent` (403) and answers errors as
//! `application/problem+json`. Tests can start the forecast with a night period, count
//! requests per endpoint (to prove the points cache), read the User-Agents received, and
//! inject failures.

use crate::server::LoopbackServer;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveTime, Offset, TimeZone, Timelike, Utc};
use serde_json::{Value, json};

/// The grid cell the fake reports for every point (Pittsburgh's office, as for the two
/// built-in courses).
pub const FAKE_OFFICE: &str = "PBZ";

#[derive(Debug, Clone)]
struct Settings {
    first_date: NaiveDate,
    offset: FixedOffset,
    start_with_night: bool,
    period_count: usize,
    hourly_count: usize,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    points: usize,
    forecast: usize,
    hourly: usize,
    other: usize,
}

struct Inner {
    settings: Settings,
    counters: Counters,
    user_agents: Vec<Option<String>>,
    paths: Vec<String>,
    faults: VecDeque<StatusCode>,
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

/// Handle of a running fake NOAA; the server stops when the handle is dropped.
pub struct FakeNoaa {
    server: LoopbackServer,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FakeNoaa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeNoaa").field("addr", &self.server.addr()).finish()
    }
}

impl FakeNoaa {
    /// Start on an ephemeral port of 127.0.0.1.
    ///
    /// # Panics
    /// If 127.0.0.1 cannot be bound (a broken test environment); see [`FakeNoaa::try_start`].
    pub async fn start() -> Self {
        match Self::try_start().await {
            Ok(fake) => fake,
            Err(e) => panic!("fake NOAA: cannot listen on 127.0.0.1: {e}"),
        }
    }

    pub async fn try_start() -> std::io::Result<Self> {
        let (listener, addr) = LoopbackServer::bind().await?;
        let offset = FixedOffset::west_opt(4 * 3600).unwrap_or_else(|| Utc.fix());
        let settings = Settings {
            first_date: Utc::now().with_timezone(&offset).date_naive(),
            offset,
            start_with_night: false,
            period_count: 14,
            hourly_count: 156,
        };
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                settings,
                counters: Counters::default(),
                user_agents: Vec::new(),
                paths: Vec::new(),
                faults: VecDeque::new(),
            }),
            base: format!("http://{addr}"),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let server = LoopbackServer::serve(listener, app, "NOAA");
        Ok(Self { server, shared })
    }

    /// Base URL (what the weather client is configured with): `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.shared.base.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The calendar day the forecast starts on (default: today at UTC−4).
    pub fn set_first_date(&self, date: NaiveDate) {
        self.shared.lock().settings.first_date = date;
    }

    /// The UTC offset of the forecast's times (default −04:00).
    pub fn set_offset(&self, offset: FixedOffset) {
        self.shared.lock().settings.offset = offset;
    }

    /// Start the forecast with "Tonight", as NOAA does in the evening.
    pub fn start_with_night(&self, yes: bool) {
        self.shared.lock().settings.start_with_night = yes;
    }

    /// Number of twice-daily periods (NOAA serves 14).
    pub fn set_period_count(&self, n: usize) {
        self.shared.lock().settings.period_count = n;
    }

    /// `/points` requests received (failed ones included).
    pub fn points_requests(&self) -> usize {
        self.shared.lock().counters.points
    }

    /// Forecast requests received.
    pub fn forecast_requests(&self) -> usize {
        self.shared.lock().counters.forecast
    }

    /// Hourly forecast requests received.
    pub fn hourly_requests(&self) -> usize {
        self.shared.lock().counters.hourly
    }

    /// All requests received.
    pub fn total_requests(&self) -> usize {
        let c = self.shared.lock().counters;
        c.points + c.forecast + c.hourly + c.other
    }

    /// The `User-Agent` of every request, in order.
    pub fn user_agents(&self) -> Vec<Option<String>> {
        self.shared.lock().user_agents.clone()
    }

    /// The path of every request, in order.
    pub fn paths(&self) -> Vec<String> {
        self.shared.lock().paths.clone()
    }

    /// Answer the next `n` requests with `status` (a NOAA problem document).
    pub fn fail_next(&self, n: usize, status: u16) {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        self.shared.lock().faults.extend(std::iter::repeat_n(status, n));
    }

    /// The twice-daily periods the fake serves with its current settings, as NOAA JSON.
    pub fn forecast_periods(&self) -> Vec<Value> {
        let settings = self.shared.lock().settings.clone();
        daily_periods(&settings)
    }
}

fn problem(status: StatusCode, title: &str, detail: &str) -> Response {
    let body = json!({
        "correlationId": "fake-0000",
        "title": title,
        "type": "https://api.weather.gov/problems/UnexpectedProblem",
        "status": status.as_u16(),
        "detail": detail,
        "instance": "https://api.weather.gov/requests/fake-0000",
    });
    let mut resp = (status, axum::Json(body)).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/problem+json"));
    resp
}

fn geo_json(body: Value) -> Response {
    let mut resp = (StatusCode::OK, axum::Json(body)).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/geo+json"));
    resp
}

enum Route {
    Points(f64, f64),
    Forecast { office: String, x: i64, y: i64 },
    Hourly { office: String, x: i64, y: i64 },
    Unknown,
}

fn route(path: &str) -> Route {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let pair = |s: &str| -> Option<(String, String)> { s.split_once(',').map(|(a, b)| (a.to_owned(), b.to_owned())) };
    match segs.as_slice() {
        ["points", coords] => match pair(coords).and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?))) {
            Some((lat, lon)) => Route::Points(lat, lon),
            None => Route::Unknown,
        },
        ["gridpoints", office, xy, "forecast"] | ["gridpoints", office, xy, "forecast", "hourly"] => {
            let Some((x, y)) = pair(xy).and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?))) else {
                return Route::Unknown;
            };
            let office = (*office).to_owned();
            if segs.len() == 5 { Route::Hourly { office, x, y } } else { Route::Forecast { office, x, y } }
        }
        _ => Route::Unknown,
    }
}

async fn handle(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri.path().to_owned();
    let r = route(&path);
    let (fault, settings) = {
        let mut inner = shared.lock();
        match &r {
            Route::Points(..) => inner.counters.points += 1,
            Route::Forecast { .. } => inner.counters.forecast += 1,
            Route::Hourly { .. } => inner.counters.hourly += 1,
            Route::Unknown => inner.counters.other += 1,
        }
        let ua = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned);
        inner.user_agents.push(ua);
        inner.paths.push(path.clone());
        (inner.faults.pop_front(), inner.settings.clone())
    };
    if let Some(status) = fault {
        return problem(status, "Unexpected Problem", "An unexpected problem has occurred (injected by the fake).");
    }
    if headers.get(header::USER_AGENT).is_none_or(|v| v.is_empty()) {
        return problem(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "A User-Agent header identifying the application is required.",
        );
    }
    let base = &shared.base;
    match r {
        Route::Points(lat, lon) => geo_json(points_doc(base, lat, lon)),
        Route::Forecast { office, x, y } => geo_json(forecast_doc(base, &office, x, y, daily_periods(&settings))),
        Route::Hourly { office, x, y } => geo_json(forecast_doc(base, &office, x, y, hourly_periods(&settings))),
        Route::Unknown => problem(StatusCode::NOT_FOUND, "Not Found", "The requested resource was not found."),
    }
}

fn points_doc(base: &str, lat: f64, lon: f64) -> Value {
    let (x, y) = (95, 64);
    json!({
        "@context": ["https://geojson.org/geojson-ld/geojson-context.jsonld"],
        "id": format!("{base}/points/{lat},{lon}"),
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {
            "@id": format!("{base}/points/{lat},{lon}"),
            "@type": "wx:Point",
            "cwa": FAKE_OFFICE,
            "forecastOffice": format!("{base}/offices/{FAKE_OFFICE}"),
            "gridId": FAKE_OFFICE,
            "gridX": x,
            "gridY": y,
            "forecast": format!("{base}/gridpoints/{FAKE_OFFICE}/{x},{y}/forecast"),
            "forecastHourly": format!("{base}/gridpoints/{FAKE_OFFICE}/{x},{y}/forecast/hourly"),
            "forecastGridData": format!("{base}/gridpoints/{FAKE_OFFICE}/{x},{y}"),
            "observationStations": format!("{base}/gridpoints/{FAKE_OFFICE}/{x},{y}/stations"),
            "relativeLocation": {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": {"city": "Greensburg", "state": "PA"}
            },
            "forecastZone": format!("{base}/zones/forecast/PAZ029"),
            "county": format!("{base}/zones/county/PAC129"),
            "fireWeatherZone": format!("{base}/zones/fire/PAZ029"),
            "timeZone": "America/New_York",
            "radarStation": "KPBZ"
        }
    })
}

fn forecast_doc(base: &str, office: &str, x: i64, y: i64, periods: Vec<Value>) -> Value {
    let now = Utc::now().to_rfc3339();
    json!({
        "@context": ["https://geojson.org/geojson-ld/geojson-context.jsonld"],
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [[[-79.5, 40.3], [-79.5, 40.4], [-79.4, 40.4], [-79.5, 40.3]]]},
        "properties": {
            "@id": format!("{base}/gridpoints/{office}/{x},{y}/forecast"),
            "units": "us",
            "forecastGenerator": "BaselineForecastGenerator",
            "generatedAt": now,
            "updateTime": now,
            "validTimes": format!("{now}/P7DT14H"),
            "elevation": {"unitCode": "wmoUnit:m", "value": 358.1},
            "periods": periods
        }
    })
}

const WIND: [&str; 4] = ["SW", "W", "NW", "N"];
const SHORT: [&str; 5] = ["Sunny", "Partly Cloudy", "Chance Showers And Thunderstorms", "Mostly Cloudy", "Rain Likely"];

fn at(settings: &Settings, date: NaiveDate, hour: u32) -> DateTime<FixedOffset> {
    let t = date.and_time(NaiveTime::from_hms_opt(hour, 0, 0).unwrap_or(NaiveTime::MIN));
    settings.offset.from_local_datetime(&t).single().unwrap_or_else(|| settings.offset.from_utc_datetime(&t))
}

fn pop(value: Option<u8>) -> Value {
    json!({"unitCode": "wmoUnit:percent", "value": value})
}

/// NOAA's twice-daily periods: "Today"/"Tonight", then weekday names.
fn daily_periods(settings: &Settings) -> Vec<Value> {
    let mut out = Vec::new();
    let mut date = settings.first_date;
    let mut daytime = !settings.start_with_night;
    for i in 0..settings.period_count {
        let first_day = date == settings.first_date;
        let weekday = date.format("%A").to_string();
        let name = match (first_day, daytime) {
            (true, true) => "Today".to_owned(),
            (true, false) => "Tonight".to_owned(),
            (false, true) => weekday,
            (false, false) => format!("{weekday} Night"),
        };
        let (start, end) = if daytime {
            (at(settings, date, 6), at(settings, date, 18))
        } else {
            (at(settings, date, 18), at(settings, date + Duration::days(1), 6))
        };
        let day_index = (date - settings.first_date).num_days();
        let temperature = if daytime { 70 + day_index } else { 50 + day_index };
        let short = SHORT[i % SHORT.len()];
        let precip = if i % 3 == 0 { None } else { Some(((i * 10) % 100) as u8) };
        out.push(json!({
            "number": i + 1,
            "name": name,
            "startTime": start.to_rfc3339(),
            "endTime": end.to_rfc3339(),
            "isDaytime": daytime,
            "temperature": temperature,
            "temperatureUnit": "F",
            "temperatureTrend": if i == 1 { Value::from("falling") } else { Value::Null },
            "probabilityOfPrecipitation": pop(precip),
            "windSpeed": format!("{} to {} mph", 5 + i % 3, 10 + i % 3),
            "windDirection": WIND[i % WIND.len()],
            "icon": format!("https://api.weather.gov/icons/land/{}/few?size=medium", if daytime { "day" } else { "night" }),
            "shortForecast": short,
            "detailedForecast": format!("{short}, with a high near {temperature}."),
        }));
        if !daytime {
            date += Duration::days(1);
        }
        daytime = !daytime;
    }
    out
}

/// Hourly periods starting at 06:00 (or 18:00 when the forecast starts at night).
fn hourly_periods(settings: &Settings) -> Vec<Value> {
    let first_hour = if settings.start_with_night { 18 } else { 6 };
    let start = at(settings, settings.first_date, first_hour);
    (0..settings.hourly_count)
        .map(|i| {
            let s = start + Duration::hours(i as i64);
            let e = s + Duration::hours(1);
            let hour = s.hour();
            let daytime = (6..18).contains(&hour);
            let temperature = 55 + (hour as i64 % 12) + i64::from(s.day() % 3);
            json!({
                "number": i + 1,
                "name": "",
                "startTime": s.to_rfc3339(),
                "endTime": e.to_rfc3339(),
                "isDaytime": daytime,
                "temperature": temperature,
                "temperatureUnit": "F",
                "temperatureTrend": "",
                "probabilityOfPrecipitation": pop(Some((i % 5 * 10) as u8)),
                "dewpoint": {"unitCode": "wmoUnit:degC", "value": 12.2},
                "relativeHumidity": {"unitCode": "wmoUnit:percent", "value": 60},
                "windSpeed": "7 mph",
                "windDirection": "SW",
                "icon": "https://api.weather.gov/icons/land/day/few?size=small",
                "shortForecast": SHORT[i % SHORT.len()],
                "detailedForecast": "",
            })
        })
        .collect()
}
