#![doc = include_str!("../README.md")]

mod config;
mod deeplink;
mod error;
mod parse;
mod send;
mod verify;

use async_trait::async_trait;
use beckon_core::{
    Channel, DeeplinkError, Event, OutboundMessage, ParseError, SendError, Sent, Url, VerifyError,
    WebhookRequest,
};
use teloxide_core::Bot;

pub use config::TelegramConfig;
pub use error::TelegramError;

/// The channel name: route segment, config key and `channel` value.
pub const NAME: &str = "telegram";

/// The Telegram channel.
pub struct Telegram {
    config: TelegramConfig,
    bot: Bot,
}

impl std::fmt::Debug for Telegram {
    // The Bot holds the token, so it is left out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telegram")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Telegram {
    /// Builds the channel, checking the config.
    pub fn new(config: TelegramConfig) -> Result<Self, TelegramError> {
        config.validate()?;
        let bot = send::bot(&config)?;
        Ok(Self { config, bot })
    }

    /// The validated config.
    pub fn config(&self) -> &TelegramConfig {
        &self.config
    }
}

#[async_trait]
impl Channel for Telegram {
    fn name(&self) -> &'static str {
        NAME
    }

    fn verify(&self, req: &WebhookRequest<'_>) -> Result<(), VerifyError> {
        verify::secret_token(req.headers, &self.config.webhook_secret)
    }

    fn parse(&self, req: &WebhookRequest<'_>) -> Result<Vec<Event>, ParseError> {
        parse::update(req.body, &self.config.bot_username)
    }

    async fn send(&self, chat_id: &str, msg: &OutboundMessage) -> Result<Sent, SendError> {
        send::message(&self.bot, chat_id, msg).await
    }

    fn deeplink(&self, start_param: Option<&str>) -> Result<Url, DeeplinkError> {
        deeplink::build(&self.config.bot_username, start_param)
    }
}
