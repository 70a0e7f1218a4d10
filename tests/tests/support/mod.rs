// Shared by every test binary; each uses a different part.
#![allow(dead_code)]
// Test support: a fake Telegram Bot API, a fake CRM, and the real daemon as a child
// process, all on loopback.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Longest wait for something that should happen; only reached when a test fails.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Polls `check` until it returns `Some` or [`PATIENCE`] runs out.
pub async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn serve(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// A request the fake Telegram received.
#[derive(Clone, Debug)]
pub struct TelegramCall {
    /// `bot<token>` path segment.
    pub bot: String,
    /// Method name as sent (Bot API method names are case-insensitive).
    pub method: String,
    /// JSON body.
    pub body: serde_json::Value,
}

/// A fake Telegram Bot API: answers `sendMessage` like Telegram and records every call.
#[derive(Clone)]
pub struct FakeTelegram {
    /// Base URL to put in `api_url`.
    pub url: String,
    calls: Arc<Mutex<Vec<TelegramCall>>>,
    script: Arc<Mutex<VecDeque<(u16, serde_json::Value)>>>,
}

impl FakeTelegram {
    /// Starts on a free loopback port.
    pub async fn start() -> Self {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::new()));
        let this = Self {
            url: String::new(),
            calls,
            script,
        };
        let router = Router::new()
            .route("/{bot}/{method}", axum::routing::post(telegram_method))
            .with_state(this.clone());
        let addr = serve(router).await;
        Self {
            url: format!("http://{addr}"),
            ..this
        }
    }

    /// The next calls get these answers (HTTP status, JSON body) instead of success.
    pub fn script(&self, answers: impl IntoIterator<Item = (u16, serde_json::Value)>) {
        self.script.lock().unwrap().extend(answers);
    }

    /// Every `sendMessage` so far.
    pub fn messages(&self) -> Vec<TelegramCall> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.method.eq_ignore_ascii_case("sendMessage"))
            .cloned()
            .collect()
    }

    /// Texts sent to `chat_id`.
    pub fn texts_to(&self, chat_id: i64) -> Vec<String> {
        self.messages()
            .into_iter()
            .filter(|c| c.body["chat_id"] == chat_id)
            .map(|c| c.body["text"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

async fn telegram_method(
    State(fake): State<FakeTelegram>,
    Path((bot, method)): Path<(String, String)>,
    body: bytes::Bytes,
) -> Response {
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    fake.calls.lock().unwrap().push(TelegramCall {
        bot,
        method,
        body: body.clone(),
    });
    if let Some((status, answer)) = fake.script.lock().unwrap().pop_front() {
        return (StatusCode::from_u16(status).unwrap(), axum::Json(answer)).into_response();
    }
    let n = fake.calls.lock().unwrap().len();
    let answer = serde_json::json!({"ok": true, "result": {
        "message_id": n, "date": 1764000000,
        "chat": {"id": body["chat_id"], "type": "private", "first_name": "x"},
        "text": body["text"],
    }});
    axum::Json(answer).into_response()
}

/// A request the fake CRM received.
#[derive(Clone, Debug)]
pub struct CrmCall {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// Headers.
    pub headers: HeaderMap,
    /// Body as JSON (Null when empty).
    pub body: serde_json::Value,
}

/// A fake CRM: records every request; answers 200 unless scripted; can hold requests.
#[derive(Clone)]
pub struct FakeCrm {
    /// Base URL.
    pub url: String,
    calls: Arc<Mutex<Vec<CrmCall>>>,
    script: Arc<Mutex<VecDeque<u16>>>,
    hold: watch::Sender<bool>,
}

impl FakeCrm {
    /// Starts on a free loopback port.
    pub async fn start() -> Self {
        let (hold, _) = watch::channel(false);
        let this = Self {
            url: String::new(),
            calls: Arc::new(Mutex::new(Vec::new())),
            script: Arc::new(Mutex::new(VecDeque::new())),
            hold,
        };
        let router = Router::new().fallback(crm_request).with_state(this.clone());
        let addr = serve(router).await;
        Self {
            url: format!("http://{addr}"),
            ..this
        }
    }

    /// The next requests get these statuses.
    pub fn script(&self, statuses: impl IntoIterator<Item = u16>) {
        self.script.lock().unwrap().extend(statuses);
    }

    /// While held, requests are recorded but not answered.
    pub fn hold(&self, on: bool) {
        self.hold.send_replace(on);
    }

    /// Every request so far.
    pub fn calls(&self) -> Vec<CrmCall> {
        self.calls.lock().unwrap().clone()
    }
}

async fn crm_request(State(crm): State<FakeCrm>, request: Request) -> StatusCode {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    crm.calls.lock().unwrap().push(CrmCall {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        headers: parts.headers,
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    });
    let mut hold = crm.hold.subscribe();
    let _ = hold.wait_for(|held| !*held).await;
    let status = crm.script.lock().unwrap().pop_front().unwrap_or(200);
    StatusCode::from_u16(status).unwrap()
}

/// A loopback URL where nothing listens.
pub async fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

/// Values the test configs use.
pub const BOT_TOKEN: &str = "123456:TEST-token";
/// The webhook secret.
pub const WEBHOOK_SECRET: &str = "webhook-secret_123";
/// The API token.
pub const API_TOKEN: &str = "api-token-for-tests";
/// The CRM token sent by send_me.
pub const CRM_TOKEN: &str = "crm-secret-token";

/// The seed's scenario, pointed at `crm_url`, with short retry delays.
pub fn config(
    listen: SocketAddr,
    db: &std::path::Path,
    telegram_url: &str,
    crm_url: &str,
) -> String {
    format!(
        r#"
[server]
listen = "{listen}"
max_body_bytes = 65536
shutdown_grace_ms = 10000

[storage]
url = "sqlite://{db}"

[api]
tokens = ["{API_TOKEN}"]

[workers]
concurrency = 4
send_retry_backoff_ms = 50

[channels.telegram]
token = "{BOT_TOKEN}"
bot_username = "ShopBot"
webhook_secret = "{WEBHOOK_SECRET}"
api_url = "{telegram_url}"

[scenario]
entry = "start"

[scenario.nodes.start]
steps = [{{ action = "get_command", commands = {{ start = "subscribe", help = "help" }}, default = "echo" }}]

[scenario.nodes.subscribe]
steps = [
  {{ action = "send_me", url = "{crm_url}/api/webhook/chat-registered", method = "POST", data = {{ customer_id = "{{{{messenger_input_param}}}}", user_name = "{{{{user_name}}}}" }}, headers = {{ Authorization = "Bearer {CRM_TOKEN}", "Content-Type" = "application/json" }}, timeout_ms = 5000, retries = 2, retry_backoff_ms = 50, on_ok = "subscribed", on_not_ok = "subscribe_failed" }},
]

[scenario.nodes.subscribed]
steps = [{{ action = "send_message", text = "Thank you, {{{{first_name}}}}! Updates will arrive here." }}]

[scenario.nodes.subscribe_failed]
steps = [{{ action = "send_message", text = "Sorry, we could not link your account." }}]

[scenario.nodes.help]
steps = [{{ action = "send_message", text = "Use the link from the shop." }}]

[scenario.nodes.echo]
steps = [{{ action = "send_message", text = "You said something, {{{{user_name}}}}." }}]

[scenario.nodes.order_status]
steps = [{{ action = "send_message", text = "Order {{{{order_id}}}}: {{{{status}}}}", buttons = [{{ text = "Track", url = "https://shop.example/orders/{{{{order_id}}}}" }}] }}]

[scenario.nodes.crm_lookup]
steps = [{{ action = "send_me", url = "{crm_url}/lookup/{{{{order_id}}}}", method = "GET", data = {{ customer_id = "{{{{messenger_input_param}}}}" }}, retries = 0 }}]
"#,
        db = db.display()
    )
}

/// The real daemon, run as a child process.
pub struct Daemon {
    /// Base URL of its HTTP server.
    pub url: String,
    /// Where its logs go.
    pub log: PathBuf,
    config: PathBuf,
    env: Vec<(String, String)>,
    child: Option<tokio::process::Child>,
    client: reqwest::Client,
}

impl Daemon {
    /// Writes `config_text` into `dir` and starts the daemon on it; waits for /healthz.
    pub async fn start(dir: &std::path::Path, listen: SocketAddr, config_text: &str) -> Self {
        Self::start_with_env(dir, listen, config_text, &[]).await
    }

    /// Like [`Daemon::start`], with extra environment variables.
    pub async fn start_with_env(
        dir: &std::path::Path,
        listen: SocketAddr,
        config_text: &str,
        env: &[(&str, &str)],
    ) -> Self {
        let config = dir.join("beckon.toml");
        std::fs::write(&config, config_text).unwrap();
        let mut d = Self {
            url: format!("http://{listen}"),
            log: dir.join("beckon.log"),
            config,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            child: None,
            client: reqwest::Client::new(),
        };
        d.spawn().await;
        d
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_beckon-e2e"))
            .args(["serve", "--config"])
            .arg(&self.config)
            .env("BECKON_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .expect("spawn the daemon");
        self.child = Some(child);
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(r) = self
                .client
                .get(format!("{}/healthz", self.url))
                .send()
                .await
                && r.status().is_success()
            {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("daemon exited with {status}; log:\n{}", self.logs());
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not become healthy; log:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Everything the daemon logged.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no chance to clean up.
    pub async fn kill9(&mut self) {
        let mut child = self.child.take().expect("daemon is running");
        child.kill().await.unwrap();
    }

    /// SIGTERM and wait for the exit status.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("daemon is running");
        let pid = child.id().expect("pid").to_string();
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(ok.success());
        tokio::time::timeout(PATIENCE, child.wait())
            .await
            .expect("daemon exits after SIGTERM")
            .unwrap()
    }

    /// Starts it again on the same config and database.
    pub async fn restart(&mut self) {
        self.spawn().await;
    }

    /// POSTs a Telegram update with the given secret header (None: no header).
    pub async fn post_update(&self, body: &str, secret: Option<&str>) -> reqwest::Response {
        let mut req = self
            .client
            .post(format!("{}/webhooks/telegram", self.url))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(s) = secret {
            req = req.header("x-telegram-bot-api-secret-token", s);
        }
        req.send().await.unwrap()
    }

    /// An authenticated API request builder.
    pub fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(API_TOKEN)
    }

    /// An unauthenticated request builder.
    pub fn raw(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.url))
    }
}

/// A free loopback address for the daemon.
pub fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// A private-chat text message update, as Telegram sends it.
pub fn text_update(update_id: u64, chat_id: i64, first_name: &str, text: &str) -> String {
    serde_json::json!({
        "update_id": update_id,
        "message": {
            "message_id": update_id, "date": 1764000000, "text": text,
            "from": {"id": chat_id, "is_bot": false, "first_name": first_name, "language_code": "en"},
            "chat": {"id": chat_id, "first_name": first_name, "type": "private"},
            "entities": if text.starts_with('/') {
                serde_json::json!([{"offset": 0, "length": text.split(' ').next().unwrap().len(), "type": "bot_command"}])
            } else { serde_json::json!([]) },
        }
    })
    .to_string()
}

/// Everything a flow test needs, started.
pub struct World {
    /// Fake Telegram.
    pub telegram: FakeTelegram,
    /// Fake CRM.
    pub crm: FakeCrm,
    /// The daemon.
    pub daemon: Daemon,
    /// Holds the database and logs.
    pub dir: tempfile::TempDir,
}

impl World {
    /// Fakes plus a daemon on the standard test config.
    pub async fn start() -> Self {
        let telegram = FakeTelegram::start().await;
        let crm = FakeCrm::start().await;
        let crm_url = crm.url.clone();
        Self::start_with(telegram, crm, crm_url).await
    }

    /// Like [`World::start`], with send_me pointed at `crm_url`.
    pub async fn start_with(telegram: FakeTelegram, crm: FakeCrm, crm_url: String) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let addr = free_addr();
        let text = config(addr, &dir.path().join("beckon.db"), &telegram.url, &crm_url);
        let daemon = Daemon::start(dir.path(), addr, &text).await;
        Self {
            telegram,
            crm,
            daemon,
            dir,
        }
    }
}
