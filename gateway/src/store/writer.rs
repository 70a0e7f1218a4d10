//! The group-commit writer: one task owns the write connection for ingestion, drains
//! every request waiting in its queue into one transaction, commits once, then answers
//! them all.

use std::sync::Arc;

use beckon_core::Event;
use sha2::Digest;
use sqlx::sqlite::SqlitePool;
use sqlx::{Row, Sqlite, Transaction};
use tokio::sync::{Notify, mpsc, oneshot};

use super::{JobPayload, NewJob, StoreError, now_ms, to_json};

/// Most requests folded into one transaction.
const MAX_BATCH: usize = 512;
/// Requests waiting for the writer; beyond this, handlers wait (backpressure, no unbounded queue).
const QUEUE: usize = 4096;

/// Result of storing a webhook's events.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IngestOutcome {
    /// Events stored with a new job.
    pub accepted: usize,
    /// Events whose dedupe key was already stored.
    pub duplicates: usize,
}

/// Result of a call_node request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// A new job.
    Created(i64),
    /// The idempotency key was used before with the same request: its job.
    Existing(i64),
    /// The idempotency key was used before with a different request.
    KeyConflict,
}

pub(super) enum Op {
    Events {
        events: Vec<Event>,
        reply: oneshot::Sender<Result<IngestOutcome, StoreError>>,
    },
    CallNode {
        job: Box<NewJob>,
        /// (key, hash of the request)
        idempotency: Option<(String, String)>,
        reply: oneshot::Sender<Result<Enqueued, StoreError>>,
    },
}

enum Done {
    Events(
        oneshot::Sender<Result<IngestOutcome, StoreError>>,
        IngestOutcome,
    ),
    CallNode(oneshot::Sender<Result<Enqueued, StoreError>>, Enqueued),
}

pub(super) fn spawn(pool: SqlitePool, jobs_ready: Arc<Notify>) -> mpsc::Sender<Op> {
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(run(pool, rx, jobs_ready));
    tx
}

async fn run(pool: SqlitePool, mut rx: mpsc::Receiver<Op>, jobs_ready: Arc<Notify>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let size = batch.len();
        match commit(&pool, &mut batch).await {
            Ok(done) => {
                let mut new_jobs = false;
                for d in done {
                    match d {
                        Done::Events(reply, outcome) => {
                            new_jobs |= outcome.accepted > 0;
                            let _ = reply.send(Ok(outcome));
                        }
                        Done::CallNode(reply, outcome) => {
                            new_jobs |= matches!(outcome, Enqueued::Created(_));
                            let _ = reply.send(Ok(outcome));
                        }
                    }
                }
                if new_jobs {
                    jobs_ready.notify_waiters();
                }
                tracing::trace!(size, "group commit");
            }
            Err(e) => {
                tracing::error!(size, error = %e, "group commit failed; requests answered with 503");
                for op in batch.drain(..) {
                    match op {
                        Op::Events { reply, .. } => {
                            let _ = reply.send(Err(StoreError::CommitFailed));
                        }
                        Op::CallNode { reply, .. } => {
                            let _ = reply.send(Err(StoreError::CommitFailed));
                        }
                    }
                }
            }
        }
    }
}

/// Applies every op in one transaction. On success the batch is drained into replies;
/// on failure it is left intact so every caller gets an error.
async fn commit(pool: &SqlitePool, batch: &mut Vec<Op>) -> Result<Vec<Done>, StoreError> {
    let mut tx = pool.begin().await?;
    let mut results = Vec::with_capacity(batch.len());
    let now = now_ms();
    for op in batch.iter() {
        match op {
            Op::Events { events, .. } => {
                results.push(Res::Events(insert_events(&mut tx, events, now).await?))
            }
            Op::CallNode {
                job, idempotency, ..
            } => results.push(Res::CallNode(
                insert_call_node(&mut tx, job, idempotency.as_ref(), now).await?,
            )),
        }
    }
    tx.commit().await?;
    Ok(batch
        .drain(..)
        .zip(results)
        .map(|(op, res)| match (op, res) {
            (Op::Events { reply, .. }, Res::Events(o)) => Done::Events(reply, o),
            (Op::CallNode { reply, .. }, Res::CallNode(o)) => Done::CallNode(reply, o),
            _ => unreachable!("results are pushed in op order"),
        })
        .collect())
}

enum Res {
    Events(IngestOutcome),
    CallNode(Enqueued),
}

async fn insert_events(
    tx: &mut Transaction<'_, Sqlite>,
    events: &[Event],
    now: i64,
) -> Result<IngestOutcome, StoreError> {
    let mut outcome = IngestOutcome::default();
    for event in events {
        let fresh = sqlx::query(
            "INSERT INTO events (channel, dedupe_key, received_at) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
        )
        .bind(&event.channel)
        .bind(&event.dedupe_key)
        .bind(now)
        .execute(&mut **tx)
        .await?
        .rows_affected()
            == 1;
        if !fresh {
            outcome.duplicates += 1;
            continue;
        }
        let job = NewJob {
            channel: event.channel.clone(),
            chat_id: event.chat_id.clone(),
            payload: JobPayload::Event {
                event: event.clone(),
            },
        };
        insert_job(tx, &job, now).await?;
        outcome.accepted += 1;
    }
    Ok(outcome)
}

async fn insert_call_node(
    tx: &mut Transaction<'_, Sqlite>,
    job: &NewJob,
    idempotency: Option<&(String, String)>,
    now: i64,
) -> Result<Enqueued, StoreError> {
    if let Some((key, hash)) = idempotency {
        let existing =
            sqlx::query("SELECT request_hash, job_id FROM idempotency_keys WHERE key = ?1")
                .bind(key)
                .fetch_optional(&mut **tx)
                .await?;
        if let Some(row) = existing {
            let stored: String = row.get("request_hash");
            return Ok(if &stored == hash {
                Enqueued::Existing(row.get("job_id"))
            } else {
                Enqueued::KeyConflict
            });
        }
    }
    let id = insert_job(tx, job, now).await?;
    if let Some((key, hash)) = idempotency {
        sqlx::query("INSERT INTO idempotency_keys (key, request_hash, job_id, created_at) VALUES (?1, ?2, ?3, ?4)")
            .bind(key)
            .bind(hash)
            .bind(id)
            .bind(now)
            .execute(&mut **tx)
            .await?;
    }
    Ok(Enqueued::Created(id))
}

async fn insert_job(
    tx: &mut Transaction<'_, Sqlite>,
    job: &NewJob,
    now: i64,
) -> Result<i64, StoreError> {
    let row = sqlx::query(
        "INSERT INTO jobs (kind, channel, chat_id, payload, status, run_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?5, ?5) RETURNING id",
    )
    .bind(job.payload.kind())
    .bind(&job.channel)
    .bind(&job.chat_id)
    .bind(to_json(&job.payload))
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.get("id"))
}

/// A stable fingerprint of a call_node request, to tell an idempotent retry from a
/// different request reusing the key.
pub fn request_hash(job: &NewJob) -> String {
    let mut h = sha2::Sha256::new();
    h.update(to_json(&(&job.channel, &job.chat_id, &job.payload)));
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
