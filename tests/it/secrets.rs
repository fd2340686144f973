//! A whole gateway session — keys created, rotated and revoked, good and failing requests, streams,
//! embeddings, JWT callers (good, expired and forged tokens), console sign-in through an OpenID
//! provider, every console page, the API, `/metrics` — and not one secret in any page, response,
//! header, metric or log line (debug logging on): provider keys, the master key, virtual keys,
//! tokens, the OpenID client secret; nor a session cookie anywhere but the reply that set it.

use crate::identity::{Browser, CONSOLE_SECRET, OidcProvider};
use crate::support::*;
use llm_bridge_mock::MockUpstream;
use serde_json::{Value, json};

const MASTER: &str = "mk-session-master-key-5f3a9c1e7b";

/// Everything the session saw, to be searched for secrets at the end.
#[derive(Default)]
struct Transcript(Vec<(String, String)>);

impl Transcript {
    async fn keep(&mut self, what: &str, resp: reqwest::Response) -> (u16, String) {
        let status = resp.status().as_u16();
        let headers = format!("{:?}", resp.headers());
        let body = resp
            .text()
            .await
            .unwrap_or_else(|e| panic!("{what}: the body broke off: {e}"));
        self.0
            .push((what.to_string(), format!("{headers}\n{body}")));
        (status, body)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_appears_anywhere_in_a_full_session() {
    let mock = MockUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let callback = format!("http://127.0.0.1:{port}/login/oidc/callback");
    let Some(provider) = OidcProvider::start_for(Some(callback.clone())).await else {
        return;
    };
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[auth.jwt]
[[auth.jwt.issuers]]
issuer = "{issuer}"
audiences = ["urn:llm-bridge"]

[auth.oidc]
issuer = "{issuer}"
client_id = "console"
redirect_url = "{callback}"

[[teams]]
name = "research"
"#,
            issuer = provider.issuer
        ),
    )
    .unwrap();
    let mut env: Vec<(&str, String)> = mock_env(&mock)
        .into_iter()
        .map(|(k, v)| (&*Box::leak(k.into_boxed_str()), v))
        .collect();
    env.push(("LLM_BRIDGE_MASTER_KEY", MASTER.to_string()));
    env.push(("RUST_LOG", "debug".to_string()));
    env.push(("LLM_BRIDGE_CONFIG", config.display().to_string()));
    env.push(("LLM_BRIDGE_LISTEN", format!("127.0.0.1:{port}")));
    env.push(("LLM_BRIDGE_OIDC_CLIENT_SECRET", CONSOLE_SECRET.to_string()));
    let gw = Running::start(dir.path(), &env).await;
    let url = gw.url.clone();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut seen = Transcript::default();
    let mut key_secrets: Vec<String> = Vec::new();

    // Keys: the create and rotate replies carry the secret by design; they are not searched.
    let create = |settings: Value| {
        http.post(format!("{url}/api/keys"))
            .bearer_auth(MASTER)
            .json(&settings)
            .send()
    };
    let a: Value = create(json!({"name": "team-a", "rpm": 1000}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let b: Value =
        create(json!({"name": "team-b", "models": ["gpt-4o-mini"], "budget_usd": 0.0000001}))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let a_secret = a["key"].as_str().unwrap().to_string();
    let b_secret = b["key"].as_str().unwrap().to_string();
    key_secrets.extend([a_secret.clone(), b_secret.clone()]);
    let rotated: Value = http
        .post(format!(
            "{url}/api/keys/{}/rotate",
            a["id"].as_str().unwrap()
        ))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let a_secret = rotated["key"].as_str().unwrap().to_string();
    key_secrets.push(a_secret.clone());

    // Requests: good, failing, streamed, translated, refused, with old and wrong keys.
    let chat = |key: String, body: Value| {
        http.post(format!("{url}/v1/chat/completions"))
            .bearer_auth(key)
            .json(&body)
            .send()
    };
    let mut statuses = std::collections::HashMap::new();
    let msg = |model: &str, stream: bool| json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "Hi"}]});
    for (what, key, body) in [
        ("chat", a_secret.clone(), msg("gpt-4o-mini", false)),
        ("stream", a_secret.clone(), msg("gpt-4o-mini", true)),
        ("gemini", a_secret.clone(), msg("gemini-2.0-flash", true)),
        (
            "anthropic",
            a_secret.clone(),
            msg("claude-3-5-haiku-latest", false),
        ),
        ("deepseek", MASTER.to_string(), msg("deepseek-chat", true)),
        (
            "upstream 500",
            a_secret.clone(),
            msg("openai/gpt-fail500", false),
        ),
        (
            "upstream 400",
            a_secret.clone(),
            msg("openai/gpt-fail400", false),
        ),
        (
            "upstream 429",
            a_secret.clone(),
            msg("openai/gpt-fail429", false),
        ),
        (
            "gemini blocked",
            a_secret.clone(),
            msg("gemini-blocked", false),
        ),
        ("cut stream", a_secret.clone(), msg("openai/gpt-cut", true)),
        ("not allowed", b_secret.clone(), msg("gpt-4o", false)),
        ("budget", b_secret.clone(), msg("gpt-4o-mini", false)),
        ("over budget", b_secret.clone(), msg("gpt-4o-mini", false)),
        (
            "rotated away",
            key_secrets[0].clone(),
            msg("gpt-4o-mini", false),
        ),
        (
            "wrong key",
            "sk-llmb-wrong".to_string(),
            msg("gpt-4o-mini", false),
        ),
        ("bad json", a_secret.clone(), json!("nope")),
    ] {
        let (status, _) = seen.keep(what, chat(key, body).await.unwrap()).await;
        statuses.insert(what, status);
    }
    for (what, status) in [
        ("chat", 200),
        ("stream", 200),
        ("upstream 400", 400),
        ("not allowed", 403),
        ("over budget", 429),
        ("rotated away", 401),
        ("wrong key", 401),
    ] {
        assert_eq!(statuses[what], status, "{what}");
    }
    let emb = http
        .post(format!("{url}/v1/embeddings"))
        .bearer_auth(&a_secret)
        .json(&json!({"model": "text-embedding-3-small", "input": ["a", "b"]}))
        .send()
        .await
        .unwrap();
    seen.keep("embeddings", emb).await;

    // JWT callers: a token from the provider, one expired, one with its signature changed.
    let token = provider.token("erin", None).await;
    let mut expired = provider.claims("erin", "research");
    expired["exp"] = json!(1);
    let expired = provider.mint("ES256", expired);
    let forged = format!("{}x", &token[..token.len() - 1]);
    for (what, jwt, status) in [
        ("jwt", &token, 200),
        ("expired jwt", &expired, 401),
        ("forged jwt", &forged, 401),
    ] {
        let (got, _) = seen
            .keep(
                what,
                chat(jwt.clone(), msg("gpt-4o-mini", true)).await.unwrap(),
            )
            .await;
        assert_eq!(got, status, "{what}");
    }
    key_secrets.extend([token, expired, forged]);

    // The API and metrics.
    for path in [
        "/v1/models",
        "/api/keys",
        "/api/stats/overview?window=1h",
        "/api/stats/providers?window=1h",
        "/api/stats/timeseries?window=1h",
        "/api/requests?limit=100",
        "/api/pricing",
        "/health",
        "/health/ready",
        "/metrics",
        "/openapi.json",
    ] {
        let resp = http
            .get(format!("{url}{path}"))
            .bearer_auth(MASTER)
            .send()
            .await
            .unwrap();
        let (status, _) = seen.keep(path, resp).await;
        assert_eq!(status, 200, "{path}");
    }

    // The console, logged in.
    let login = http
        .post(format!("{url}/login"))
        .form(&[("key", MASTER)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    seen.keep("login", login).await;
    for path in [
        "/",
        "/providers",
        "/system",
        "/tester",
        "/requests",
        "/keys",
    ] {
        let resp = http
            .get(format!("{url}{path}"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        let (status, _) = seen.keep(path, resp).await;
        assert_eq!(status, 200, "{path}");
    }
    // Console sessions through the OpenID provider: an admin and a viewer.
    let mut session_cookies = vec![cookie.split_once('=').unwrap().1.to_string()];
    for (login, pages) in [
        ("ann", &["/", "/keys", "/system"][..]),
        ("vic", &["/", "/requests", "/keys"][..]),
    ] {
        let mut browser = Browser::new();
        let back = browser.sign_in(&url, login).await;
        assert_eq!(back.status, 303, "{login}: {}", back.body);
        for path in pages {
            let page = browser.get(&format!("{url}{path}")).await;
            seen.0.push((format!("{login} {path}"), page.body));
        }
        session_cookies.push(browser.cookies["llmb_session"].clone());
    }

    let wrong_login = http
        .post(format!("{url}/login"))
        .form(&[("key", "mk-not-the-master-key-000")])
        .send()
        .await
        .unwrap();
    seen.keep("wrong login", wrong_login).await;

    // Revoke, then let the stats and key files be written.
    let revoke = http
        .delete(format!("{url}/api/keys/{}", b["id"].as_str().unwrap()))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap();
    seen.keep("revoke", revoke).await;
    gw.terminate();
    let (status, log) = gw.wait_exit().await;
    assert!(status.success());
    assert!(log.contains("DEBUG"), "debug logging was on");
    seen.0.push(("log".into(), log));
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            seen.0.push((path.display().to_string(), text));
        }
    }

    let mut secrets: Vec<String> = ALL_KEYS.iter().map(|k| k.to_string()).collect();
    secrets.push(MASTER.to_string());
    secrets.push(CONSOLE_SECRET.to_string());
    secrets.extend(key_secrets);
    // The replies that set a session cookie carry it by design (`login`); nothing else may.
    for (what, text) in seen.0.iter().filter(|(what, _)| what != "login") {
        for cookie in &session_cookies {
            assert!(
                !text.contains(cookie.as_str()),
                "a session cookie appears in {what}"
            );
        }
    }
    for (what, text) in &seen.0 {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "a secret ({}…) appears in {what}",
                &secret[..8]
            );
        }
    }
    assert!(seen.0.len() > 30);
}
