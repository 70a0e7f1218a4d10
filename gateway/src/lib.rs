//! The beckon daemon: receives platform webhooks, runs the scenario (send_me,
//! send_message, ...), serves the call_node API, and keeps every step durable.

pub mod channels;
pub mod cli;
pub mod config;
pub mod error;
pub mod http;
pub mod scenario;
pub mod serve;
pub mod store;
pub mod worker;

pub use config::Config;
pub use error::Error;
