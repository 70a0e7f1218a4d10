use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::{ApiError, AppState};
use crate::error::ErrorChain;
use crate::store::{Enqueued, JobPayload, NewJob, request_hash};

/// Every `/api/v1` route needs `Authorization: Bearer <one of [api] tokens>`.
pub(super) async fn require_token(
    State(app): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let given = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(given) = given else {
        return Err(ApiError::Unauthorized("missing bearer token".to_owned()));
    };
    // Check every token, so the time taken does not tell which one was close.
    let ok = app
        .api_tokens
        .iter()
        .fold(false, |acc, t| t.ct_eq(given.as_bytes()) | acc);
    if !ok {
        tracing::warn!("API request with a wrong bearer token");
        return Err(ApiError::Unauthorized("wrong bearer token".to_owned()));
    }
    Ok(next.run(request).await)
}

/// A chat id may come as a JSON string or number.
#[derive(Deserialize)]
#[serde(untagged)]
enum ChatIdValue {
    Text(String),
    Number(i64),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallNodeBody {
    channel: String,
    chat_id: ChatIdValue,
    node: String,
    #[serde(default)]
    params: serde_json::Map<String, serde_json::Value>,
}

/// `POST /api/v1/call_node` with `{"channel","chat_id","node","params"}`.
pub(super) async fn call_node(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("body is not valid JSON: {e}")))?;
    let body: CallNodeBody =
        serde_json::from_value(value).map_err(|e| ApiError::Unprocessable {
            error: "call_node request is not valid".to_owned(),
            details: vec![e.to_string()],
        })?;
    let chat_id = match body.chat_id {
        ChatIdValue::Text(s) => s,
        ChatIdValue::Number(n) => n.to_string(),
    };
    let params = body
        .params
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            };
            (k, v)
        })
        .collect();
    enqueue(&app, &headers, body.channel, chat_id, body.node, params).await
}

/// `GET|POST /api/v1/call_node/{node}/{channel}/{chat_id}?param=value`: the URL form
/// hosted bot builders use.
pub(super) async fn call_node_by_url(
    State(app): State<Arc<AppState>>,
    Path((node, channel, chat_id)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let params = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    enqueue(&app, &headers, channel, chat_id, node, params).await
}

const IDEMPOTENCY_KEY: &str = "idempotency-key";

async fn enqueue(
    app: &AppState,
    headers: &HeaderMap,
    channel: String,
    chat_id: String,
    node: String,
    params: BTreeMap<String, String>,
) -> Result<Response, ApiError> {
    let mut problems = Vec::new();
    if !app.channels.contains_key(channel.as_str()) {
        let mut enabled: Vec<_> = app.channels.keys().copied().collect();
        enabled.sort_unstable();
        problems.push(format!(
            "unknown channel {channel:?}; enabled: {}",
            enabled.join(", ")
        ));
    }
    if chat_id.trim().is_empty() {
        problems.push("chat_id is empty".to_owned());
    }
    match app.scenario.node(&node) {
        None => problems.push(format!("unknown node {node:?}")),
        Some(n) => {
            let missing: Vec<&str> = n
                .required_params
                .iter()
                .filter(|p| !params.contains_key(p.as_str()))
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                problems.push(format!("missing params: {}", missing.join(", ")));
            }
        }
    }
    let key = match headers.get(IDEMPOTENCY_KEY) {
        None => None,
        Some(v) => match v.to_str() {
            Ok(k) if !k.is_empty() && k.len() <= 255 => Some(k.to_owned()),
            _ => {
                problems.push("Idempotency-Key must be 1-255 visible ASCII characters".to_owned());
                None
            }
        },
    };
    if !problems.is_empty() {
        return Err(ApiError::Unprocessable {
            error: "call_node request is not valid".to_owned(),
            details: problems,
        });
    }
    let job = NewJob {
        channel,
        chat_id,
        payload: JobPayload::CallNode { node, params },
    };
    let idempotency = key.map(|k| {
        let hash = request_hash(&job);
        (k, hash)
    });
    let enqueued = app
        .store
        .enqueue_call_node(job, idempotency)
        .await
        .map_err(|e| {
            tracing::error!(error = %ErrorChain(&e), "call_node not stored");
            ApiError::Unavailable
        })?;
    match enqueued {
        Enqueued::Created(id) | Enqueued::Existing(id) => Ok((
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "job_id": id.to_string() })),
        )
            .into_response()),
        Enqueued::KeyConflict => Err(ApiError::Unprocessable {
            error: "call_node request is not valid".to_owned(),
            details: vec!["Idempotency-Key was already used with a different request".to_owned()],
        }),
    }
}

/// `GET /api/v1/jobs/{id}`.
pub(super) async fn job(
    State(app): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound(format!("no job {id:?}"));
    let numeric: i64 = id.parse().map_err(|_| not_found())?;
    match app.store.job(numeric).await {
        Ok(Some(info)) => Ok(Json(info).into_response()),
        Ok(None) => Err(not_found()),
        Err(e) => {
            tracing::error!(error = %ErrorChain(&e), "job lookup failed");
            Err(ApiError::Unavailable)
        }
    }
}
