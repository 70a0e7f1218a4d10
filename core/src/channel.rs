use std::fmt;

use async_trait::async_trait;
use http::HeaderMap;
use url::Url;

use crate::{DeeplinkError, Event, OutboundMessage, ParseError, SendError, Sent, VerifyError};

/// Borrowed view of one webhook call. The body stays raw bytes so signatures verify
/// over exactly what the platform sent.
#[derive(Clone, Copy, Debug)]
pub struct WebhookRequest<'a> {
    /// Request headers as received.
    pub headers: &'a HeaderMap,
    /// Raw query string without the leading `?`, if any.
    pub query: Option<&'a str>,
    /// Raw request body.
    pub body: &'a [u8],
}

/// One messenger platform.
///
/// The gateway holds channels as `Arc<dyn Channel>`, so the trait is dyn-compatible:
/// only [`Channel::send`] is async, the other methods are pure and cheap to test.
#[async_trait]
pub trait Channel: fmt::Debug + Send + Sync + 'static {
    /// Stable lowercase id: route segment, config key, the `channel` value sent to the CRM.
    fn name(&self) -> &'static str;

    /// Checks the platform secret or signature over the raw request, in constant time.
    ///
    /// # Behavior
    /// A missing credential is [`VerifyError::Missing`], a wrong one [`VerifyError::Mismatch`].
    /// Nothing about the body is inspected beyond what the signature needs.
    fn verify(&self, req: &WebhookRequest<'_>) -> Result<(), VerifyError>;

    /// Turns a verified request into zero or more events. No I/O.
    ///
    /// # Behavior
    /// - A re-delivered update yields events with the same `dedupe_key`.
    /// - Kinds the gateway does not act on yield no events and no error.
    /// - A body that is not the platform's shape is a [`ParseError`], never a panic.
    fn parse(&self, req: &WebhookRequest<'_>) -> Result<Vec<Event>, ParseError>;

    /// Sends one message to `chat_id`. The only method that touches the network.
    async fn send(&self, chat_id: &str, msg: &OutboundMessage) -> Result<Sent, SendError>;

    /// Builds the link that opens the bot with `start_param`, or says why it cannot.
    fn deeplink(&self, start_param: Option<&str>) -> Result<Url, DeeplinkError>;
}
