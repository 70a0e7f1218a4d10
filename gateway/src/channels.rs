//! Builds the channels this binary was compiled with and the config enables: one
//! `#[cfg(feature)]` block per channel, no registration magic.

use std::collections::HashMap;
use std::sync::Arc;

use beckon_core::Channel;

use crate::config::ChannelsConfig;
use crate::error::Error;

/// Every enabled channel by name.
// Without any channel feature nothing is pushed, so the bindings need not be mutable.
#[cfg_attr(not(feature = "telegram"), allow(unused_mut))]
pub fn build(config: &ChannelsConfig) -> Result<HashMap<&'static str, Arc<dyn Channel>>, Error> {
    let mut channels: HashMap<&'static str, Arc<dyn Channel>> = HashMap::new();
    let mut problems: Vec<String> = Vec::new();
    #[cfg(feature = "telegram")]
    if let Some(cfg) = &config.telegram {
        match beckon_telegram::Telegram::new(cfg.clone()) {
            Ok(t) => {
                channels.insert(beckon_telegram::NAME, Arc::new(t));
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    if !problems.is_empty() {
        return Err(Error::Config(problems));
    }
    if channels.is_empty() {
        tracing::warn!("no channel is configured; only the API will answer");
    }
    #[cfg(not(feature = "telegram"))]
    let _ = config;
    Ok(channels)
}
