/// Why the Telegram channel could not be built from its config.
#[derive(Debug, thiserror::Error)]
pub enum TelegramError {
    /// A config key has an unusable value.
    #[error("[channels.telegram] {key}: {reason}")]
    Config {
        /// The key at fault.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client for the Telegram API: {0}")]
    Client(#[source] reqwest::Error),
}
