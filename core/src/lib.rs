#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod channel;
mod error;
mod event;
mod message;
mod secret;
pub mod start_param;

pub use channel::{Channel, WebhookRequest};
pub use error::{BoxError, DeeplinkError, ParseError, SendError, VerifyError};
pub use event::{Event, EventKind, UserProfile};
pub use message::{Button, OutboundMessage, Sent};
pub use secret::Secret;

/// Re-exported so adapters and the gateway agree on one URL type.
pub use url::Url;
