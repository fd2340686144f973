//! One owner for everything the gateway keeps for a caller, checked on every way in over real
//! HTTP: every kind of caller (the master key, two virtual keys, two JWT users of one team who
//! share a display name, an expired key) against every kept object (a stored response, a cache
//! entry) and every way to it (`GET`, `DELETE`, `previous_response_id` to a translated provider
//! and to one with its own store, a cache hit).

use serde_json::{Value, json};

use crate::identity::OidcProvider;
use crate::support::*;

/// The audience the test tokens carry (as the identity tests' provider issues them).
const AUDIENCE: &str = "urn:llm-bridge";
/// A provider the gateway translates to: the gateway keeps the conversation itself.
const TRANSLATED: &str = "deepseek/deepseek-chat";
/// A provider that speaks the Responses API and keeps responses of its own.
const OWN_STORE: &str = "gpt-4o-mini";

struct Caller {
    name: &'static str,
    secret: String,
}

impl Caller {
    fn is_master(&self) -> bool {
        self.name == "master"
    }
}

/// A locked gateway trusting the provider's tokens, with a per-key cache.
async fn gateway(provider: &OidcProvider) -> TestGateway {
    let toml = format!(
        r#"
[auth.jwt]
refresh_gap = "100ms"
user_claim = "name"
[[auth.jwt.issuers]]
issuer = "{}"
audiences = ["{AUDIENCE}"]

[[teams]]
name = "research"

[cache]
enabled = true
scope = "per-key"
"#,
        provider.issuer,
    );
    TestGateway::start_locked(&toml).await
}

/// Two JWT users with the same display name (`name`), told apart by their subject.
fn jwt_user(provider: &OidcProvider, sub: &str) -> String {
    let mut claims = provider.claims(sub, "research");
    claims["name"] = json!("Sam");
    provider.mint("RS256", claims)
}

async fn callers(gw: &TestGateway, provider: &OidcProvider) -> Vec<Caller> {
    let (_, key_a) = create_key(&gw.http, &gw.url, json!({"name": "a"})).await;
    let (_, key_b) = create_key(&gw.http, &gw.url, json!({"name": "b"})).await;
    let callers = vec![
        Caller {
            name: "master",
            secret: MASTER.into(),
        },
        Caller {
            name: "key a",
            secret: key_a,
        },
        Caller {
            name: "key b",
            secret: key_b,
        },
        Caller {
            name: "jwt 1",
            secret: jwt_user(provider, "user-1"),
        },
        Caller {
            name: "jwt 2",
            secret: jwt_user(provider, "user-2"),
        },
    ];
    // The verifier fetches the issuer's keys when it starts: wait until a token is accepted.
    poll_until("the issuer's keys fetched", || async {
        let resp = gw
            .get("/v1/models")
            .bearer_auth(&callers[3].secret)
            .send()
            .await
            .unwrap();
        (resp.status() == 200).then_some(())
    })
    .await;
    callers
}

async fn create(gw: &TestGateway, caller: &Caller, body: Value) -> reqwest::Response {
    gw.post("/v1/responses")
        .bearer_auth(&caller.secret)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn status_of(request: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = request.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The requests the mock received that mention `text` anywhere.
fn upstream_mentions(gw: &TestGateway, text: &str) -> usize {
    gw.mock
        .state
        .received()
        .iter()
        .filter(|r| String::from_utf8_lossy(&r.raw).contains(text))
        .count()
}

#[tokio::test]
async fn stored_responses_answer_only_their_owner_on_every_way_in() {
    let Some(provider) = OidcProvider::start_for(None).await else {
        return;
    };
    let gw = gateway(&provider).await;
    let callers = callers(&gw, &provider).await;

    for owner in &callers {
        let secret = format!("secret of {}", owner.name);
        let created = create(&gw, owner, json!({"model": TRANSLATED, "input": secret})).await;
        assert_eq!(created.status(), 200, "{}", owner.name);
        let created: Value = created.json().await.unwrap();
        let id = created["id"].as_str().unwrap().to_string();
        let path = format!("/v1/responses/{id}");

        for other in &callers {
            let may = other.is_master() || other.name == owner.name;
            let who = format!("{} on {}'s response", other.name, owner.name);
            // GET
            let (status, body) = status_of(gw.get(&path).bearer_auth(&other.secret)).await;
            assert_eq!(status, if may { 200 } else { 404 }, "{who}: {body}");
            if !may {
                assert_eq!(body["error"]["type"], "invalid_request_error", "{who}");
                assert!(!body.to_string().contains(&secret), "{who}");
            }
            // Continue, to a translated provider and to one with a store of its own.
            for model in [TRANSLATED, OWN_STORE] {
                let mentions = upstream_mentions(&gw, &id);
                let secrets = upstream_mentions(&gw, &secret);
                let next = create(
                    &gw,
                    other,
                    json!({"model": model, "previous_response_id": id, "input": "go on",
                           "store": false}),
                )
                .await;
                let status = next.status().as_u16();
                let body = next.text().await.unwrap();
                if may {
                    assert_eq!(status, 200, "{who} via {model}: {body}");
                    continue;
                }
                assert_eq!(status, 404, "{who} via {model}: {body}");
                assert!(body.contains("previous_response_id"), "{who}: {body}");
                assert_eq!(
                    upstream_mentions(&gw, &id),
                    mentions,
                    "{who} via {model}: the id went upstream"
                );
                assert_eq!(
                    upstream_mentions(&gw, &secret),
                    secrets,
                    "{who} via {model}: the conversation went upstream"
                );
            }
            // DELETE by anyone else leaves it in place.
            if !may {
                let (status, _) = status_of(
                    gw.http
                        .delete(format!("{}{path}", gw.url))
                        .bearer_auth(&other.secret),
                )
                .await;
                assert_eq!(status, 404, "{who}: delete");
            }
        }
        let (status, _) = status_of(gw.get(&path).bearer_auth(&owner.secret)).await;
        assert_eq!(status, 200, "{}: still there", owner.name);
        let (status, body) = status_of(
            gw.http
                .delete(format!("{}{path}", gw.url))
                .bearer_auth(&owner.secret),
        )
        .await;
        assert_eq!(status, 200, "{}: own delete", owner.name);
        assert_eq!(body["deleted"], true);
        let (status, _) = status_of(gw.get(&path).bearer_auth(MASTER)).await;
        assert_eq!(status, 404, "{}: deleted", owner.name);
    }

    // An id the gateway does not hold goes to a provider's own store for the master key only.
    let unknown = "resp_0123456789abcdef";
    for caller in &callers {
        let before = upstream_mentions(&gw, unknown);
        let resp = create(
            &gw,
            caller,
            json!({"model": OWN_STORE, "previous_response_id": unknown, "input": "x"}),
        )
        .await;
        let status = resp.status().as_u16();
        resp.text().await.unwrap();
        let forwarded = upstream_mentions(&gw, unknown) > before;
        if caller.is_master() {
            assert_eq!((status, forwarded), (200, true), "{}", caller.name);
        } else {
            assert_eq!((status, forwarded), (404, false), "{}", caller.name);
        }
    }
}

#[tokio::test]
async fn cache_entries_answer_only_their_owner() {
    let Some(provider) = OidcProvider::start_for(None).await else {
        return;
    };
    let gw = gateway(&provider).await;
    let callers = callers(&gw, &provider).await;
    let mut body = hello("gpt-4o-mini");
    body["temperature"] = json!(0);
    let ask = |caller: &Caller| {
        gw.post("/v1/chat/completions")
            .bearer_auth(&caller.secret)
            .json(&body)
            .send()
    };
    let outcome = |resp: &reqwest::Response| {
        resp.headers()
            .get("x-llm-bridge-cache")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    for caller in &callers {
        let first = ask(caller).await.unwrap();
        assert_eq!(first.status(), 200, "{}", caller.name);
        assert_eq!(outcome(&first), "miss", "{}: another's entry", caller.name);
        let second = ask(caller).await.unwrap();
        assert_eq!(outcome(&second), "hit", "{}: its own entry", caller.name);
    }
    let calls = gw
        .mock
        .state
        .received()
        .iter()
        .filter(|r| r.path.ends_with("/chat/completions"))
        .count();
    assert_eq!(calls, callers.len(), "one upstream call per owner");
}

#[tokio::test]
async fn an_expired_key_reads_and_deletes_nothing() {
    let gw = TestGateway::start_locked("").await;
    let expires_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 2;
    let (_, key) = create_key(
        &gw.http,
        &gw.url,
        json!({"name": "short", "expires_at": expires_at}),
    )
    .await;
    let created: Value = gw
        .post("/v1/responses")
        .bearer_auth(&key)
        .json(&json!({"model": TRANSLATED, "input": "Hi"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let path = format!("/v1/responses/{}", created["id"].as_str().unwrap());
    assert_eq!(status_of(gw.get(&path).bearer_auth(&key)).await.0, 200);
    let body = poll_until("the key expired", || async {
        let (status, body) = status_of(gw.get(&path).bearer_auth(&key)).await;
        (status != 200).then_some(body)
    })
    .await;
    assert_eq!(body["error"]["code"], "key_expired");
    let delete = gw
        .http
        .delete(format!("{}{path}", gw.url))
        .bearer_auth(&key);
    assert_eq!(status_of(delete).await.0, 401);
    let (status, _) = status_of(gw.get(&path).bearer_auth(MASTER)).await;
    assert_eq!(status, 200, "still kept");
}
