use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;

/// An HTTP API error: client mistakes are answered precisely, server faults generically
/// (they are logged where they happen).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing or wrong credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// The body is not what the route takes.
    #[error("{0}")]
    BadRequest(String),
    /// No such resource.
    #[error("{0}")]
    NotFound(String),
    /// Well-formed but not acceptable; `details` lists every problem.
    #[error("{error}")]
    Unprocessable {
        /// Summary.
        error: String,
        /// Each problem.
        details: Vec<String>,
    },
    /// Storage is unavailable; retry later.
    #[error("storage is unavailable, retry later")]
    Unavailable,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        };
        let details = match &self {
            Self::Unprocessable { details, .. } => details.clone(),
            _ => Vec::new(),
        };
        let mut body = serde_json::json!({ "error": self.to_string() });
        if !details.is_empty() {
            body["details"] = details.into();
        }
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}
