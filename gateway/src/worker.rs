//! Workers claim due jobs from the store and run them through the scenario, saving the
//! cursor after every step that talked to the outside world.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use beckon_core::{Channel, Event, EventKind};
use tokio::sync::watch;

use crate::error::ErrorChain;
use crate::scenario::engine::{StepContext, has_side_effect};
use crate::scenario::{Scenario, StepOutcome, run_step};
use crate::store::{ClaimedJob, Contact, JobEnd, JobPayload, RunState, Store, StoreError};

/// A worker's lease on a claimed job; renewed at every saved step.
const LEASE: Duration = Duration::from_secs(300);
/// Guard against `goto` loops.
const MAX_STEPS: u32 = 1000;
/// Platform rate-limit waits at one step before the job fails.
const MAX_WAITS: u32 = 50;
/// Longest idle sleep between looks for due jobs (retries become due without a notify).
const IDLE_POLL: Duration = Duration::from_millis(200);

/// What workers share.
pub struct Workers {
    /// The database.
    pub store: Store,
    /// The checked scenario.
    pub scenario: Arc<Scenario>,
    /// Enabled channels by name.
    pub channels: HashMap<&'static str, Arc<dyn Channel>>,
    /// Client for send_me.
    pub http: reqwest::Client,
    /// send_message retries after transient failures.
    pub send_retries: u32,
    /// First send_message retry delay.
    pub send_backoff: Duration,
}

impl Workers {
    /// Runs `n` workers until `shutdown` turns true; each finishes its current step first.
    pub async fn run(self: Arc<Self>, n: usize, shutdown: watch::Receiver<bool>) {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..n.max(1) {
            tasks.spawn(self.clone().worker(shutdown.clone()));
        }
        while tasks.join_next().await.is_some() {}
    }

    async fn worker(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            // Register interest before looking, so a job stored in between still wakes us.
            let notify = self.store.jobs_ready();
            let ready = notify.notified();
            tokio::pin!(ready);
            ready.as_mut().enable();
            match self.store.claim(LEASE).await {
                Ok(Some(job)) => {
                    let id = job.id;
                    if let Err(e) = self.run_job(job, &shutdown).await {
                        // The job stays `running` until its lease ends or the daemon restarts.
                        tracing::error!(job_id = id, error = %ErrorChain(&e), "storage failed while running job");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
                Ok(None) => {
                    tokio::select! {
                        _ = ready => {}
                        _ = tokio::time::sleep(IDLE_POLL) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                Err(e) => {
                    tracing::error!(error = %ErrorChain(&e), "cannot claim jobs");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    #[tracing::instrument(name = "job", skip_all, fields(job_id = job.id, channel = %job.channel))]
    async fn run_job(
        &self,
        job: ClaimedJob,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<(), StoreError> {
        let Some(channel) = self.channels.get(job.channel.as_str()).cloned() else {
            let msg = format!(
                "channel {} is not enabled in this build or config",
                job.channel
            );
            return self.store.finish(job.id, JobEnd::Failed(&msg)).await;
        };
        let (command, mut state) = match (&job.payload, job.state) {
            (JobPayload::Event { event }, state) => {
                if let EventKind::Unsubscribed = event.kind {
                    // Nobody to talk to; remember it so call_node jobs know.
                    self.store.upsert_contact(event).await?;
                    tracing::info!("chat unsubscribed");
                    return self.store.finish(job.id, JobEnd::Done).await;
                }
                let state = match state {
                    Some(s) => s,
                    None => {
                        self.store.upsert_contact(event).await?;
                        let contact = self.store.contact(&event.channel, &event.chat_id).await?;
                        RunState {
                            node: self.scenario.entry().to_owned(),
                            vars: event_vars(event, contact.as_ref()),
                            ..RunState::default()
                        }
                    }
                };
                (event.kind.command_name().map(str::to_owned), state)
            }
            (JobPayload::CallNode { .. }, Some(state)) => (None, state),
            (JobPayload::CallNode { node, params }, None) => {
                let contact = self.store.contact(&job.channel, &job.chat_id).await?;
                let mut vars = base_vars(&job.channel, &job.chat_id, contact.as_ref());
                vars.extend(params.iter().map(|(k, v)| (k.clone(), v.clone())));
                (
                    None,
                    RunState {
                        node: node.clone(),
                        vars,
                        ..RunState::default()
                    },
                )
            }
        };

        loop {
            let Some(node) = self.scenario.node(&state.node) else {
                let msg = format!("node {:?} no longer exists in the scenario", state.node);
                return self.store.finish(job.id, JobEnd::Failed(&msg)).await;
            };
            let Some(step) = node.steps.get(state.step) else {
                tracing::debug!("job done");
                return self.store.finish(job.id, JobEnd::Done).await;
            };
            if state.steps_run >= MAX_STEPS {
                let msg = format!("stopped after {MAX_STEPS} steps: does a goto loop?");
                return self.store.finish(job.id, JobEnd::Failed(&msg)).await;
            }
            let event_id = format!("{}-{}-{}", job.id, state.node, state.step);
            let ctx = StepContext {
                vars: &state.vars,
                command: command.as_deref(),
                channel: channel.as_ref(),
                chat_id: &job.chat_id,
                attempt: state.attempt,
                event_id: &event_id,
                http: &self.http,
                send_retries: self.send_retries,
                send_backoff: self.send_backoff,
            };
            let outcome = run_step(step, &ctx).await;
            state.steps_run += 1;
            match outcome {
                StepOutcome::Next => {
                    state.step += 1;
                    state.attempt = 0;
                    state.waits = 0;
                }
                StepOutcome::Jump(next) => {
                    state.node = next;
                    state.step = 0;
                    state.attempt = 0;
                    state.waits = 0;
                }
                StepOutcome::Retry { after, reason } => {
                    state.attempt += 1;
                    return self
                        .store
                        .reschedule(job.id, &state, after, Some(&reason))
                        .await;
                }
                StepOutcome::Wait { after } => {
                    state.waits += 1;
                    if state.waits > MAX_WAITS {
                        let msg = "the platform kept rate limiting this send";
                        return self.store.finish(job.id, JobEnd::Failed(msg)).await;
                    }
                    return self
                        .store
                        .reschedule(job.id, &state, after, Some("rate limited by the platform"))
                        .await;
                }
                StepOutcome::Blocked => {
                    self.store.mark_blocked(&job.channel, &job.chat_id).await?;
                    tracing::info!("the user blocked the bot; job failed");
                    let msg = "the user blocked the bot or cannot be reached";
                    return self.store.finish(job.id, JobEnd::Failed(msg)).await;
                }
                StepOutcome::Fail(error) => {
                    tracing::warn!(error = %error, "job failed");
                    return self.store.finish(job.id, JobEnd::Failed(&error)).await;
                }
            }
            if *shutdown.borrow() {
                // Hand the rest to whoever runs next; the cursor says where to resume.
                return self
                    .store
                    .reschedule(job.id, &state, Duration::ZERO, None)
                    .await;
            }
            if has_side_effect(step) {
                self.store.save_state(job.id, &state, LEASE).await?;
            }
        }
    }
}

fn base_vars(
    channel: &str,
    chat_id: &str,
    contact: Option<&Contact>,
) -> std::collections::BTreeMap<String, String> {
    let c = contact.cloned().unwrap_or_default();
    let profile = beckon_core::UserProfile {
        id: None,
        first_name: c.first_name.clone(),
        last_name: c.last_name.clone(),
        username: c.username.clone(),
        language_code: None,
    };
    [
        ("messenger_input_param", c.start_param.unwrap_or_default()),
        ("user_name", profile.display_name()),
        ("first_name", c.first_name.unwrap_or_default()),
        ("last_name", c.last_name.unwrap_or_default()),
        ("username", c.username.unwrap_or_default()),
        ("chat_id", chat_id.to_owned()),
        ("channel", channel.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Built-in placeholders for an inbound event: the event's own data first, the stored
/// contact for what the event lacks (a later text message still knows the start param).
fn event_vars(
    event: &Event,
    contact: Option<&Contact>,
) -> std::collections::BTreeMap<String, String> {
    let mut vars = base_vars(&event.channel, &event.chat_id, contact);
    if let EventKind::Start { param } = &event.kind {
        vars.insert(
            "messenger_input_param".to_owned(),
            param.clone().unwrap_or_default(),
        );
    }
    let u = &event.user;
    if u.first_name.is_some() || u.last_name.is_some() || u.username.is_some() {
        vars.insert("user_name".to_owned(), u.display_name());
        vars.insert(
            "first_name".to_owned(),
            u.first_name.clone().unwrap_or_default(),
        );
        vars.insert(
            "last_name".to_owned(),
            u.last_name.clone().unwrap_or_default(),
        );
        vars.insert(
            "username".to_owned(),
            u.username.clone().unwrap_or_default(),
        );
    }
    vars
}
