//! The HTTP surface: platform webhooks, the CRM API, health.

mod api;
mod error;
mod webhooks;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use beckon_core::{Channel, Secret};

pub use error::ApiError;

use crate::scenario::Scenario;
use crate::store::Store;

/// What request handlers share.
pub struct AppState {
    /// The database.
    pub store: Store,
    /// The checked scenario.
    pub scenario: Arc<Scenario>,
    /// Enabled channels by name.
    pub channels: HashMap<&'static str, Arc<dyn Channel>>,
    /// Accepted API bearer tokens.
    pub api_tokens: Vec<Secret>,
}

/// Builds the router; shared by the daemon and tests.
pub fn router(state: Arc<AppState>, max_body_bytes: usize) -> Router {
    let api = Router::new()
        .route("/call_node", post(api::call_node))
        .route(
            "/call_node/{node}/{channel}/{chat_id}",
            get(api::call_node_by_url).post(api::call_node_by_url),
        )
        .route("/jobs/{id}", get(api::job))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            api::require_token,
        ));
    Router::new()
        .route("/webhooks/{channel}", post(webhooks::receive))
        .route("/healthz", get(|| async { "ok" }))
        .nest("/api/v1", api)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}
