//! The subscribe-and-notify flow on Telegram, end to end: real daemon, real SQLite,
//! fake Telegram Bot API and fake CRM on loopback.

mod support;
use reqwest::Method;
use serde_json::json;
use support::*;

const IVAN: i64 = 398866372;

#[tokio::test(flavor = "multi_thread")]
async fn start_with_param_calls_send_me_once_and_answers_the_user() {
    let w = World::start().await;
    let r = w
        .daemon
        .post_update(
            &text_update(873000101, IVAN, "Ivan", "/start 12345"),
            Some(WEBHOOK_SECRET),
        )
        .await;
    assert_eq!(r.status(), 200);

    let texts = eventually("the reply to Ivan", || {
        Some(w.telegram.texts_to(IVAN)).filter(|t| !t.is_empty())
    })
    .await;
    assert_eq!(texts, ["Thank you, Ivan! Updates will arrive here."]);

    let calls = w.crm.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let call = &calls[0];
    assert_eq!(call.method, "POST");
    assert_eq!(call.uri, "/api/webhook/chat-registered");
    // The seed's result shape, exactly.
    assert_eq!(
        call.body,
        json!({"customer_id": "12345", "user_name": "Ivan", "chat_id": "398866372", "channel": "telegram"})
    );
    assert_eq!(call.headers["authorization"], format!("Bearer {CRM_TOKEN}"));
    assert_eq!(call.headers["content-type"], "application/json");
    assert!(!call.headers["x-beckon-event-id"].is_empty());
    assert_eq!(call.headers["x-beckon-attempt"], "1");

    // The reply went to the bot's API path with its token.
    let sent = &w.telegram.messages()[0];
    assert_eq!(sent.bot, format!("bot{BOT_TOKEN}"));
    // The logs never carry the secrets.
    let logs = w.daemon.logs();
    for secret in [BOT_TOKEN, WEBHOOK_SECRET, API_TOKEN, CRM_TOKEN] {
        assert!(!logs.contains(secret), "log leaks {secret}:\n{logs}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn crm_500_then_200_is_retried_with_the_same_event_id_then_ok() {
    let w = World::start().await;
    w.crm.script([500]);
    w.daemon
        .post_update(
            &text_update(1, IVAN, "Ivan", "/start 777"),
            Some(WEBHOOK_SECRET),
        )
        .await;

    let texts = eventually("the reply", || {
        Some(w.telegram.texts_to(IVAN)).filter(|t| !t.is_empty())
    })
    .await;
    assert_eq!(texts, ["Thank you, Ivan! Updates will arrive here."]);
    let calls = w.crm.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0].headers["x-beckon-attempt"], "1");
    assert_eq!(calls[1].headers["x-beckon-attempt"], "2");
    assert_eq!(
        calls[0].headers["x-beckon-event-id"],
        calls[1].headers["x-beckon-event-id"]
    );
    assert_eq!(calls[0].body, calls[1].body);
}

#[tokio::test(flavor = "multi_thread")]
async fn crm_4xx_is_not_ok_without_retry() {
    let w = World::start().await;
    w.crm.script([404]);
    w.daemon
        .post_update(
            &text_update(1, IVAN, "Ivan", "/start 777"),
            Some(WEBHOOK_SECRET),
        )
        .await;
    let texts = eventually("the reply", || {
        Some(w.telegram.texts_to(IVAN)).filter(|t| !t.is_empty())
    })
    .await;
    assert_eq!(texts, ["Sorry, we could not link your account."]);
    assert_eq!(w.crm.calls().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn crm_down_takes_the_not_ok_branch_after_retries() {
    let telegram = FakeTelegram::start().await;
    let crm = FakeCrm::start().await;
    let w = World::start_with(telegram, crm, closed_port_url().await).await;
    w.daemon
        .post_update(
            &text_update(1, IVAN, "Ivan", "/start 12345"),
            Some(WEBHOOK_SECRET),
        )
        .await;

    let texts = eventually("the not_ok reply", || {
        Some(w.telegram.texts_to(IVAN)).filter(|t| !t.is_empty())
    })
    .await;
    assert_eq!(texts, ["Sorry, we could not link your account."]);
    // 1 attempt + 2 retries, each logged.
    let logs = w.daemon.logs();
    assert_eq!(
        logs.matches("send_me attempt failed, will retry").count(),
        2,
        "{logs}"
    );
    assert_eq!(logs.matches("send_me not_ok").count(), 1, "{logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_update_delivered_twice_runs_once() {
    let w = World::start().await;
    let update = text_update(555, IVAN, "Ivan", "/start 12345");
    for _ in 0..2 {
        let r = w.daemon.post_update(&update, Some(WEBHOOK_SECRET)).await;
        assert_eq!(r.status(), 200);
    }
    // A different update afterwards: once it is answered, the duplicate had its chance.
    w.daemon
        .post_update(
            &text_update(556, IVAN, "Ivan", "/help"),
            Some(WEBHOOK_SECRET),
        )
        .await;
    eventually("both replies", || {
        Some(w.telegram.texts_to(IVAN)).filter(|t| t.len() >= 2)
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(w.crm.calls().len(), 1);
    let mut texts = w.telegram.texts_to(IVAN);
    texts.sort();
    assert_eq!(
        texts,
        [
            "Thank you, Ivan! Updates will arrive here.",
            "Use the link from the shop."
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_rejects_bad_secret_malformed_and_oversized_bodies() {
    let w = World::start().await;
    let update = text_update(1, IVAN, "Ivan", "/start 1");
    assert_eq!(
        w.daemon.post_update(&update, Some("wrong")).await.status(),
        401
    );
    assert_eq!(w.daemon.post_update(&update, None).await.status(), 401);
    assert_eq!(
        w.daemon
            .post_update("{\"update_id\":", Some(WEBHOOK_SECRET))
            .await
            .status(),
        400
    );
    assert_eq!(
        w.daemon
            .post_update("[1,2]", Some(WEBHOOK_SECRET))
            .await
            .status(),
        400
    );
    assert_eq!(
        w.daemon
            .post_update(r#"{"update_id":3,"message":7}"#, Some(WEBHOOK_SECRET))
            .await
            .status(),
        400
    );
    let huge = format!("{{\"update_id\":1,\"pad\":\"{}\"}}", "x".repeat(100_000));
    assert_eq!(
        w.daemon
            .post_update(&huge, Some(WEBHOOK_SECRET))
            .await
            .status(),
        413
    );
    // Ignored kinds: 200 and nothing happens.
    let poll = r#"{"update_id":9,"poll":{"id":"1"},"some_new_kind":{}}"#;
    assert_eq!(
        w.daemon
            .post_update(poll, Some(WEBHOOK_SECRET))
            .await
            .status(),
        200
    );
    let other_bot = text_update(10, IVAN, "Ivan", "/start@OtherBot 5");
    assert_eq!(
        w.daemon
            .post_update(&other_bot, Some(WEBHOOK_SECRET))
            .await
            .status(),
        200
    );
    assert_eq!(
        status_of(w.daemon.raw(Method::POST, "/webhooks/viber").body("{}")).await,
        404
    );

    // Nothing of the above reached the scenario; a valid update afterwards still works.
    w.daemon
        .post_update(
            &text_update(11, IVAN, "Ivan", "hello"),
            Some(WEBHOOK_SECRET),
        )
        .await;
    let texts = eventually("the echo", || {
        Some(w.telegram.texts_to(IVAN)).filter(|t| !t.is_empty())
    })
    .await;
    assert_eq!(texts, ["You said something, Ivan."]);
    assert!(w.crm.calls().is_empty());
}

/// Sends a request and returns only its status.
async fn status_of(request: reqwest::RequestBuilder) -> u16 {
    request.send().await.unwrap().status().as_u16()
}

/// POSTs a call_node request that must be accepted; returns its job id.
async fn call_node(w: &World, body: serde_json::Value) -> String {
    let r = w
        .daemon
        .api(Method::POST, "/api/v1/call_node")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let reply: serde_json::Value = r.json().await.unwrap();
    reply["job_id"]
        .as_str()
        .expect("job_id is a string")
        .to_owned()
}

async fn job_status(w: &World, id: &str) -> serde_json::Value {
    w.daemon
        .api(Method::GET, &format!("/api/v1/jobs/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn wait_job(w: &World, id: &str, status: &str) -> serde_json::Value {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let job = job_status(w, id).await;
        if job["status"] == status {
            return job;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "job {id} never became {status}: {job}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn call_node_sends_the_node_with_params_substituted() {
    let w = World::start().await;
    let r = w
        .daemon
        .api(Method::POST, "/api/v1/call_node")
        .json(
            &json!({"channel": "telegram", "chat_id": "398866372", "node": "order_status",
                      "params": {"order_id": "A-77", "status": "shipped"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<serde_json::Value>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let job = wait_job(&w, &id, "done").await;
    assert_eq!(job["kind"], "call_node");

    let sent = w.telegram.messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body["chat_id"], IVAN);
    assert_eq!(sent[0].body["text"], "Order A-77: shipped");
    let button = &sent[0].body["reply_markup"]["inline_keyboard"][0][0];
    assert_eq!(button["text"], "Track");
    assert_eq!(button["url"], "https://shop.example/orders/A-77");

    // The URL form, with a value that must stay inside its path segment.
    let r = w
        .daemon
        .api(
            Method::GET,
            "/api/v1/call_node/order_status/telegram/398866372?order_id=B%2F9%3Fx&status=packed",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<serde_json::Value>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_job(&w, &id, "done").await;
    let sent = w.telegram.messages();
    assert_eq!(sent[1].body["text"], "Order B/9?x: packed");
    assert_eq!(
        sent[1].body["reply_markup"]["inline_keyboard"][0][0]["url"],
        "https://shop.example/orders/B%2F9%3Fx"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn call_node_get_send_me_puts_data_in_the_query_string() {
    let w = World::start().await;
    // Ivan subscribes first, so his start param is known to later runs.
    w.daemon
        .post_update(
            &text_update(1, IVAN, "Ivan", "/start cust-9"),
            Some(WEBHOOK_SECRET),
        )
        .await;
    eventually("subscription", || {
        Some(w.telegram.texts_to(IVAN)).filter(|t| !t.is_empty())
    })
    .await;
    let id = call_node(&w, json!({"channel": "telegram", "chat_id": IVAN, "node": "crm_lookup", "params": {"order_id": "a b/c"}})).await;
    wait_job(&w, &id, "done").await;
    let calls = w.crm.calls();
    let lookup = calls
        .iter()
        .find(|c| c.method == "GET")
        .expect("a GET send_me");
    assert_eq!(
        lookup.uri,
        "/lookup/a%20b%2Fc?channel=telegram&chat_id=398866372&customer_id=cust-9"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn call_node_rejects_what_it_cannot_run() {
    let w = World::start().await;
    let call = |body: serde_json::Value| {
        w.daemon
            .api(Method::POST, "/api/v1/call_node")
            .json(&body)
            .send()
    };

    let r = call(json!({"channel": "telegram", "chat_id": "1", "node": "order_status", "params": {"order_id": "1"}})).await.unwrap();
    assert_eq!(r.status(), 422);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["details"], json!(["missing params: status"]));

    let r = call(json!({"channel": "whatsapp", "chat_id": "1", "node": "nope"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let details = r.json::<serde_json::Value>().await.unwrap()["details"].to_string();
    assert!(
        details.contains("unknown channel \\\"whatsapp\\\""),
        "{details}"
    );
    assert!(details.contains("unknown node \\\"nope\\\""), "{details}");

    let r = call(json!({"channel": "telegram", "node": "order_status"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("chat_id"));

    assert_eq!(
        status_of(
            w.daemon
                .api(Method::POST, "/api/v1/call_node")
                .body("{not json")
        )
        .await,
        400
    );

    assert_eq!(
        status_of(w.daemon.api(
            Method::GET,
            "/api/v1/call_node/order_status/telegram/1?order_id=1",
        ))
        .await,
        422
    );

    // Auth: wrong and missing tokens, on every API route.
    assert_eq!(
        status_of(
            w.daemon
                .raw(Method::POST, "/api/v1/call_node")
                .bearer_auth("nope")
                .body("{}")
        )
        .await,
        401
    );
    assert_eq!(
        status_of(w.daemon.raw(Method::GET, "/api/v1/jobs/1")).await,
        401
    );
    assert_eq!(
        status_of(w.daemon.raw(
            Method::GET,
            "/api/v1/call_node/order_status/telegram/1?order_id=1&status=2",
        ))
        .await,
        401
    );

    assert_eq!(
        status_of(w.daemon.api(Method::GET, "/api/v1/jobs/999")).await,
        404
    );
    assert!(w.telegram.messages().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotency_key_returns_the_first_job_instead_of_sending_twice() {
    let w = World::start().await;
    let body = json!({"channel": "telegram", "chat_id": "42", "node": "order_status", "params": {"order_id": "1", "status": "paid"}});
    let post = |body: &serde_json::Value| {
        w.daemon
            .api(Method::POST, "/api/v1/call_node")
            .header("Idempotency-Key", "order-1-paid")
            .json(body)
            .send()
    };
    let first = post(&body).await.unwrap();
    assert_eq!(first.status(), 202);
    let first: serde_json::Value = first.json().await.unwrap();
    let again: serde_json::Value = post(&body).await.unwrap().json().await.unwrap();
    assert_eq!(first["job_id"], again["job_id"]);
    wait_job(&w, first["job_id"].as_str().unwrap(), "done").await;

    let mut other = body.clone();
    other["params"]["status"] = json!("refunded");
    let conflict = post(&other).await.unwrap();
    assert_eq!(conflict.status(), 422);
    assert!(conflict.text().await.unwrap().contains("Idempotency-Key"));
    assert_eq!(w.telegram.texts_to(42), ["Order 1: paid"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn blocked_user_fails_the_job_with_the_reason() {
    let w = World::start().await;
    w.telegram.script([(403, json!({"ok": false, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}))]);
    let id = call_node(&w, json!({"channel": "telegram", "chat_id": "5", "node": "order_status", "params": {"order_id": "1", "status": "x"}})).await;
    let job = wait_job(&w, &id, "failed").await;
    assert!(job["error"].as_str().unwrap().contains("blocked"), "{job}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limited_send_waits_for_retry_after_then_succeeds() {
    let w = World::start().await;
    w.telegram.script([(429, json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 1", "parameters": {"retry_after": 1}}))]);
    let id = call_node(&w, json!({"channel": "telegram", "chat_id": "6", "node": "order_status", "params": {"order_id": "1", "status": "x"}})).await;
    wait_job(&w, &id, "done").await;
    assert_eq!(w.telegram.messages().len(), 2, "one refused, one sent");
    assert_eq!(w.telegram.texts_to(6).len(), 2);
}
