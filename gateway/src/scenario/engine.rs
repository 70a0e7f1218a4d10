//! Runs one step at a time. The worker persists the cursor between steps, so a crash
//! resumes at the step that was running rather than at the top of the node.

use std::time::{Duration, Instant};

use beckon_core::{Button, Channel, OutboundMessage, SendError};

use super::template::Vars;
use super::{ButtonTemplate, SendMe, SendMeMethod, Step};
use crate::error::ErrorChain;

/// What the run does after a step.
#[derive(Debug, PartialEq, Eq)]
pub enum StepOutcome {
    /// Go on with the next step of the node.
    Next,
    /// Continue at the first step of a node.
    Jump(String),
    /// Run this step again later (same attempt counter + 1).
    Retry {
        /// Delay before the next attempt.
        after: Duration,
        /// Why, for the job's `last_error`.
        reason: String,
    },
    /// Wait and run this step again without counting an attempt (platform rate limit).
    Wait {
        /// Delay the platform asked for.
        after: Duration,
    },
    /// The user blocked the bot: the contact is marked and the job fails.
    Blocked,
    /// Stop the run; the job fails with this error.
    Fail(String),
}

/// What a step needs to know about the run.
pub struct StepContext<'a> {
    /// Placeholder values.
    pub vars: &'a Vars,
    /// The command that started the run (`start` for a Start event), if any.
    pub command: Option<&'a str>,
    /// The channel of the chat.
    pub channel: &'a dyn Channel,
    /// The chat.
    pub chat_id: &'a str,
    /// Attempts of this step made before, 0 on the first.
    pub attempt: u32,
    /// Stable across attempts of this step: sent to the CRM to de-duplicate callbacks.
    pub event_id: &'a str,
    /// HTTP client for send_me.
    pub http: &'a reqwest::Client,
    /// send_message retry policy.
    pub send_retries: u32,
    /// First send_message retry delay.
    pub send_backoff: Duration,
}

/// True when a step talks to the outside world, so the cursor must be saved after it.
pub fn has_side_effect(step: &Step) -> bool {
    matches!(step, Step::SendMe(_) | Step::SendMessage { .. })
}

/// Runs one step.
pub async fn run_step(step: &Step, ctx: &StepContext<'_>) -> StepOutcome {
    match step {
        Step::GetCommand { commands, default } => {
            let target = ctx
                .command
                .and_then(|c| commands.get(c))
                .or(default.as_ref());
            match target {
                Some(node) => StepOutcome::Jump(node.clone()),
                None => StepOutcome::Next,
            }
        }
        Step::Goto(node) => StepOutcome::Jump(node.clone()),
        Step::SendMe(s) => send_me(s, ctx).await,
        Step::SendMessage { text, buttons } => send_message(text, buttons, ctx).await,
    }
}

async fn send_message(
    text: &super::template::Template,
    buttons: &[ButtonTemplate],
    ctx: &StepContext<'_>,
) -> StepOutcome {
    let msg = match render_message(text, buttons, ctx.vars) {
        Ok(m) => m,
        Err(e) => return StepOutcome::Fail(e),
    };
    match ctx.channel.send(ctx.chat_id, &msg).await {
        Ok(_) => StepOutcome::Next,
        Err(SendError::Blocked) => StepOutcome::Blocked,
        Err(SendError::RateLimited { retry_after }) => {
            tracing::warn!(
                retry_after_ms = retry_after.as_millis() as u64,
                "send rate limited, waiting"
            );
            StepOutcome::Wait { after: retry_after }
        }
        Err(e @ SendError::Transient(_)) if ctx.attempt < ctx.send_retries => {
            let after = backoff(ctx.send_backoff, ctx.attempt);
            tracing::warn!(attempt = ctx.attempt + 1, error = %ErrorChain(&e), "send failed, will retry");
            StepOutcome::Retry {
                after,
                reason: ErrorChain(&e).to_string(),
            }
        }
        Err(e) => StepOutcome::Fail(ErrorChain(&e).to_string()),
    }
}

fn render_message(
    text: &super::template::Template,
    buttons: &[ButtonTemplate],
    vars: &Vars,
) -> Result<OutboundMessage, String> {
    let mut msg = OutboundMessage::text(text.render(vars).map_err(|e| e.to_string())?);
    for b in buttons {
        let button = match b {
            ButtonTemplate::Url { text, url } => {
                let url = url.render_url(vars).map_err(|e| e.to_string())?;
                Button::Url {
                    text: text.render(vars).map_err(|e| e.to_string())?,
                    url: url::Url::parse(&url).map_err(|e| format!("button url: {e}"))?,
                }
            }
            ButtonTemplate::Payload { text, payload } => Button::Payload {
                text: text.render(vars).map_err(|e| e.to_string())?,
                payload: payload.render(vars).map_err(|e| e.to_string())?,
            },
        };
        msg.buttons.push(button);
    }
    Ok(msg)
}

/// The header carrying [`StepContext::event_id`].
pub const EVENT_ID_HEADER: &str = "x-beckon-event-id";
/// The header carrying the attempt number, from 1.
pub const ATTEMPT_HEADER: &str = "x-beckon-attempt";

enum CallError {
    /// 5xx, timeout, connection failure: worth another attempt.
    Transient(String),
    /// Anything else: retrying would give the same answer.
    Final(String),
}

async fn send_me(s: &SendMe, ctx: &StepContext<'_>) -> StepOutcome {
    let attempt = ctx.attempt + 1;
    let started = Instant::now();
    let result = call_crm(s, ctx, attempt).await;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(status) => {
            tracing::info!(attempt, status, elapsed_ms, "send_me ok");
            match &s.on_ok {
                Some(node) => StepOutcome::Jump(node.clone()),
                None => StepOutcome::Next,
            }
        }
        Err(CallError::Transient(reason)) if ctx.attempt < s.retries => {
            let after = backoff(s.retry_backoff, ctx.attempt);
            tracing::warn!(attempt, elapsed_ms, error = %reason, retry_in_ms = after.as_millis() as u64, "send_me attempt failed, will retry");
            StepOutcome::Retry {
                after,
                reason: format!("send_me: {reason}"),
            }
        }
        Err(CallError::Transient(reason) | CallError::Final(reason)) => {
            tracing::warn!(attempt, elapsed_ms, error = %reason, "send_me not_ok");
            match &s.on_not_ok {
                Some(node) => StepOutcome::Jump(node.clone()),
                None => {
                    StepOutcome::Fail(format!("send_me not_ok and no on_not_ok branch: {reason}"))
                }
            }
        }
    }
}

async fn call_crm(s: &SendMe, ctx: &StepContext<'_>, attempt: u32) -> Result<u16, CallError> {
    let rendered = s
        .url
        .render_url(ctx.vars)
        .map_err(|e| CallError::Final(e.to_string()))?;
    let mut url = url::Url::parse(&rendered)
        .map_err(|e| CallError::Final(format!("url is not valid after substitution: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(CallError::Final(
            "only http and https URLs are allowed".to_owned(),
        ));
    }
    let mut data = serde_json::Map::with_capacity(s.data.len() + 2);
    for (key, template) in &s.data {
        let value = template
            .render(ctx.vars)
            .map_err(|e| CallError::Final(e.to_string()))?;
        data.insert(key.clone(), value);
    }
    data.insert("chat_id".to_owned(), ctx.chat_id.into());
    data.insert("channel".to_owned(), ctx.channel.name().into());

    let mut request = match s.method {
        SendMeMethod::Get => {
            {
                let mut query = url.query_pairs_mut();
                for (key, value) in &data {
                    match value {
                        serde_json::Value::String(v) => query.append_pair(key, v),
                        serde_json::Value::Null => query.append_pair(key, ""),
                        other => query.append_pair(key, &other.to_string()),
                    };
                }
            }
            ctx.http.get(url)
        }
        SendMeMethod::Post => {
            let body = serde_json::to_vec(&data).map_err(|e| CallError::Final(e.to_string()))?;
            ctx.http
                .post(url)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body)
        }
    };
    for (name, template) in &s.headers {
        let value = template
            .render(ctx.vars)
            .map_err(|e| CallError::Final(e.to_string()))?;
        // A value with CR/LF could smuggle extra headers; HeaderValue refuses it.
        let value = http::HeaderValue::from_str(&value).map_err(|_| {
            CallError::Final(format!(
                "header {name}: value contains characters not allowed in a header"
            ))
        })?;
        request = request.header(name.clone(), value);
    }
    let response = request
        .header(EVENT_ID_HEADER, ctx.event_id)
        .header(ATTEMPT_HEADER, attempt.to_string())
        .timeout(s.timeout)
        .send()
        .await
        .map_err(|e| {
            let what = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "connection failed"
            } else {
                "request failed"
            };
            CallError::Transient(what.to_owned())
        })?;
    let status = response.status();
    if status.is_success() {
        Ok(status.as_u16())
    } else if status.is_server_error() {
        Err(CallError::Transient(format!("CRM answered {status}")))
    } else {
        Err(CallError::Final(format!("CRM answered {status}")))
    }
}

/// `base * 2^attempt`, capped at an hour, with ±25% jitter so retries of many jobs spread.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base
        .saturating_mul(1u32 << attempt.min(20))
        .min(Duration::from_secs(3600));
    let jitter = 0.75 + fastrand::f64() * 0.5;
    exp.mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_bounded_jitter() {
        for attempt in 0..5 {
            let d = backoff(Duration::from_millis(100), attempt);
            let nominal = 100.0 * f64::from(1u32 << attempt);
            let ms = d.as_secs_f64() * 1000.0;
            assert!(
                ms >= nominal * 0.75 - 1.0 && ms <= nominal * 1.25 + 1.0,
                "{attempt}: {ms}"
            );
        }
        assert!(backoff(Duration::from_secs(10), 30) <= Duration::from_secs(4500));
    }
}
