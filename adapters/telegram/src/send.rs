use std::time::Duration;

use beckon_core::{BoxError, Button, OutboundMessage, SendError, Sent};
use teloxide_core::payloads::SendMessageSetters;
use teloxide_core::prelude::Requester;
use teloxide_core::types::{ChatId, InlineKeyboardButton, InlineKeyboardMarkup, Recipient};
use teloxide_core::{ApiError, Bot, RequestError};

use crate::{TelegramConfig, TelegramError};

pub(crate) fn bot(config: &TelegramConfig) -> Result<Bot, TelegramError> {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_millis(config.request_timeout_ms))
        .tcp_nodelay(true)
        .build()
        .map_err(TelegramError::Client)?;
    Ok(Bot::with_client(config.token.expose(), client).set_api_url(config.api_url.clone()))
}

#[tracing::instrument(name = "telegram.send", skip_all)]
pub(crate) async fn message(
    bot: &Bot,
    chat_id: &str,
    msg: &OutboundMessage,
) -> Result<Sent, SendError> {
    let recipient = recipient(chat_id)?;
    let mut request = bot.send_message(recipient, msg.text.clone());
    if !msg.buttons.is_empty() {
        let rows = msg.buttons.iter().map(|b| vec![button(b)]);
        request = request.reply_markup(InlineKeyboardMarkup::new(rows));
    }
    match request.await {
        Ok(sent) => Ok(Sent {
            message_id: Some(sent.id.0.to_string()),
        }),
        Err(e) => Err(classify(e)),
    }
}

fn recipient(chat_id: &str) -> Result<Recipient, SendError> {
    if let Ok(id) = chat_id.parse::<i64>() {
        return Ok(Recipient::Id(ChatId(id)));
    }
    if chat_id.starts_with('@') {
        return Ok(Recipient::ChannelUsername(chat_id.to_owned()));
    }
    Err(permanent(format!("{chat_id:?} is not a Telegram chat id")))
}

fn button(b: &Button) -> InlineKeyboardButton {
    match b {
        Button::Url { text, url } => InlineKeyboardButton::url(text.clone(), url.clone()),
        Button::Payload { text, payload } => {
            InlineKeyboardButton::callback(text.clone(), payload.clone())
        }
    }
}

/// Maps teloxide's error to the send contract. Messages are built here rather than
/// taken from reqwest, whose errors quote the request URL, and that URL holds the token.
fn classify(e: RequestError) -> SendError {
    match e {
        RequestError::RetryAfter(secs) => SendError::RateLimited {
            retry_after: secs.duration(),
        },
        RequestError::Api(
            ApiError::BotBlocked
            | ApiError::UserDeactivated
            | ApiError::BotKicked
            | ApiError::BotKickedFromSupergroup
            | ApiError::BotKickedFromChannel,
        ) => SendError::Blocked,
        RequestError::Api(ApiError::Unknown(desc)) => unknown_api_error(&desc),
        RequestError::Api(api) => permanent(format!("Telegram refused the message: {api}")),
        RequestError::MigrateToChatId(id) => permanent(format!(
            "the group was upgraded to a supergroup with chat id {}",
            id.0
        )),
        RequestError::Network(e) => {
            let what = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "could not connect"
            } else {
                "failed"
            };
            transient(format!("request to the Telegram API {what}"))
        }
        // A proxy in front of the Bot API answering with HTML, or a truncated answer.
        RequestError::InvalidJson { .. } => {
            transient("the Telegram API answered with something that is not its JSON")
        }
        RequestError::Io(_) => transient("I/O error while talking to the Telegram API"),
    }
}

/// teloxide keeps the description but not the HTTP status; Telegram's 5xx descriptions are
/// the reason phrases, and a 429 without `parameters` still says "Too Many Requests".
fn unknown_api_error(desc: &str) -> SendError {
    const SERVER_ERRORS: [&str; 4] = [
        "Internal Server Error",
        "Bad Gateway",
        "Service Unavailable",
        "Gateway Timeout",
    ];
    if SERVER_ERRORS.iter().any(|p| desc.starts_with(p)) {
        return transient(format!("Telegram API server error: {desc}"));
    }
    if let Some(rest) = desc.strip_prefix("Too Many Requests") {
        let secs = rest
            .rsplit(' ')
            .next()
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or(1);
        return SendError::RateLimited {
            retry_after: Duration::from_secs(secs),
        };
    }
    permanent(format!("Telegram refused the message: {desc}"))
}

fn transient(msg: impl Into<String>) -> SendError {
    SendError::Transient(BoxError::from(msg.into()))
}

fn permanent(msg: impl Into<String>) -> SendError {
    SendError::Permanent(BoxError::from(msg.into()))
}
