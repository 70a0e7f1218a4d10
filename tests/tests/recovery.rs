//! Crashes and restarts: acknowledged work is never lost.

mod support;
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn killed_mid_way_and_restarted_loses_nothing() {
    let mut w = World::start().await;
    // The CRM hangs, so every job is stuck inside send_me when the daemon dies.
    w.crm.hold(true);
    let chats: Vec<i64> = (1..=5).map(|i| 1000 + i).collect();
    for (i, chat) in chats.iter().enumerate() {
        let update = text_update(
            100 + i as u64,
            *chat,
            "User",
            &format!("/start cust-{chat}"),
        );
        assert_eq!(
            w.daemon
                .post_update(&update, Some(WEBHOOK_SECRET))
                .await
                .status(),
            200
        );
    }
    eventually("send_me calls in flight", || {
        Some(()).filter(|_| !w.crm.calls().is_empty())
    })
    .await;
    w.daemon.kill9().await;

    w.crm.hold(false);
    w.daemon.restart().await;
    for chat in &chats {
        eventually("every chat answered", || {
            Some(()).filter(|_| !w.telegram.texts_to(*chat).is_empty())
        })
        .await;
    }
    for chat in &chats {
        // No reply was sent before the kill, so exactly one after it.
        assert_eq!(
            w.telegram.texts_to(*chat),
            ["Thank you, User! Updates will arrive here."]
        );
        let customer = format!("cust-{chat}");
        assert!(
            w.crm
                .calls()
                .iter()
                .any(|c| c.body["customer_id"] == customer.as_str()),
            "{customer} never reached the CRM"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_the_running_step_and_the_restart_goes_on_from_there() {
    let mut w = World::start().await;
    w.crm.hold(true);
    w.daemon
        .post_update(
            &text_update(1, 77, "Anna", "/start c-77"),
            Some(WEBHOOK_SECRET),
        )
        .await;
    eventually("send_me in flight", || {
        Some(()).filter(|_| w.crm.calls().len() == 1)
    })
    .await;

    let crm = w.crm.clone();
    let release = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        crm.hold(false);
    });
    let status = w.daemon.terminate().await;
    release.await.unwrap();
    assert!(
        status.success(),
        "exit status {status}; log:\n{}",
        w.daemon.logs()
    );

    w.daemon.restart().await;
    eventually("the reply", || {
        Some(()).filter(|_| !w.telegram.texts_to(77).is_empty())
    })
    .await;
    assert_eq!(
        w.telegram.texts_to(77),
        ["Thank you, Anna! Updates will arrive here."]
    );
    // The send_me finished before shutdown and its outcome was kept: it is not repeated.
    assert_eq!(w.crm.calls().len(), 1, "{:?}", w.crm.calls());
}
