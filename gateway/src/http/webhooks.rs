use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use beckon_core::WebhookRequest;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use super::{ApiError, AppState};
use crate::error::ErrorChain;

/// `POST /webhooks/{channel}`: verify, parse, store durably, and only then 200.
///
/// A 5xx makes the platform deliver again, which the dedupe key absorbs; a 4xx tells it
/// the request itself is wrong.
pub(super) async fn receive(
    State(app): State<Arc<AppState>>,
    Path(channel): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let Some(ch) = app.channels.get(channel.as_str()) else {
        return Err(ApiError::NotFound(format!(
            "channel {channel:?} is not enabled"
        )));
    };
    let req = WebhookRequest {
        headers: &headers,
        query: query.as_deref(),
        body: &body,
    };
    if let Err(e) = ch.verify(&req) {
        tracing::warn!(channel = ch.name(), error = %e, "webhook rejected");
        return Err(ApiError::Unauthorized(e.to_string()));
    }
    let events = ch.parse(&req).map_err(|e| {
        tracing::warn!(channel = ch.name(), error = %e, "webhook body rejected");
        ApiError::BadRequest(e.to_string())
    })?;
    if events.is_empty() {
        tracing::debug!(channel = ch.name(), "webhook ignored");
        return Ok(StatusCode::OK);
    }
    match app.store.ingest_events(events).await {
        Ok(outcome) => {
            tracing::debug!(
                channel = ch.name(),
                accepted = outcome.accepted,
                duplicates = outcome.duplicates,
                "webhook stored"
            );
            Ok(StatusCode::OK)
        }
        Err(e) => {
            tracing::error!(channel = ch.name(), error = %ErrorChain(&e), "webhook not stored");
            Err(ApiError::Unavailable)
        }
    }
}
