//! The daemon's configuration as an operator meets it.

mod support;
use reqwest::Method;
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn environment_overrides_and_variables_reach_the_running_daemon() {
    let telegram = FakeTelegram::start().await;
    let crm = FakeCrm::start().await;
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    // The CRM URL comes from ${CRM_BASE}; the API token list from BECKON__API__TOKENS.
    let text = config(
        addr,
        &dir.path().join("beckon.db"),
        &telegram.url,
        "${CRM_BASE}",
    );
    let daemon = Daemon::start_with_env(
        dir.path(),
        addr,
        &text,
        &[
            ("CRM_BASE", crm.url.as_str()),
            ("BECKON__API__TOKENS", "rotated-token,second-token"),
        ],
    )
    .await;

    let old = daemon
        .api(Method::GET, "/api/v1/jobs/1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        old.status(),
        401,
        "the file's token is replaced by the override"
    );
    for token in ["rotated-token", "second-token"] {
        let r = daemon
            .raw(Method::GET, "/api/v1/jobs/1")
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{token} is accepted");
    }

    daemon
        .post_update(
            &text_update(1, 5, "Ivan", "/start 42"),
            Some(WEBHOOK_SECRET),
        )
        .await;
    eventually("send_me at the CRM from ${CRM_BASE}", || {
        Some(()).filter(|_| !crm.calls().is_empty())
    })
    .await;
}

#[test]
fn a_bad_config_is_refused_with_every_problem_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        r#"
[channels.telegram]
token = "${BECKON_TEST_UNSET_TOKEN}"
bot_username = "ShopBot"
webhook_secret = "${BECKON_TEST_UNSET_SECRET}"
[scenario]
entry = "start"
"#,
    )
    .unwrap();
    let out = serve(&path);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("BECKON_TEST_UNSET_TOKEN is not set"), "{err}");
    assert!(err.contains("BECKON_TEST_UNSET_SECRET is not set"), "{err}");

    std::fs::write(
        &path,
        r#"
[scenario]
entry = "start"
[scenario.nodes.start]
steps = [{ action = "send_me", url = "file:///etc/passwd" }, { action = "goto", node = "nowhere" }]
"#,
    )
    .unwrap();
    let out = serve(&path);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[scenario.nodes.start] step 1: url: only http and https URLs are allowed"),
        "{err}"
    );
    assert!(
        err.contains("[scenario.nodes.start] step 2: node: node \"nowhere\" does not exist"),
        "{err}"
    );
}

#[test]
fn the_example_config_loads_as_shipped() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/beckon.example.toml");
    let text = std::fs::read_to_string(example).unwrap();
    let config = beckon_gateway::Config::from_toml(&text).unwrap();
    beckon_gateway::scenario::Scenario::compile(&config.scenario).unwrap();
}

/// Runs `beckon serve` on `path` and returns how it ended (bad configs end at once).
fn serve(path: &std::path::Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_beckon-e2e"))
        .args(["serve", "--config"])
        .arg(path)
        .output()
        .unwrap()
}
