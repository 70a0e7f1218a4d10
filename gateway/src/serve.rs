//! `beckon serve`: wires config, store, channels, workers and the HTTP server, and shuts
//! them down in order.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::Config;
use crate::error::{Error, ErrorChain};
use crate::http::{AppState, router};
use crate::scenario::Scenario;
use crate::store::Store;
use crate::worker::Workers;

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(config: Config) -> Result<(), Error> {
    let scenario = Arc::new(Scenario::compile(&config.scenario).map_err(Error::Config)?);
    let channels = crate::channels::build(&config.channels)?;
    let store = Store::open_sqlite(config.sqlite_path()?).await?;
    if config.api.tokens.is_empty() {
        tracing::warn!("[api] tokens is empty: every call_node request will be refused");
    }
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| Error::config(format!("cannot build the HTTP client: {e}")))?;

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let workers = Arc::new(Workers {
        store: store.clone(),
        scenario: scenario.clone(),
        channels: channels.clone(),
        http,
        send_retries: config.workers.send_retries,
        send_backoff: Duration::from_millis(config.workers.send_retry_backoff_ms),
    });
    let workers_task = tokio::spawn(workers.run(config.workers.concurrency, shutdown_rx.clone()));
    let janitor = tokio::spawn(janitor(
        store.clone(),
        Duration::from_secs(config.storage.retention_hours * 3600),
        shutdown_rx.clone(),
    ));

    let state = Arc::new(AppState {
        store: store.clone(),
        scenario,
        channels,
        api_tokens: config.api.tokens.clone(),
    });
    let app = router(state, config.server.max_body_bytes);
    let listener = tokio::net::TcpListener::bind(config.server.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "listening");

    let grace = Duration::from_millis(config.server.shutdown_grace_ms);
    let mut server_shutdown = shutdown_rx.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = server_shutdown.wait_for(|stop| *stop).await;
    });
    let server = tokio::spawn(async move { server.await });

    shutdown_signal().await;
    tracing::info!(
        grace_ms = grace.as_millis() as u64,
        "shutting down: finishing in-flight requests and job steps"
    );
    let _ = shutdown_tx.send(true);
    let finished = tokio::time::timeout(grace, async {
        let _ = server.await;
        let _ = workers_task.await;
        let _ = janitor.await;
    })
    .await;
    if finished.is_err() {
        tracing::warn!("grace period over; unfinished jobs resume at the next start");
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn janitor(store: Store, retention: Duration, mut shutdown: watch::Receiver<bool>) {
    loop {
        match store.prune(retention).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "pruned old dedupe keys and finished jobs"),
            Err(e) => tracing::warn!(error = %ErrorChain(&e), "pruning failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only SIGINT stops the daemon");
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
