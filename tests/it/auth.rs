//! The master key: the API needs it, the console needs a login with it, and it never leaks.

use crate::support::*;
use serde_json::{Value, json};

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn api_needs_the_master_key() {
    let gw = TestGateway::start_locked("").await;
    let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]});
    let resp = gw
        .post("/v1/chat/completions")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let e: Value = resp.json().await.unwrap();
    assert_eq!(e["error"]["code"], "invalid_api_key");
    assert!(
        gw.mock.state.received().is_empty(),
        "nothing reached the upstream"
    );

    let wrong = gw
        .post("/v1/chat/completions")
        .bearer_auth("mk-wrong-key-000000000")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let right = gw
        .post("/v1/chat/completions")
        .bearer_auth(MASTER)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    let header = gw
        .post("/v1/chat/completions")
        .header("x-api-key", MASTER)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(header.status(), 200);

    for path in [
        "/v1/models",
        "/api/stats/overview",
        "/api/requests",
        "/metrics",
    ] {
        assert_eq!(gw.get(path).send().await.unwrap().status(), 401, "{path}");
        assert_eq!(
            gw.get(path)
                .bearer_auth(MASTER)
                .send()
                .await
                .unwrap()
                .status(),
            200,
            "{path}"
        );
    }
    for path in ["/health", "/health/live", "/health/ready"] {
        assert_eq!(
            gw.get(path).send().await.unwrap().status(),
            200,
            "{path} stays open"
        );
    }
}

#[tokio::test]
async fn console_needs_a_login() {
    let gw = TestGateway::start_locked("").await;
    let client = no_redirects();
    let page = client.get(format!("{}/", gw.url)).send().await.unwrap();
    assert_eq!(page.status(), 303);
    assert_eq!(page.headers()["location"], "/login");
    let login = client
        .get(format!("{}/login", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    assert!(login.text().await.unwrap().contains("Master key"));

    let bad = client
        .post(format!("{}/login", gw.url))
        .form(&[("key", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);

    let good = client
        .post(format!("{}/login", gw.url))
        .form(&[("key", MASTER)])
        .send()
        .await
        .unwrap();
    assert_eq!(good.status(), 303);
    let cookie = good.headers()["set-cookie"].to_str().unwrap().to_string();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    assert!(!cookie.contains(MASTER), "the cookie is not the key");
    let session = cookie.split(';').next().unwrap().to_string();

    let page = client
        .get(format!("{}/", gw.url))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(!page.text().await.unwrap().contains(MASTER));
    // The session also lets the console's tester call the API.
    let api = client
        .get(format!("{}/v1/models", gw.url))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200);

    // A forged or tampered session is refused.
    let forged = session.replace(|c: char| c.is_ascii_digit(), "9");
    let page = client
        .get(format!("{}/", gw.url))
        .header("cookie", forged)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 303);

    // Server functions refuse cross-site calls even with the cookie.
    let cross = client
        .post(format!("{}/console/fn/anything", gw.url))
        .header("cookie", &session)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);

    let https = client
        .post(format!("{}/login", gw.url))
        .header("x-forwarded-proto", "https")
        .form(&[("key", MASTER)])
        .send()
        .await
        .unwrap();
    assert!(
        https.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Secure")
    );
}

#[tokio::test]
async fn short_master_key_is_rejected() {
    let mut env = std::collections::HashMap::new();
    env.insert("LLM_BRIDGE_MASTER_KEY".to_string(), "short".to_string());
    let err = llm_bridge::config::Config::load(&Default::default(), &env)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("auth.master_key") && err.contains("16"),
        "{err}"
    );
}

#[tokio::test]
async fn open_gateway_needs_nothing() {
    let gw = TestGateway::start().await;
    assert_eq!(gw.get("/v1/models").send().await.unwrap().status(), 200);
    assert_eq!(
        no_redirects()
            .get(format!("{}/", gw.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}
