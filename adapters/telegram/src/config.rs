use beckon_core::{Secret, Url, start_param};
use serde::Deserialize;

use crate::TelegramError;

/// `[channels.telegram]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramConfig {
    /// Bot token from @BotFather.
    pub token: Secret,
    /// The bot's username without `@`.
    pub bot_username: String,
    /// The `secret_token` registered with `setWebhook`.
    pub webhook_secret: Secret,
    /// Bot API base URL.
    #[serde(default = "default_api_url")]
    pub api_url: Url,
    /// Timeout of one Bot API call, in milliseconds.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
}

fn default_api_url() -> Url {
    Url::parse("https://api.telegram.org").expect("constant URL parses")
}

fn default_request_timeout_ms() -> u64 {
    17_000
}

impl TelegramConfig {
    pub(crate) fn validate(&self) -> Result<(), TelegramError> {
        let bad = |key, reason: &str| TelegramError::Config {
            key,
            reason: reason.to_owned(),
        };
        if self.token.is_empty() {
            return Err(bad("token", "is empty"));
        }
        let name = self.bot_username.trim_start_matches('@');
        if !(5..=32).contains(&name.len())
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(bad("bot_username", "must be 5-32 of A-Z, a-z, 0-9 and _"));
        }
        // Telegram's own rule for setWebhook's secret_token.
        let secret = self.webhook_secret.expose();
        if !(1..=256).contains(&secret.len()) || !secret.chars().all(start_param::is_allowed) {
            return Err(bad(
                "webhook_secret",
                "must be 1-256 of A-Z, a-z, 0-9, _ and -",
            ));
        }
        if !matches!(self.api_url.scheme(), "http" | "https") || self.api_url.cannot_be_a_base() {
            return Err(bad("api_url", "must be an http or https URL"));
        }
        if self.request_timeout_ms == 0 {
            return Err(bad("request_timeout_ms", "must be above 0"));
        }
        Ok(())
    }
}
