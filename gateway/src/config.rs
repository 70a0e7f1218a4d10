//! `beckon.toml`: file → `${VAR}` expansion → `BECKON__SECTION__KEY` overrides → typed
//! config → validation that lists every problem at once.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use beckon_core::Secret;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::error::Error;
use crate::scenario::ScenarioConfig;

/// The whole configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[server]`
    #[serde(default)]
    pub server: ServerConfig,
    /// `[storage]`
    #[serde(default)]
    pub storage: StorageConfig,
    /// `[api]`
    #[serde(default)]
    pub api: ApiConfig,
    /// `[workers]`
    #[serde(default)]
    pub workers: WorkersConfig,
    /// `[channels.*]`
    #[serde(default)]
    pub channels: ChannelsConfig,
    /// `[scenario]`
    pub scenario: ScenarioConfig,
}

/// `[server]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Largest accepted request body; larger ones get 413.
    pub max_body_bytes: usize,
    /// How long shutdown waits for in-flight requests and job steps.
    pub shutdown_grace_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 1024 * 1024,
            shutdown_grace_ms: 10_000,
        }
    }
}

/// `[storage]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `sqlite://PATH`.
    pub url: String,
    /// How long processed dedupe keys and finished jobs are kept, in hours.
    pub retention_hours: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://beckon.db".to_owned(),
            retention_hours: 24 * 7,
        }
    }
}

/// `[api]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Bearer tokens accepted by `/api/v1/*`. Empty: the API refuses every request.
    #[serde(default)]
    pub tokens: Vec<Secret>,
}

/// `[workers]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkersConfig {
    /// Jobs run at the same time.
    pub concurrency: usize,
    /// Attempts of a `send_message` after a transient failure before the job fails.
    pub send_retries: u32,
    /// First delay between `send_message` attempts; doubles each time, with jitter.
    pub send_retry_backoff_ms: u64,
}

impl Default for WorkersConfig {
    fn default() -> Self {
        Self {
            concurrency: 8,
            send_retries: 5,
            send_retry_backoff_ms: 1000,
        }
    }
}

/// `[channels]`: one optional section per channel compiled in.
#[derive(Debug, Default, Deserialize)]
pub struct ChannelsConfig {
    /// `[channels.telegram]`
    #[cfg(feature = "telegram")]
    pub telegram: Option<beckon_telegram::TelegramConfig>,
    /// Sections for channels this build does not have.
    #[serde(flatten)]
    pub unknown: BTreeMap<String, IgnoredAny>,
}

const KNOWN_CHANNELS: [&str; 3] = ["telegram", "viber", "facebook"];

impl Config {
    /// Reads, expands and checks `path`.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::config(format!("cannot read {}: {e}", path.display())))?;
        Self::from_toml(&text)
    }

    /// Expands `text` with the process environment and parses it, applying
    /// `BECKON__SECTION__KEY` overrides.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let expanded = expand_env(text, |name| std::env::var(name).ok()).map_err(Error::Config)?;
        let env = config::Environment::with_prefix("BECKON")
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .list_separator(",")
            .with_list_parse_key("api.tokens");
        let cfg: Config = config::Config::builder()
            .add_source(config::File::from_str(&expanded, config::FileFormat::Toml))
            .add_source(env)
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| Error::config(e.to_string()))?;
        cfg.check_channels()?;
        Ok(cfg)
    }

    fn check_channels(&self) -> Result<(), Error> {
        let problems: Vec<String> = self
            .channels
            .unknown
            .keys()
            .map(|name| {
                if KNOWN_CHANNELS.contains(&name.as_str()) {
                    format!("[channels.{name}] needs beckon built with the `{name}` feature")
                } else {
                    format!("[channels.{name}] is not a channel beckon knows")
                }
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Config(problems))
        }
    }

    /// The SQLite file path from `[storage] url`.
    pub fn sqlite_path(&self) -> Result<&str, Error> {
        self.storage
            .url
            .strip_prefix("sqlite://")
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                Error::config(format!(
                    "[storage] url: {:?} is not supported; use sqlite://PATH",
                    redact_url(&self.storage.url)
                ))
            })
    }
}

/// Hides a password in a database URL for error messages.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Replaces `${NAME}` and `${NAME:-default}` with environment values; `$$` is a literal
/// `$`. Values are escaped for TOML strings and may not contain CR or LF. Every missing
/// variable is reported at once. Comment lines are left alone, so they can show
/// `${EXAMPLE}` syntax.
pub fn expand_env(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(text.len());
    let mut problems = Vec::new();
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
        } else {
            expand_line(line, &lookup, &mut out, &mut problems);
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

fn expand_line(
    line: &str,
    lookup: &impl Fn(&str) -> Option<String>,
    out: &mut String,
    problems: &mut Vec<String>,
) {
    let mut rest = line;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        let Some(body) = after.strip_prefix('{') else {
            out.push('$');
            rest = after;
            continue;
        };
        let Some(end) = body.find('}') else {
            problems.push(format!("unclosed ${{ in line {:?}", line.trim()));
            return;
        };
        let spec = &body[..end];
        rest = &body[end + 1..];
        let (name, default) = match spec.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (spec, None),
        };
        let valid_name = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            problems.push(format!("${{{spec}}} is not a valid variable reference"));
            continue;
        }
        let value = match (lookup(name), default) {
            (Some(v), _) => v,
            (None, Some(d)) => d.to_owned(),
            (None, None) => {
                problems.push(format!("environment variable {name} is not set"));
                continue;
            }
        };
        if value.contains(['\r', '\n']) {
            problems.push(format!("environment variable {name} contains a line break"));
            continue;
        }
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                c => out.push(c),
            }
        }
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("123:abc".into()),
            "QUOTED" => Some(r#"a"b\c"#.into()),
            "NL" => Some("a\nb".into()),
            _ => None,
        }
    }

    #[test]
    fn expands_variables_defaults_and_dollars() {
        let out = expand_env(r#"t = "${TOKEN}" d = "${NOPE:-dflt}" p = "$$5 $x""#, env).unwrap();
        assert_eq!(out, r#"t = "123:abc" d = "dflt" p = "$5 $x""#);
    }

    #[test]
    fn channel_sections_this_build_lacks_are_named() {
        let text =
            "[channels.viber]\nauth_token = \"x\"\n[channels.icq]\n[scenario]\nentry = \"a\"\n";
        let Err(Error::Config(problems)) = Config::from_toml(text) else {
            panic!("loaded")
        };
        assert_eq!(
            problems,
            [
                "[channels.icq] is not a channel beckon knows",
                "[channels.viber] needs beckon built with the `viber` feature",
            ]
        );
    }

    #[test]
    fn leaves_comment_lines_alone() {
        let text = "# set ${NOPE} here\nt = \"${TOKEN}\"\n";
        assert_eq!(
            expand_env(text, env).unwrap(),
            "# set ${NOPE} here\nt = \"123:abc\"\n"
        );
    }

    #[test]
    fn escapes_values_for_toml_strings() {
        assert_eq!(expand_env(r#""${QUOTED}""#, env).unwrap(), r#""a\"b\\c""#);
    }

    #[test]
    fn reports_every_problem_at_once() {
        let errs = expand_env("${A} ${B} ${NL} ${1X}", env).unwrap_err();
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert!(errs[0].contains("A is not set"));
        assert!(errs[1].contains("B is not set"));
        assert!(errs[2].contains("NL contains a line break"));
    }
}
