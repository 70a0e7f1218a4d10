use std::time::Duration;

/// A boxed error cause, for variants that wrap a library's error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a webhook request was not accepted as coming from the platform (HTTP 401).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    /// The secret or signature header is absent.
    #[error("missing {0} header")]
    Missing(&'static str),
    /// The secret or signature does not match.
    #[error("{0} does not match")]
    Mismatch(&'static str),
}

/// Why a verified webhook body could not be understood (HTTP 400).
#[derive(Debug, thiserror::Error)]
#[error("malformed webhook body: {reason}")]
pub struct ParseError {
    /// What was wrong, without echoing the body.
    pub reason: String,
}

impl ParseError {
    /// Creates a parse error with a short reason.
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

/// Why a message could not be sent. [`SendError::is_retryable`] drives the retry policy.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The platform asked us to slow down.
    #[error("rate limited by the platform, retry after {retry_after:?}")]
    RateLimited {
        /// How long the platform asked us to wait.
        retry_after: Duration,
    },
    /// The user blocked the bot or cannot be reached any more.
    #[error("the user blocked the bot or cannot be reached")]
    Blocked,
    /// A failure that may go away by itself (network, platform 5xx).
    #[error("temporary send failure")]
    Transient(#[source] BoxError),
    /// A failure that will not go away without a change (bad chat id, bad token).
    #[error("permanent send failure")]
    Permanent(#[source] BoxError),
}

impl SendError {
    /// True when the same send may succeed later without any change.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Transient(_))
    }
}

/// Why a deeplink could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeeplinkError {
    /// The start parameter is empty.
    #[error("start parameter is empty")]
    Empty,
    /// The start parameter is longer than the platform allows.
    #[error("start parameter is {len} characters long, the platform allows at most {max}")]
    TooLong {
        /// Its length in characters.
        len: usize,
        /// The platform's maximum.
        max: usize,
    },
    /// The start parameter has a character outside the platform's alphabet.
    #[error(
        "start parameter has {ch:?} at position {position}; allowed are A-Z, a-z, 0-9, _ and -"
    )]
    InvalidChar {
        /// The first offending character.
        ch: char,
        /// Its position, counted in characters from 0.
        position: usize,
    },
    /// The link could not be assembled (for example a bad bot name in the config).
    #[error("cannot build deeplink: {0}")]
    Invalid(String),
}
