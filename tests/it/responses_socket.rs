//! The Responses API over a WebSocket (`GET /v1/responses`, `Upgrade: websocket`), as Codex and
//! the OpenAI SDKs' `responses.connect()` speak it: several responses on one socket, continued by
//! `previous_response_id` without `store`, errors as events that leave the socket open, a stream
//! that breaks off upstream, authentication on the upgrade, and the request log's transport.

use crate::support::*;
use futures_util::{SinkExt, StreamExt};
use llm_bridge_mock::REPLY_WORDS;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(
    gw: &TestGateway,
    key: Option<&str>,
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let url = format!("{}/v1/responses", gw.url.replacen("http", "ws", 1));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "openai-beta",
        "responses_websockets=2026-02-06".parse().unwrap(),
    );
    if let Some(key) = key {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {key}").parse().unwrap());
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, _)| socket)
}

/// Sends a `response.create` and reads events up to the end of that response (or an error).
async fn create(socket: &mut Socket, body: Value) -> Vec<Value> {
    let mut event = body;
    event["type"] = json!("response.create");
    socket.send(Message::text(event.to_string())).await.unwrap();
    let mut events = Vec::new();
    loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .expect("an event within 10 s")
            .expect("the socket stays open")
            .unwrap();
        let Message::Text(text) = message else {
            continue;
        };
        let event: Value = serde_json::from_str(text.as_str()).unwrap();
        let kind = event["type"].as_str().unwrap().to_string();
        events.push(event);
        if matches!(
            kind.as_str(),
            "response.completed" | "response.failed" | "response.incomplete" | "error"
        ) {
            return events;
        }
    }
}

fn text(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .filter_map(|e| e["delta"].as_str())
        .collect()
}

#[tokio::test]
async fn two_turns_on_one_socket_continue_without_store_on_any_provider() {
    let gw = TestGateway::start().await;
    for model in ["gpt-4o-mini", "claude-sonnet-4-5"] {
        let mut socket = connect(&gw, None).await.unwrap();
        let first = create(
            &mut socket,
            json!({"model": model, "input": "Hi", "store": false}),
        )
        .await;
        assert_eq!(first[0]["type"], "response.created", "{model}: {first:?}");
        let last = first.last().unwrap();
        assert_eq!(last["type"], "response.completed", "{model}: {last}");
        assert_eq!(text(&first), REPLY_WORDS.concat(), "{model}");
        let id = last["response"]["id"].as_str().unwrap().to_string();

        let second = create(
            &mut socket,
            json!({"model": model, "input": "And again?", "store": false, "previous_response_id": id}),
        )
        .await;
        assert_eq!(
            second.last().unwrap()["type"],
            "response.completed",
            "{model}: {second:?}"
        );
        let sent = gw.mock.state.last().body;
        let conversation = sent.to_string();
        assert!(
            conversation.contains("Hi"),
            "{model}: the first turn goes along: {sent}"
        );
        assert!(
            conversation.contains("Hello from the mock"),
            "{model}: its answer too: {sent}"
        );
        assert!(conversation.contains("And again?"), "{model}");

        // Not stored: the id means nothing over HTTP, nor on another socket.
        let resp = gw.get(&format!("/v1/responses/{id}")).send().await.unwrap();
        assert_eq!(resp.status(), 404);
        let mut other = connect(&gw, None).await.unwrap();
        let refused = create(
            &mut other,
            json!({"model": model, "input": "x", "previous_response_id": id}),
        )
        .await;
        assert_eq!(refused.last().unwrap()["type"], "error");
        assert_eq!(refused.last().unwrap()["status"], 404);
    }
    let logged = poll_until("the socket's responses recorded", || async {
        let log = gw.get_json("/api/requests").await;
        let on_socket: Vec<Value> = log
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["transport"] == "websocket" && r["status"] == 200)
            .cloned()
            .collect();
        (on_socket.len() == 4).then_some(on_socket)
    })
    .await;
    assert!(logged.iter().all(|r| r["api"] == "responses"));
}

#[tokio::test]
async fn a_warm_up_without_generation_is_continued_by_the_next_response() {
    let gw = TestGateway::start().await;
    let mut socket = connect(&gw, None).await.unwrap();
    let warm = create(
        &mut socket,
        json!({"model": "claude-sonnet-4-5", "input": "Remember: blue.", "generate": false, "store": false}),
    )
    .await;
    assert_eq!(warm.len(), 2, "{warm:?}");
    assert_eq!(warm[1]["type"], "response.completed");
    assert_eq!(warm[1]["response"]["output"], json!([]));
    assert!(
        gw.mock.state.received().is_empty(),
        "no upstream call for a warm-up"
    );
    let id = warm[1]["response"]["id"].as_str().unwrap();
    let turn = create(
        &mut socket,
        json!({"model": "claude-sonnet-4-5", "input": "Which colour?", "previous_response_id": id, "store": false}),
    )
    .await;
    assert_eq!(turn.last().unwrap()["type"], "response.completed");
    let sent = gw.mock.state.last().body.to_string();
    assert!(
        sent.contains("Remember: blue.") && sent.contains("Which colour?"),
        "{sent}"
    );
    assert!(!sent.contains("generate"), "{sent}");

    // Warm-ups chained on one socket stay within one kept response's cap.
    let gw = TestGateway::start_with(
        "[responses]\nmax_entry_bytes = 4096\nmax_bytes = 65536\n",
        |_| {},
    )
    .await;
    let mut socket = connect(&gw, None).await.unwrap();
    let big = "x".repeat(1500);
    let mut previous = Value::Null;
    let mut refused = None;
    for turn in 0..6 {
        let mut event =
            json!({"model": "gpt-4o-mini", "input": big, "generate": false, "store": false});
        if !previous.is_null() {
            event["previous_response_id"] = previous.clone();
        }
        let events = create(&mut socket, event).await;
        let last = events.last().unwrap();
        if last["type"] == "error" {
            refused = Some((turn, last.clone()));
            break;
        }
        previous = last["response"]["id"].clone();
    }
    let (turn, error) = refused.expect("the chain is refused once over the cap");
    assert!(turn >= 2, "{turn}");
    assert_eq!(error["status"], 400, "{error}");
}

#[tokio::test]
async fn a_requests_error_is_an_event_and_the_socket_serves_on() {
    let gw = TestGateway::start().await;
    let mut socket = connect(&gw, None).await.unwrap();
    socket.send(Message::text("not json")).await.unwrap();
    let Message::Text(error) = socket.next().await.unwrap().unwrap() else {
        panic!()
    };
    let error: Value = serde_json::from_str(error.as_str()).unwrap();
    assert_eq!(error["type"], "error");
    assert_eq!(error["status"], 400);

    let unknown = create(&mut socket, json!({"model": "no-such-model", "input": "x"})).await;
    assert_eq!(unknown.last().unwrap()["type"], "error");
    assert_eq!(unknown.last().unwrap()["status"], 404);
    let bad = create(
        &mut socket,
        json!({"model": "gpt-4o-mini", "input": "x", "previous_response_id": "resp_nope"}),
    )
    .await;
    assert_eq!(
        bad.last().unwrap()["error"]["param"],
        "previous_response_id"
    );

    // A stream that breaks off upstream ends with an error event; the socket serves on.
    let cut = create(
        &mut socket,
        json!({"model": "anthropic/a-cut", "input": "Hi"}),
    )
    .await;
    let last = cut.last().unwrap();
    assert!(
        matches!(last["type"].as_str(), Some("error" | "response.failed")),
        "{cut:?}"
    );
    let fine = create(&mut socket, json!({"model": "gpt-4o-mini", "input": "Hi"})).await;
    assert_eq!(fine.last().unwrap()["type"], "response.completed");
    socket.close(None).await.unwrap();
}

#[tokio::test]
async fn the_upgrade_needs_a_key_and_limits_count_each_response() {
    let gw = TestGateway::start_locked("").await;
    let refused = connect(&gw, None).await.unwrap_err();
    match refused {
        tokio_tungstenite::tungstenite::Error::Http(response) => assert_eq!(response.status(), 401),
        other => panic!("expected a 401, got {other}"),
    }
    let (_, key) = create_key(&gw.http, &gw.url, json!({"name": "ws", "rpm": 2})).await;
    let mut socket = connect(&gw, Some(&key)).await.unwrap();
    for _ in 0..2 {
        let ok = create(
            &mut socket,
            json!({"model": "gpt-4o-mini", "input": "Hi", "store": false}),
        )
        .await;
        assert_eq!(ok.last().unwrap()["type"], "response.completed");
    }
    let limited = create(&mut socket, json!({"model": "gpt-4o-mini", "input": "Hi"})).await;
    assert_eq!(limited.last().unwrap()["type"], "error");
    assert_eq!(limited.last().unwrap()["status"], 429);
}

#[tokio::test]
async fn a_plain_get_is_told_how_to_use_the_route() {
    let gw = TestGateway::start().await;
    let resp = gw.get("/v1/responses").send().await.unwrap();
    assert_eq!(resp.status(), 405);
}
