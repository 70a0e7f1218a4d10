//! The scenario: named nodes, each a list of steps, read from `[scenario]` and compiled
//! once at startup (templates parsed, node references and URLs checked).

pub mod engine;
pub mod template;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use serde::Deserialize;

pub use engine::{StepOutcome, run_step};
use template::{JsonTemplate, Template};

/// Placeholders every run has, whatever started it.
pub const BUILTIN_VARS: [&str; 7] = [
    "messenger_input_param",
    "user_name",
    "first_name",
    "last_name",
    "username",
    "chat_id",
    "channel",
];

/// `[scenario]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioConfig {
    /// Node run for every inbound event.
    pub entry: String,
    /// `[scenario.nodes.NAME]`.
    #[serde(default)]
    pub nodes: BTreeMap<String, NodeConfig>,
}

/// `[scenario.nodes.NAME]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Steps, run in order.
    #[serde(default)]
    pub steps: Vec<StepConfig>,
}

/// One step, tagged by `action`.
#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum StepConfig {
    /// Branch by the command that started the run.
    GetCommand(GetCommandConfig),
    /// Tell the CRM about this chat.
    SendMe(SendMeConfig),
    /// Send a message to the chat.
    SendMessage(SendMessageConfig),
    /// Continue at another node.
    Goto(GotoConfig),
}

/// `action = "get_command"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetCommandConfig {
    /// Command name (without `/`) → node.
    #[serde(default)]
    pub commands: BTreeMap<String, String>,
    /// Node for anything else; without it the run goes on with the next step.
    pub default: Option<String>,
}

/// `action = "send_me"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendMeConfig {
    /// http or https URL; placeholders are percent-encoded.
    pub url: String,
    /// `GET` (data in the query string) or `POST` (data as JSON). Default POST.
    #[serde(default)]
    pub method: SendMeMethod,
    /// Extra fields; `chat_id` and `channel` are added automatically.
    #[serde(default)]
    pub data: serde_json::Map<String, serde_json::Value>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Timeout of one attempt.
    #[serde(default = "default_send_me_timeout_ms")]
    pub timeout_ms: u64,
    /// Extra attempts after a transient failure (5xx, timeout, connection error).
    #[serde(default = "default_send_me_retries")]
    pub retries: u32,
    /// First delay between attempts; doubles each time, with jitter.
    #[serde(default = "default_send_me_backoff_ms")]
    pub retry_backoff_ms: u64,
    /// Node on 2xx; without it, the next step.
    pub on_ok: Option<String>,
    /// Node on failure; without it, the job fails with the error.
    pub on_not_ok: Option<String>,
}

fn default_send_me_timeout_ms() -> u64 {
    10_000
}
fn default_send_me_retries() -> u32 {
    3
}
fn default_send_me_backoff_ms() -> u64 {
    1_000
}

/// HTTP method of a send_me call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SendMeMethod {
    /// Data in the query string.
    Get,
    /// Data as a JSON body.
    #[default]
    Post,
}

/// `action = "send_message"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendMessageConfig {
    /// Text with placeholders.
    pub text: String,
    /// Buttons, one per row.
    #[serde(default)]
    pub buttons: Vec<ButtonConfig>,
}

/// A button: `text` plus exactly one of `url` or `payload`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ButtonConfig {
    /// Label, with placeholders.
    pub text: String,
    /// Link opened by the button; placeholders are percent-encoded.
    pub url: Option<String>,
    /// Payload returned as a Button event.
    pub payload: Option<String>,
}

/// `action = "goto"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GotoConfig {
    /// Node to continue at.
    pub node: String,
}

/// A checked scenario, ready to run.
#[derive(Debug)]
pub struct Scenario {
    entry: String,
    nodes: HashMap<String, Node>,
}

/// A checked node.
#[derive(Debug)]
pub struct Node {
    /// Its steps.
    pub steps: Vec<Step>,
    /// Placeholders (other than the built-ins) the node and every node it can reach use:
    /// what call_node must be given.
    pub required_params: BTreeSet<String>,
}

/// A checked step.
#[derive(Debug)]
pub enum Step {
    /// See [`GetCommandConfig`].
    GetCommand {
        /// Command → node.
        commands: HashMap<String, String>,
        /// Fallback node.
        default: Option<String>,
    },
    /// See [`SendMeConfig`].
    SendMe(SendMe),
    /// See [`SendMessageConfig`].
    SendMessage {
        /// Message text.
        text: Template,
        /// Buttons.
        buttons: Vec<ButtonTemplate>,
    },
    /// See [`GotoConfig`].
    Goto(String),
}

/// A checked send_me.
#[derive(Debug)]
pub struct SendMe {
    /// URL template.
    pub url: Template,
    /// Method.
    pub method: SendMeMethod,
    /// Data templates.
    pub data: Vec<(String, JsonTemplate)>,
    /// Header name → value template.
    pub headers: Vec<(http::HeaderName, Template)>,
    /// One attempt's timeout.
    pub timeout: Duration,
    /// Extra attempts after transient failures.
    pub retries: u32,
    /// First retry delay.
    pub retry_backoff: Duration,
    /// Branch on ok.
    pub on_ok: Option<String>,
    /// Branch on not_ok.
    pub on_not_ok: Option<String>,
}

/// A checked button.
#[derive(Debug)]
pub enum ButtonTemplate {
    /// Opens a URL.
    Url {
        /// Label.
        text: Template,
        /// Target; placeholders percent-encoded.
        url: Template,
    },
    /// Returns a payload.
    Payload {
        /// Label.
        text: Template,
        /// Payload.
        payload: Template,
    },
}

impl Scenario {
    /// Checks `config`, returning every problem found with its node name.
    pub fn compile(config: &ScenarioConfig) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        if !config.nodes.contains_key(&config.entry) {
            problems.push(format!(
                "[scenario] entry: node {:?} does not exist",
                config.entry
            ));
        }
        let mut nodes = HashMap::new();
        let mut direct_vars: HashMap<&str, BTreeSet<String>> = HashMap::new();
        let mut edges: HashMap<&str, Vec<String>> = HashMap::new();
        for (name, node) in &config.nodes {
            // Node names travel in headers (X-Beckon-Event-Id) and URLs (call_node).
            let valid_name = (1..=64).contains(&name.len())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid_name {
                problems.push(format!(
                    "[scenario.nodes.{name}]: node names must be 1-64 of A-Z, a-z, 0-9, _ and -"
                ));
            }
            let mut steps = Vec::new();
            for (i, step) in node.steps.iter().enumerate() {
                let at = format!("[scenario.nodes.{name}] step {}", i + 1);
                match compile_step(step, &config.nodes) {
                    Ok(s) => steps.push(s),
                    Err(errs) => problems.extend(errs.into_iter().map(|e| format!("{at}: {e}"))),
                }
            }
            direct_vars.insert(name, steps.iter().flat_map(step_vars).collect());
            edges.insert(name, steps.iter().flat_map(step_targets).collect());
            nodes.insert(
                name.clone(),
                Node {
                    steps,
                    required_params: BTreeSet::new(),
                },
            );
        }
        // What a node needs includes what every node reachable from it needs.
        for (name, node) in nodes.iter_mut() {
            let mut seen = BTreeSet::new();
            let mut stack = vec![name.clone()];
            while let Some(n) = stack.pop() {
                if !seen.insert(n.clone()) {
                    continue;
                }
                if let Some(vars) = direct_vars.get(n.as_str()) {
                    node.required_params.extend(
                        vars.iter()
                            .filter(|v| !BUILTIN_VARS.contains(&v.as_str()))
                            .cloned(),
                    );
                }
                stack.extend(edges.get(n.as_str()).into_iter().flatten().cloned());
            }
        }
        // Inbound events carry no call_node params, so the entry flow may use built-ins only.
        if let Some(entry) = nodes.get(&config.entry) {
            for var in &entry.required_params {
                problems.push(format!(
                    "[scenario] entry node {:?} (or a node it leads to) uses {{{{{var}}}}}, \
                     which inbound events do not have; built-ins are {}",
                    config.entry,
                    BUILTIN_VARS.join(", ")
                ));
            }
        }
        if problems.is_empty() {
            Ok(Self {
                entry: config.entry.clone(),
                nodes,
            })
        } else {
            Err(problems)
        }
    }

    /// The entry node's name.
    pub fn entry(&self) -> &str {
        &self.entry
    }

    /// A node by name.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.get(name)
    }
}

fn step_vars(step: &Step) -> Vec<String> {
    let mut out: Vec<&str> = Vec::new();
    match step {
        Step::SendMe(s) => {
            out.extend(s.url.vars());
            out.extend(s.data.iter().flat_map(|(_, t)| t.vars()));
            out.extend(s.headers.iter().flat_map(|(_, t)| t.vars()));
        }
        Step::SendMessage { text, buttons } => {
            out.extend(text.vars());
            for b in buttons {
                match b {
                    ButtonTemplate::Url { text, url } => out.extend(text.vars().chain(url.vars())),
                    ButtonTemplate::Payload { text, payload } => {
                        out.extend(text.vars().chain(payload.vars()))
                    }
                }
            }
        }
        Step::GetCommand { .. } | Step::Goto(_) => {}
    }
    out.into_iter().map(str::to_owned).collect()
}

fn step_targets(step: &Step) -> Vec<String> {
    match step {
        Step::GetCommand { commands, default } => {
            commands.values().chain(default.iter()).cloned().collect()
        }
        Step::SendMe(s) => s.on_ok.iter().chain(s.on_not_ok.iter()).cloned().collect(),
        Step::Goto(n) => vec![n.clone()],
        Step::SendMessage { .. } => Vec::new(),
    }
}

fn compile_step(
    step: &StepConfig,
    nodes: &BTreeMap<String, NodeConfig>,
) -> Result<Step, Vec<String>> {
    let mut problems = Vec::new();
    let mut node_ref = |key: &str, target: &str| {
        if !nodes.contains_key(target) {
            problems.push(format!("{key}: node {target:?} does not exist"));
        }
    };
    let compiled = match step {
        StepConfig::GetCommand(g) => {
            for (cmd, target) in &g.commands {
                node_ref(&format!("commands.{cmd}"), target);
            }
            if let Some(d) = &g.default {
                node_ref("default", d);
            }
            Step::GetCommand {
                commands: g
                    .commands
                    .iter()
                    .map(|(k, v)| (k.trim_start_matches('/').to_ascii_lowercase(), v.clone()))
                    .collect(),
                default: g.default.clone(),
            }
        }
        StepConfig::Goto(g) => {
            node_ref("node", &g.node);
            Step::Goto(g.node.clone())
        }
        StepConfig::SendMe(s) => {
            for (key, target) in [("on_ok", &s.on_ok), ("on_not_ok", &s.on_not_ok)] {
                if let Some(t) = target {
                    node_ref(key, t);
                }
            }
            match compile_send_me(s) {
                Ok(step) => step,
                Err(errs) => {
                    problems.extend(errs);
                    return Err(problems);
                }
            }
        }
        StepConfig::SendMessage(m) => {
            let mut buttons = Vec::new();
            for (i, b) in m.buttons.iter().enumerate() {
                match compile_button(b) {
                    Ok(b) => buttons.push(b),
                    Err(e) => problems.push(format!("buttons[{i}]: {e}")),
                }
            }
            match Template::parse(&m.text) {
                Ok(text) => Step::SendMessage { text, buttons },
                Err(e) => {
                    problems.push(format!("text: {e}"));
                    return Err(problems);
                }
            }
        }
    };
    if problems.is_empty() {
        Ok(compiled)
    } else {
        Err(problems)
    }
}

fn compile_send_me(s: &SendMeConfig) -> Result<Step, Vec<String>> {
    let mut problems = Vec::new();
    let url = Template::parse(&s.url).map_err(|e| vec![format!("url: {e}")])?;
    check_http_url("url", &url, &mut problems);
    let mut data = Vec::new();
    for (key, value) in &s.data {
        if key == "chat_id" || key == "channel" {
            problems.push(format!(
                "data.{key}: is added automatically and cannot be set"
            ));
            continue;
        }
        match JsonTemplate::parse(value) {
            Ok(t) => data.push((key.clone(), t)),
            Err(e) => problems.push(format!("data.{key}: {e}")),
        }
    }
    let mut headers = Vec::new();
    for (name, value) in &s.headers {
        let Ok(header) = http::HeaderName::from_bytes(name.as_bytes()) else {
            problems.push(format!("headers: {name:?} is not a valid header name"));
            continue;
        };
        match Template::parse(value) {
            Ok(t) => headers.push((header, t)),
            Err(e) => problems.push(format!("headers.{name}: {e}")),
        }
    }
    if !(1..=120_000).contains(&s.timeout_ms) {
        problems.push("timeout_ms: must be between 1 and 120000".to_owned());
    }
    if s.retries > 20 {
        problems.push("retries: at most 20".to_owned());
    }
    if problems.is_empty() {
        Ok(Step::SendMe(SendMe {
            url,
            method: s.method,
            data,
            headers,
            timeout: Duration::from_millis(s.timeout_ms),
            retries: s.retries,
            retry_backoff: Duration::from_millis(s.retry_backoff_ms),
            on_ok: s.on_ok.clone(),
            on_not_ok: s.on_not_ok.clone(),
        }))
    } else {
        Err(problems)
    }
}

fn compile_button(b: &ButtonConfig) -> Result<ButtonTemplate, String> {
    let text = Template::parse(&b.text)?;
    match (&b.url, &b.payload) {
        (Some(url), None) => {
            let url = Template::parse(url)?;
            let mut problems = Vec::new();
            check_http_url("url", &url, &mut problems);
            match problems.pop() {
                Some(p) => Err(p),
                None => Ok(ButtonTemplate::Url { text, url }),
            }
        }
        (None, Some(payload)) => Ok(ButtonTemplate::Payload {
            text,
            payload: Template::parse(payload)?,
        }),
        _ => Err("needs exactly one of `url` or `payload`".to_owned()),
    }
}

/// Checks the URL's shape with every placeholder replaced by a harmless value.
fn check_http_url(key: &str, url: &Template, problems: &mut Vec<String>) {
    let probe: template::Vars = url.vars().map(|v| (v.to_owned(), "x".to_owned())).collect();
    let rendered = url.render_url(&probe).unwrap_or_default();
    match url::Url::parse(&rendered) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
        Ok(u) => problems.push(format!(
            "{key}: only http and https URLs are allowed, not {}:",
            u.scheme()
        )),
        Err(e) => problems.push(format!("{key}: not a valid URL ({e})")),
    }
}

#[cfg(test)]
mod tests;
