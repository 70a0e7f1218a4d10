use super::*;

fn scenario(toml_text: &str) -> Result<Scenario, Vec<String>> {
    let cfg: ScenarioConfig = toml_from_str(toml_text);
    Scenario::compile(&cfg)
}

fn toml_from_str(text: &str) -> ScenarioConfig {
    let c = config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .build()
        .unwrap();
    c.try_deserialize().unwrap()
}

const SEED: &str = r#"
entry = "start"
[nodes.start]
steps = [{ action = "get_command", commands = { start = "subscribe" }, default = "fallback" }]
[nodes.subscribe]
steps = [{ action = "send_me", url = "https://crm.example/hook", data = { customer_id = "{{messenger_input_param}}", user_name = "{{user_name}}" }, headers = { Authorization = "Bearer x" }, on_ok = "done", on_not_ok = "failed" }]
[nodes.done]
steps = [{ action = "send_message", text = "Subscribed, {{first_name}}!" }]
[nodes.failed]
steps = [{ action = "send_message", text = "Sorry" }]
[nodes.fallback]
steps = [{ action = "goto", node = "done" }]
[nodes.order_update]
steps = [{ action = "send_message", text = "Order {{order_id}}: {{status}}", buttons = [{ text = "Track", url = "https://shop.example/t/{{order_id}}" }] }]
"#;

#[test]
fn seed_scenario_compiles_and_knows_call_node_params() {
    let s = scenario(SEED).unwrap();
    assert_eq!(s.entry(), "start");
    let order = s.node("order_update").unwrap();
    assert_eq!(
        order.required_params.iter().collect::<Vec<_>>(),
        ["order_id", "status"]
    );
    assert!(s.node("start").unwrap().required_params.is_empty());
}

#[test]
fn every_problem_is_reported_with_its_node() {
    let errs = scenario(
        r#"
entry = "nope"
[nodes.a]
steps = [
  { action = "goto", node = "missing" },
  { action = "send_me", url = "ftp://crm.example/x", on_ok = "ghost" },
  { action = "send_me", url = "https://crm.example/x", data = { chat_id = "1" } },
  { action = "send_message", text = "{{unclosed" },
]
"#,
    )
    .unwrap_err();
    let all = errs.join("\n");
    assert!(all.contains("entry: node \"nope\" does not exist"), "{all}");
    assert!(
        all.contains("[scenario.nodes.a] step 1: node: node \"missing\" does not exist"),
        "{all}"
    );
    assert!(
        all.contains("step 2: on_ok: node \"ghost\" does not exist"),
        "{all}"
    );
    assert!(
        all.contains("step 2: url: only http and https URLs are allowed, not ftp:"),
        "{all}"
    );
    assert!(
        all.contains("step 3: data.chat_id: is added automatically"),
        "{all}"
    );
    assert!(all.contains("step 4: text: unclosed"), "{all}");
}

#[test]
fn entry_flow_may_not_need_call_node_params() {
    let errs = scenario(
        r#"
entry = "a"
[nodes.a]
steps = [{ action = "goto", node = "b" }]
[nodes.b]
steps = [{ action = "send_message", text = "{{order_id}}" }]
"#,
    )
    .unwrap_err();
    assert!(errs[0].contains("uses {{order_id}}"), "{errs:?}");
}

#[test]
fn misspelled_step_keys_fail_to_load() {
    let c = config::Config::builder()
        .add_source(config::File::from_str(
            r#"
entry = "a"
[nodes.a]
steps = [{ action = "send_message", txet = "hi" }]
"#,
            config::FileFormat::Toml,
        ))
        .build()
        .unwrap();
    let err = c
        .try_deserialize::<ScenarioConfig>()
        .unwrap_err()
        .to_string();
    assert!(err.contains("txet"), "{err}");
}

#[test]
fn node_names_must_be_safe_for_headers_and_urls() {
    let errs = scenario(
        r#"
entry = "a"
[nodes.a]
steps = []
[nodes."b c"]
steps = []
"#,
    )
    .unwrap_err();
    assert!(errs[0].contains("node names must be"), "{errs:?}");
}
