use serde::{Deserialize, Serialize};
use url::Url;

/// A message to send to a chat.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundMessage {
    /// Plain text, no markup.
    pub text: String,
    /// Buttons shown under the message, one per row; may be empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<Button>,
}

impl OutboundMessage {
    /// A text-only message.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            buttons: Vec::new(),
        }
    }
}

/// A button under a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Button {
    /// Opens a URL.
    Url {
        /// Label.
        text: String,
        /// Target.
        url: Url,
    },
    /// Comes back as an [`crate::EventKind::Button`] event carrying `payload`.
    Payload {
        /// Label.
        text: String,
        /// Returned to the bot when pressed.
        payload: String,
    },
}

/// What the platform said about a sent message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sent {
    /// The platform's message id, when it returns one.
    pub message_id: Option<String>,
}
