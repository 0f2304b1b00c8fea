//! `rez-testkit`: fake outside services on 127.0.0.1 that speak the real wire formats —
//! ntfy, NOAA api.weather.gov, a cps.golf course and a model provider (Anthropic, OpenAI,
//! Bedrock Converse) — so clients and end-to-end flows can
//! be tested without the internet (and without services that cannot be installed or must
//! not be touched from tests, such as an ntfy server or a real tee sheet).

pub mod golf;
pub mod lambda;
pub mod model;
pub mod moto;
mod moto_serial;
pub mod noaa;
pub mod ntfy;
mod server;

pub use golf::{
    FakeCpsGolf, FakeReservation, FakeSlot, FakeUser, GolfFault, GolfStep, PricingCall, ReserveAnswer, TokenKind,
};
pub use lambda::{FakeLambdaRuntime, Invocation};
pub use model::{
    FakeArguments, FakeCallId, FakeModel, FakeReply, FakeToolCall, FakeTurn, SeenRequest, Violation, WireFormat,
};
pub use moto::Moto;
pub use noaa::FakeNoaa;
pub use ntfy::{FakeNtfy, PublishForm, ReceivedPush};
