//! `rez-testkit`: fake outside services on 127.0.0.1 that speak the real wire formats,
//! so clients and end-to-end flows can be tested without the internet (and without
//! services that cannot be installed here, such as an ntfy server).

pub mod ntfy;

pub use ntfy::{FakeNtfy, PublishForm, ReceivedPush};
