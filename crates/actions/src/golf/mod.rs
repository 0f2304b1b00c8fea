//! Golf at Club Prophet (cps.golf) courses (SPEC §6.4).
//!
//! - [`courses`]: the course configuration every URL is built from (built-in Birdsfoot and
//!   Totteridge plus a user YAML file);
//! - [`auth`]: password-grant sign-in, the token cache and JWT verification against the
//!   course JWKS — the golfer's identity comes only from a verified token;
//! - [`client`]: search, reservations and the lock → price → reserve steps;
//! - [`booking`]: exactly-once booking over a [`booking::BookingLedger`];
//! - [`model`]: the wire types and structured results;
//! - [`summary`]: readable texts.

pub mod auth;
pub mod booking;
pub mod client;
pub mod courses;
pub mod model;
pub mod summary;

pub use auth::{AccessToken, AuthConfig, AuthError, GolfCredentials, GolfSession, GolferIdentity, JwtRejection};
pub use booking::{
    AttemptId, Booker, BookingConfirmation, BookingError, BookingIntent, BookingKey, BookingLedger, BookingOutcome,
    BookingPath, BookingPolicy, ClaimOutcome, InMemoryLedger, Lease, LedgerEntry, LedgerError, LedgerState,
    Verification,
};
pub use client::{GolfClient, GolfConfig, GolfError, SearchRequest, Step};
pub use courses::{Course, CourseApiIds, CourseError, CoursePaths, Courses};
pub use model::{Holes, LockedTeeTime, PricedTeeTime, Reservation, ReservationReceipt, TeeTimeSlot};
