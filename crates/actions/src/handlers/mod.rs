//! The web-action handlers: the `WebActionHandler` port implemented for `weather` (NOAA)
//! and `golf` (cps.golf). They read only the payload fields they document; URLs always
//! come from configuration (the NOAA origin, the course's origin), never from a message.

mod args;
pub mod golf;
pub mod weather;

pub use golf::GolfAction;
pub use weather::WeatherAction;
