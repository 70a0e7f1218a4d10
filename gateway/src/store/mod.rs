//! Durable state on SQLite (WAL): dedupe keys, jobs, contacts, idempotency keys.
//!
//! Webhook events and call_node jobs go through one writer task that commits whatever
//! has queued up in one transaction (group commit): under load, one fsync serves many
//! requests, and each request is answered only after its transaction is durable.

mod writer;

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use beckon_core::Event;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::{Notify, mpsc, oneshot};

use writer::Op;
pub use writer::{Enqueued, IngestOutcome, request_hash};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored JSON document does not parse (written by an incompatible version?).
    #[error("stored {what} of job {id} is not valid: {source}")]
    Corrupt {
        /// Which document.
        what: &'static str,
        /// The job.
        id: i64,
        /// The parse error.
        source: serde_json::Error,
    },
    /// The database directory could not be created.
    #[error("cannot create {path}: {source}")]
    Dir {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The group-commit transaction failed; nothing of the request was stored.
    #[error("the write transaction failed; nothing was stored")]
    CommitFailed,
    /// The writer task is gone (shutting down).
    #[error("the store is shutting down")]
    Closed,
}

/// What a job does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobPayload {
    /// Run the entry node for an inbound event.
    Event {
        /// The event.
        event: Event,
    },
    /// Run `node` for a chat on the CRM's request.
    CallNode {
        /// Node name.
        node: String,
        /// Placeholder values.
        params: BTreeMap<String, String>,
    },
}

impl JobPayload {
    fn kind(&self) -> &'static str {
        match self {
            Self::Event { .. } => "event",
            Self::CallNode { .. } => "call_node",
        }
    }
}

/// A job to create.
#[derive(Clone, Debug)]
pub struct NewJob {
    /// Channel of the chat.
    pub channel: String,
    /// The chat.
    pub chat_id: String,
    /// What to do.
    pub payload: JobPayload,
}

/// Where a run stands; saved after every step that talked to the outside world.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// Current node.
    pub node: String,
    /// Index of the next step to run in `node`.
    pub step: usize,
    /// Attempts already made of that step.
    pub attempt: u32,
    /// Waits for platform rate limits at that step.
    pub waits: u32,
    /// Steps run so far (guards against goto loops).
    pub steps_run: u32,
    /// Placeholder values.
    pub vars: BTreeMap<String, String>,
}

/// A job a worker has claimed.
#[derive(Debug)]
pub struct ClaimedJob {
    /// Job id.
    pub id: i64,
    /// Channel of the chat.
    pub channel: String,
    /// The chat.
    pub chat_id: String,
    /// What to do.
    pub payload: JobPayload,
    /// Where a previous run stopped, if any.
    pub state: Option<RunState>,
}

/// Public view of a job.
#[derive(Debug, Serialize)]
pub struct JobInfo {
    /// Job id.
    pub job_id: String,
    /// event | call_node
    pub kind: String,
    /// queued | running | done | failed
    pub status: String,
    /// The channel.
    pub channel: String,
    /// The chat.
    pub chat_id: String,
    /// Times a worker picked it up.
    pub runs: i64,
    /// The last failure, for failed jobs and jobs waiting to retry.
    pub error: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// A chat that talked to the bot.
#[derive(Clone, Debug, Default)]
pub struct Contact {
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Username.
    pub username: Option<String>,
    /// Last start parameter received.
    pub start_param: Option<String>,
}

/// How a job ended.
#[derive(Debug)]
pub enum JobEnd<'a> {
    /// Ran to the end.
    Done,
    /// Stopped with an error.
    Failed(&'a str),
}

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    /// One connection: every write is serialized here, so SQLite never answers BUSY.
    write: SqlitePool,
    read: SqlitePool,
    ops: mpsc::Sender<Op>,
    jobs_ready: Arc<Notify>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Store {
    /// Opens (creating if needed) and migrates the SQLite database at `path`, and puts
    /// jobs that were running when the previous process died back in the queue.
    pub async fn open_sqlite(path: &str) -> Result<Self, StoreError> {
        if let Some(dir) = Path::new(path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before the webhook is acknowledged.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await?;
        sqlx::migrate::Migrator::new(EmbeddedMigrations)
            .await?
            .run(&write)
            .await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        // One daemon per SQLite file: whatever was running belonged to a dead process.
        let recovered = sqlx::query(
            "UPDATE jobs SET status = 'queued', locked_until = NULL WHERE status = 'running'",
        )
        .execute(&write)
        .await?
        .rows_affected();
        if recovered > 0 {
            tracing::info!(
                jobs = recovered,
                "resuming jobs interrupted by the last shutdown"
            );
        }
        let jobs_ready = Arc::new(Notify::new());
        let ops = writer::spawn(write.clone(), jobs_ready.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                write,
                read,
                ops,
                jobs_ready,
            }),
        })
    }

    /// Stores events not seen before, each with a job, in one durable transaction.
    pub async fn ingest_events(&self, events: Vec<Event>) -> Result<IngestOutcome, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Op::Events { events, reply }).await?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Stores a call_node job; with an idempotency key, a repeat returns the first job.
    pub async fn enqueue_call_node(
        &self,
        job: NewJob,
        idempotency: Option<(String, String)>,
    ) -> Result<Enqueued, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Op::CallNode {
            job: Box::new(job),
            idempotency,
            reply,
        })
        .await?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn send(&self, op: Op) -> Result<(), StoreError> {
        self.inner
            .ops
            .send(op)
            .await
            .map_err(|_| StoreError::Closed)
    }

    /// Notified (with `notify_waiters`) whenever a commit created jobs.
    pub fn jobs_ready(&self) -> Arc<Notify> {
        self.inner.jobs_ready.clone()
    }

    /// Claims the next due job for `lease`.
    pub async fn claim(&self, lease: Duration) -> Result<Option<ClaimedJob>, StoreError> {
        let now = now_ms();
        let row = sqlx::query(
            "UPDATE jobs SET status = 'running', locked_until = ?1, runs = runs + 1, updated_at = ?2
             WHERE id = (SELECT id FROM jobs
                         WHERE (status = 'queued' AND run_at <= ?2)
                            -- a worker that hit a storage error mid-run left it behind
                            OR (status = 'running' AND locked_until < ?2)
                         ORDER BY run_at, id LIMIT 1)
             RETURNING id, channel, chat_id, payload, state",
        )
        .bind(now + ms(lease))
        .bind(now)
        .fetch_optional(&self.inner.write)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let id: i64 = row.get("id");
        let payload: String = row.get("payload");
        let state: Option<String> = row.get("state");
        Ok(Some(ClaimedJob {
            id,
            channel: row.get("channel"),
            chat_id: row.get("chat_id"),
            payload: serde_json::from_str(&payload).map_err(|source| StoreError::Corrupt {
                what: "payload",
                id,
                source,
            })?,
            state: state
                .map(|s| serde_json::from_str(&s))
                .transpose()
                .map_err(|source| StoreError::Corrupt {
                    what: "state",
                    id,
                    source,
                })?,
        }))
    }

    /// Saves where a running job stands and extends its lease.
    pub async fn save_state(
        &self,
        id: i64,
        state: &RunState,
        lease: Duration,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        sqlx::query("UPDATE jobs SET state = ?1, locked_until = ?2, updated_at = ?3 WHERE id = ?4")
            .bind(to_json(state))
            .bind(now + ms(lease))
            .bind(now)
            .bind(id)
            .execute(&self.inner.write)
            .await?;
        Ok(())
    }

    /// Puts a job back in the queue to run again after `delay`.
    pub async fn reschedule(
        &self,
        id: i64,
        state: &RunState,
        delay: Duration,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        sqlx::query(
            "UPDATE jobs SET status = 'queued', state = ?1, run_at = ?2, locked_until = NULL,
             last_error = COALESCE(?3, last_error), updated_at = ?4 WHERE id = ?5",
        )
        .bind(to_json(state))
        .bind(now + ms(delay))
        .bind(error)
        .bind(now)
        .bind(id)
        .execute(&self.inner.write)
        .await?;
        Ok(())
    }

    /// Marks a job done or failed.
    pub async fn finish(&self, id: i64, end: JobEnd<'_>) -> Result<(), StoreError> {
        let (status, error) = match end {
            JobEnd::Done => ("done", None),
            JobEnd::Failed(e) => ("failed", Some(e)),
        };
        sqlx::query(
            "UPDATE jobs SET status = ?1, last_error = COALESCE(?2, last_error), locked_until = NULL,
             updated_at = ?3 WHERE id = ?4",
        )
        .bind(status)
        .bind(error)
        .bind(now_ms())
        .bind(id)
        .execute(&self.inner.write)
        .await?;
        Ok(())
    }

    /// A job's public view.
    pub async fn job(&self, id: i64) -> Result<Option<JobInfo>, StoreError> {
        let row = sqlx::query(
            "SELECT id, kind, status, channel, chat_id, runs, last_error, created_at, updated_at
             FROM jobs WHERE id = ?1",
        )
        .bind(id)
        .fetch_optional(&self.inner.read)
        .await?;
        Ok(row.map(|r| JobInfo {
            job_id: r.get::<i64, _>("id").to_string(),
            kind: r.get("kind"),
            status: r.get("status"),
            channel: r.get("channel"),
            chat_id: r.get("chat_id"),
            runs: r.get("runs"),
            error: r.get("last_error"),
            created_at: r.get("created_at"),
            updated_at: r.get("updated_at"),
        }))
    }

    /// Records that `event`'s chat talked to the bot (names, start parameter, subscribed).
    pub async fn upsert_contact(&self, event: &Event) -> Result<(), StoreError> {
        let now = now_ms();
        let (status, param) = match &event.kind {
            beckon_core::EventKind::Unsubscribed => ("blocked", None),
            beckon_core::EventKind::Start { param } => ("subscribed", param.as_deref()),
            _ => ("subscribed", None),
        };
        sqlx::query(
            "INSERT INTO contacts (channel, chat_id, user_id, first_name, last_name, username,
                                   start_param, status, last_inbound_at, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?9)
             ON CONFLICT (channel, chat_id) DO UPDATE SET
                 user_id = COALESCE(excluded.user_id, user_id),
                 first_name = COALESCE(excluded.first_name, first_name),
                 last_name = COALESCE(excluded.last_name, last_name),
                 username = COALESCE(excluded.username, username),
                 start_param = COALESCE(excluded.start_param, start_param),
                 status = excluded.status,
                 last_inbound_at = excluded.last_inbound_at,
                 updated_at = excluded.updated_at",
        )
        .bind(&event.channel)
        .bind(&event.chat_id)
        .bind(&event.user.id)
        .bind(&event.user.first_name)
        .bind(&event.user.last_name)
        .bind(&event.user.username)
        .bind(param)
        .bind(status)
        .bind(now)
        .execute(&self.inner.write)
        .await?;
        Ok(())
    }

    /// Marks a chat blocked (a send said the user blocked the bot).
    pub async fn mark_blocked(&self, channel: &str, chat_id: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE contacts SET status = 'blocked', updated_at = ?1 WHERE channel = ?2 AND chat_id = ?3",
        )
        .bind(now_ms())
        .bind(channel)
        .bind(chat_id)
        .execute(&self.inner.write)
        .await?;
        Ok(())
    }

    /// A chat's stored details.
    pub async fn contact(
        &self,
        channel: &str,
        chat_id: &str,
    ) -> Result<Option<Contact>, StoreError> {
        let row = sqlx::query(
            "SELECT first_name, last_name, username, start_param FROM contacts
             WHERE channel = ?1 AND chat_id = ?2",
        )
        .bind(channel)
        .bind(chat_id)
        .fetch_optional(&self.inner.read)
        .await?;
        Ok(row.map(|r| Contact {
            first_name: r.get("first_name"),
            last_name: r.get("last_name"),
            username: r.get("username"),
            start_param: r.get("start_param"),
        }))
    }

    /// Deletes dedupe keys, idempotency keys and finished jobs older than `age`.
    pub async fn prune(&self, age: Duration) -> Result<u64, StoreError> {
        let cutoff = now_ms() - ms(age);
        let mut removed = 0;
        for sql in [
            "DELETE FROM events WHERE received_at < ?1",
            "DELETE FROM idempotency_keys WHERE created_at < ?1",
            "DELETE FROM jobs WHERE status IN ('done', 'failed') AND updated_at < ?1",
        ] {
            removed += sqlx::query(sql)
                .bind(cutoff)
                .execute(&self.inner.write)
                .await?
                .rows_affected();
        }
        Ok(removed)
    }

    /// Closes the pools after the writer has committed what it holds.
    pub async fn close(&self) {
        self.inner.read.close().await;
        self.inner.write.close().await;
    }
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("plain data serializes")
}

/// Migrations compiled into the binary, so the daemon needs no files beside it.
#[derive(Debug)]
struct EmbeddedMigrations;

type MigrationsFuture<'s> = std::pin::Pin<
    Box<
        dyn Future<Output = Result<Vec<sqlx::migrate::Migration>, sqlx::error::BoxDynError>>
            + Send
            + 's,
    >,
>;

impl<'s> sqlx::migrate::MigrationSource<'s> for EmbeddedMigrations {
    fn resolve(self) -> MigrationsFuture<'s> {
        use sqlx::migrate::{Migration, MigrationType};
        Box::pin(async {
            Ok(vec![Migration::new(
                1,
                "init".into(),
                MigrationType::Simple,
                include_str!("../../migrations/sqlite/0001_init.sql").into(),
                false,
            )])
        })
    }
}
