//! JWT callers, against a real OpenID provider (`oidc-provider` from npm, started on a free port
//! with generated signing keys): tokens it issues with the client credentials grant are accepted
//! for every key type, the caller acts as its team (models, rpm, budget), and forged, expired,
//! foreign or unknown-key tokens are refused with a precise reason. Key rotation and an outage of
//! the provider's key endpoint are covered too. Console sign-in goes through the provider's login
//! and consent pages with the authorization code flow; roles decide what the session may do.

use std::process::Stdio;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::support::*;

const AUDIENCE: &str = "urn:llm-bridge";
pub const CONSOLE_SECRET: &str = "console-secret-0123456789";

/// A running oidc-provider; killed on drop.
pub struct OidcProvider {
    child: Option<Child>,
    port: u16,
    pub issuer: String,
    /// The signing set's keys: (kid, alg, private PEM, public PEM).
    keys: Vec<(String, String, String, String)>,
    dir: tempfile::TempDir,
    http: reqwest::Client,
    /// The console client's redirect URI, when it signs users in.
    console: Option<String>,
}

fn clients() -> Value {
    json!([
        {"client_id": "alice", "client_secret": "alice-secret-0123456789", "alg": "RS256",
         "claims": {"team": "research", "role": "admin"}},
        {"client_id": "erin", "client_secret": "erin-secret-0123456789", "alg": "ES256",
         "claims": {"team": "research"}},
        {"client_id": "eddy", "client_secret": "eddy-secret-0123456789", "alg": "EdDSA",
         "claims": {"team": "research"}},
        {"client_id": "tom", "client_secret": "tom-secret-0123456789", "alg": "RS256",
         "claims": {"team": "thrifty"}},
        {"client_id": "loner", "client_secret": "loner-secret-0123456789", "alg": "RS256"},
        {"client_id": "ghost", "client_secret": "ghost-secret-0123456789", "alg": "ES256",
         "claims": {"team": "no-such-team"}},
    ])
}

impl OidcProvider {
    /// Starts one, or returns None (skipping loudly) when Node.js or the package is missing
    /// outside CI.
    async fn start() -> Option<OidcProvider> {
        Self::start_for(None).await
    }

    /// One that also signs console users in, sending them back to `redirect_uri`.
    pub async fn start_for(console: Option<String>) -> Option<OidcProvider> {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc");
        if !script.join("node_modules/oidc-provider").is_dir() {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("tests/oidc/node_modules is missing: run scripts/setup.sh --test");
            }
            eprintln!("SKIPPED: oidc-provider is not installed (scripts/setup.sh --test)");
            return None;
        }
        let mut provider = OidcProvider {
            child: None,
            port: 0,
            issuer: String::new(),
            keys: Vec::new(),
            dir: tempfile::tempdir().unwrap(),
            http: reqwest::Client::new(),
            console,
        };
        provider.spawn(false).await;
        Some(provider)
    }

    /// (Re)starts the process on the same port; `rotate` makes a new signing key set.
    async fn spawn(&mut self, rotate: bool) {
        self.spawn_with(rotate, false).await;
    }

    /// `forget`: the older key sets are withdrawn.
    async fn spawn_with(&mut self, rotate: bool, forget: bool) {
        let settings = json!({
            "port": self.port,
            "keys_file": self.dir.path().join("keys.json"),
            "rotate": rotate,
            "forget": forget,
            "audience": AUDIENCE,
            "clients": clients(),
            "console": self.console.as_ref().map(|uri| json!({
                "client_id": "console", "client_secret": CONSOLE_SECRET, "redirect_uri": uri,
            })),
            "users": {"ann": {"role": "admin"}, "vic": {"role": "viewer"}, "nora": {}},
        });
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc");
        let mut child = Command::new("node")
            .arg(script.join("provider.mjs"))
            .arg(settings.to_string())
            .current_dir(&script)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        let mut line = String::new();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        tokio::time::timeout(Duration::from_secs(30), out.read_line(&mut line))
            .await
            .expect("the OpenID provider starts within 30 s")
            .unwrap();
        let started: Value = serde_json::from_str(&line).expect("the provider's first line");
        // It goes on writing notes to stdout: keep reading, or its writes fail and it stops.
        tokio::spawn(async move { tokio::io::copy(&mut out, &mut tokio::io::sink()).await });
        self.port = started["port"].as_u64().unwrap() as u16;
        self.issuer = started["issuer"].as_str().unwrap().to_string();
        self.keys = started["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                let s = |f: &str| k[f].as_str().unwrap().to_string();
                (s("kid"), s("alg"), s("pem"), s("public_pem"))
            })
            .collect();
        self.child = Some(child);
    }

    async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }

    /// An access token (a JWT) for the client, from the provider's token endpoint.
    pub async fn token(&self, client: &str, resource: Option<&str>) -> String {
        let secret = format!("{client}-secret-0123456789");
        let mut form = vec![("grant_type", "client_credentials"), ("scope", "api")];
        if let Some(r) = resource {
            form.push(("resource", r));
        }
        let resp = self
            .http
            .post(format!("{}/token", self.issuer))
            .basic_auth(client, Some(secret))
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    /// A token signed with the provider's own key of that algorithm, with any claims.
    pub fn mint(&self, alg: &str, claims: Value) -> String {
        let (kid, _, pem, _) = self.keys.iter().find(|k| k.1 == alg).unwrap();
        let (algorithm, key) = match alg {
            "RS256" => (
                Algorithm::RS256,
                EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
            ),
            "ES256" => (
                Algorithm::ES256,
                EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
            ),
            _ => (
                Algorithm::EdDSA,
                EncodingKey::from_ed_pem(pem.as_bytes()).unwrap(),
            ),
        };
        let mut header = Header::new(algorithm);
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    }

    /// Claims a token from this provider would carry, valid for an hour.
    pub fn claims(&self, sub: &str, team: &str) -> Value {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        json!({"iss": self.issuer, "aud": AUDIENCE, "sub": sub, "team": team,
               "iat": now, "exp": now + 3600})
    }
}

/// A gateway trusting the provider, with the teams `research` (limited to `rpm`) and `thrifty`
/// (a tiny daily budget).
async fn gateway_for(provider: &OidcProvider, rpm: u64) -> TestGateway {
    let toml = format!(
        r#"
[auth.jwt]
refresh_gap = "100ms"
[[auth.jwt.issuers]]
issuer = "{}"
audiences = ["{AUDIENCE}"]

[[teams]]
name = "research"
models = ["gpt-4o-mini", "text-embedding-3-small"]
rpm = {rpm}

[[teams]]
name = "thrifty"
budget_usd = 0.0000001
budget_period = "day"
"#,
        provider.issuer,
    );
    let gw = TestGateway::start_locked(&toml).await;
    // The verifier fetches the keys when it starts; wait for them so the first request needs none.
    poll_until("the issuer's keys fetched", || async {
        let token = provider.token("alice", None).await;
        let resp = chat_with(&gw, &token, "gpt-4o-mini").await;
        (resp.status() == 200).then_some(())
    })
    .await;
    gw
}

async fn chat_with(gw: &TestGateway, token: &str, model: &str) -> reqwest::Response {
    gw.post("/v1/chat/completions")
        .bearer_auth(token)
        .json(&hello(model))
        .send()
        .await
        .unwrap()
}

/// The status and the error message of a refused request.
async fn refusal(resp: reqwest::Response) -> (u16, String, String) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    (
        status,
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

#[tokio::test]
async fn jwt_callers_act_as_their_team() {
    let Some(provider) = OidcProvider::start().await else {
        return;
    };
    let gw = gateway_for(&provider, 6).await;

    // One token per key type the provider signs with: RS256, ES256 and EdDSA.
    for client in ["erin", "eddy"] {
        let token = provider.token(client, None).await;
        let resp = chat_with(&gw, &token, "gpt-4o-mini").await;
        assert_eq!(
            resp.status(),
            200,
            "{client}: {}",
            resp.text().await.unwrap()
        );
    }
    poll_until("the requests recorded with team and user", || async {
        let log: Value = gw.master_json("/api/requests").await;
        let users: Vec<&str> = log
            .as_array()?
            .iter()
            .filter(|r| r["team"] == "research")
            .filter_map(|r| r["user"].as_str())
            .collect();
        (users.contains(&"alice") && users.contains(&"erin") && users.contains(&"eddy"))
            .then_some(())
    })
    .await;
    let teams: Value = gw.master_json("/api/stats/teams").await;
    let research = teams
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "research")
        .unwrap_or_else(|| panic!("{teams}"));
    assert!(research["requests"].as_u64().unwrap() >= 3, "{teams}");
    let users: Value = gw.master_json("/api/stats/users").await;
    assert!(users.to_string().contains("\"eddy\""), "{users}");

    // The team's models only.
    let token = provider.token("erin", None).await;
    let (status, message, code) = refusal(chat_with(&gw, &token, "gpt-4o").await).await;
    assert_eq!(
        (status, code.as_str()),
        (403, "model_not_allowed"),
        "{message}"
    );
    assert!(message.contains("team `research`"), "{message}");

    let ids = gw.model_ids(&token).await;
    assert!(
        ids.iter().any(|m| m == "gpt-4o-mini") && !ids.iter().any(|m| m == "gpt-4o"),
        "{ids:?}"
    );

    // A token is for /v1 only; the management API needs the master key.
    let resp = gw
        .get("/api/keys")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);

    // No team claim, or a team the gateway does not know: refused, and said why.
    let token = provider.token("loner", None).await;
    let (status, _, code) = refusal(chat_with(&gw, &token, "gpt-4o-mini").await).await;
    assert_eq!((status, code.as_str()), (403, "team_required"));
    let token = provider.token("ghost", None).await;
    let (status, message, code) = refusal(chat_with(&gw, &token, "gpt-4o-mini").await).await;
    assert_eq!((status, code.as_str()), (403, "team_not_found"));
    assert!(message.contains("no-such-team"), "{message}");

    // The team's rpm (6) is shared by its members, whoever sends.
    let mut statuses = Vec::new();
    for client in ["alice", "erin", "eddy", "alice", "erin", "eddy", "alice"] {
        let token = provider.token(client, None).await;
        let resp = chat_with(&gw, &token, "gpt-4o-mini").await;
        statuses.push(resp.status().as_u16());
        if resp.status() == 429 {
            let (_, message, _) = refusal(resp).await;
            assert!(message.contains("your team"), "{message}");
        }
    }
    // Four requests of the team came before (the model refusal counts: it was admitted); the
    // bucket refills one request every 10 s.
    assert_eq!(statuses[0], 200, "{statuses:?}");
    assert!(
        statuses.iter().filter(|&&s| s == 429).count() >= 4,
        "{statuses:?}"
    );

    // A team budget: the first request spends it, the next is refused until the day ends.
    let token = provider.token("tom", None).await;
    let first = chat_with(&gw, &token, "gpt-4o-mini").await;
    assert_eq!(first.status(), 200);
    first.bytes().await.unwrap();
    let (status, message, code) = poll_until("the team's spend counted", || async {
        let r = refusal(chat_with(&gw, &token, "gpt-4o-mini").await).await;
        (r.0 == 429).then_some(r)
    })
    .await;
    assert_eq!((status, code.as_str()), (429, "budget_exceeded"));
    assert!(message.contains("team `thrifty`"), "{message}");
}

#[tokio::test]
async fn forged_expired_and_foreign_tokens_are_refused_with_the_reason() {
    let Some(provider) = OidcProvider::start().await else {
        return;
    };
    let gw = gateway_for(&provider, 1000).await;
    let now = provider.claims("mallory", "research")["iat"]
        .as_u64()
        .unwrap();
    let refused = |token: String| {
        let gw = &gw;
        async move {
            let (status, message, code) = refusal(chat_with(gw, &token, "gpt-4o-mini").await).await;
            assert_eq!(
                (status, code.as_str()),
                (401, "invalid_api_key"),
                "{message}"
            );
            assert!(!message.contains(&token[..20]), "the token is never echoed");
            message
        }
    };

    // Made by the provider's own keys, for every algorithm: accepted as a baseline.
    for alg in ["RS256", "ES256", "EdDSA"] {
        let token = provider.mint(alg, provider.claims("mallory", "research"));
        assert_eq!(
            chat_with(&gw, &token, "gpt-4o-mini").await.status(),
            200,
            "{alg}"
        );
    }

    let mut expired = provider.claims("mallory", "research");
    expired["exp"] = json!(now - 3600);
    assert!(
        refused(provider.mint("RS256", expired))
            .await
            .contains("expired")
    );

    let mut early = provider.claims("mallory", "research");
    early["nbf"] = json!(now + 3600);
    assert!(
        refused(provider.mint("ES256", early))
            .await
            .contains("not valid yet")
    );

    // A real token from the provider, for another audience.
    let foreign = provider.token("alice", Some("urn:another-service")).await;
    assert!(refused(foreign).await.contains("aud"));

    let mut elsewhere = provider.claims("mallory", "research");
    elsewhere["iss"] = json!("https://idp.example.com");
    assert!(
        refused(provider.mint("EdDSA", elsewhere))
            .await
            .contains("issuer")
    );

    // A real token with its signature changed.
    let real = provider.token("alice", None).await;
    let (body, signature) = real.rsplit_once('.').unwrap();
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    let forged = format!("{body}.{flipped}{}", &signature[1..]);
    assert!(refused(forged).await.contains("signature"));

    // Its claims changed (another team), signature kept.
    let (header, _) = body.split_once('.').unwrap();
    let b64 = |v: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let tampered = format!(
        "{header}.{}.{signature}",
        b64(&provider.claims("alice", "thrifty"))
    );
    assert!(refused(tampered).await.contains("signature"));

    // `alg: none`, with and without the key id of a real key.
    let (rsa_kid, _, _, rsa_public) = provider.keys.iter().find(|k| k.1 == "RS256").unwrap();
    let claims = b64(&provider.claims("mallory", "research"));
    for header in [
        json!({"alg": "none"}),
        json!({"alg": "none", "kid": rsa_kid}),
    ] {
        refused(format!("{}.{claims}.", b64(&header))).await;
    }

    // HS256 with the RSA public key as the HMAC secret (the classic key-confusion attack).
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some(rsa_kid.clone());
    let confused = jsonwebtoken::encode(
        &hs,
        &provider.claims("mallory", "research"),
        &EncodingKey::from_secret(rsa_public.as_bytes()),
    )
    .unwrap();
    assert!(refused(confused).await.contains("algorithm"));

    // A key id nobody publishes: the gateway asks the provider again, then refuses.
    let mut stranger = Header::new(Algorithm::RS256);
    stranger.kid = Some("no-such-key".into());
    let (_, _, pem, _) = provider.keys.iter().find(|k| k.1 == "RS256").unwrap();
    let unknown = jsonwebtoken::encode(
        &stranger,
        &provider.claims("mallory", "research"),
        &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap();
    assert!(refused(unknown).await.contains("no trusted issuer"));
}

#[tokio::test]
async fn rotated_keys_are_fetched_and_held_keys_outlive_an_outage() {
    let Some(mut provider) = OidcProvider::start().await else {
        return;
    };
    let gw = gateway_for(&provider, 1000).await;
    let before = provider.token("erin", None).await;

    // The provider rotates: its tokens now name a key id the gateway has not seen.
    provider.stop().await;
    provider.spawn(true).await;
    let after = provider.token("erin", None).await;
    let kid = |t: &str| jsonwebtoken::decode_header(t).unwrap().kid.unwrap();
    assert_ne!(
        kid(&before),
        kid(&after),
        "the provider signs with a new key"
    );
    let resp = chat_with(&gw, &after, "gpt-4o-mini").await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    // The old key is still published, so tokens made before the rotation still work.
    assert_eq!(chat_with(&gw, &before, "gpt-4o-mini").await.status(), 200);

    // The provider goes away: the keys held keep working, unknown ones are refused quickly.
    let minted = provider.mint("ES256", provider.claims("erin", "research"));
    provider.stop().await;
    assert_eq!(chat_with(&gw, &after, "gpt-4o-mini").await.status(), 200);
    assert_eq!(chat_with(&gw, &minted, "gpt-4o-mini").await.status(), 200);
    let mut stranger = Header::new(Algorithm::ES256);
    stranger.kid = Some("rotated-away".into());
    let (_, _, pem, _) = provider.keys.iter().find(|k| k.1 == "ES256").unwrap();
    let unknown = jsonwebtoken::encode(
        &stranger,
        &provider.claims("erin", "research"),
        &EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let (status, _, _) = refusal(chat_with(&gw, &unknown, "gpt-4o-mini").await).await;
    assert_eq!(status, 401);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(chat_with(&gw, &after, "gpt-4o-mini").await.status(), 200);

    // The provider comes back having withdrawn every older key: once the gateway fetches the
    // keys again (a token with the newest key id makes it), tokens of withdrawn keys stop working,
    // though they were accepted a moment ago.
    provider.spawn_with(true, true).await;
    let newest = provider.token("erin", None).await;
    tokio::time::sleep(Duration::from_millis(150)).await; // the refresh gap
    assert_eq!(chat_with(&gw, &newest, "gpt-4o-mini").await.status(), 200);
    let (status, message, _) = refusal(chat_with(&gw, &after, "gpt-4o-mini").await).await;
    assert_eq!(status, 401, "{message}");
    assert!(message.contains("no trusted issuer"), "{message}");
}

/// A browser without JavaScript: follows redirects itself and keeps cookies by name (the gateway's
/// and the provider's names differ; both run on 127.0.0.1).
pub struct Browser {
    http: reqwest::Client,
    pub cookies: std::collections::HashMap<String, String>,
}

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

impl Browser {
    pub fn new() -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: Default::default(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let resp = request
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        for set in resp.headers().get_all("set-cookie") {
            let set = set.to_str().unwrap();
            let (pair, attributes) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty()
                || attributes.contains("Max-Age=0")
                || attributes.contains("max-age=0")
            {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        Page {
            status: resp.status().as_u16(),
            location: resp
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_string()),
            body: resp.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, url: &str) -> Page {
        let request = self.http.get(url);
        self.send(request).await
    }

    pub async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Page {
        let request = self.http.post(url).form(form);
        self.send(request).await
    }

    /// Signs in as `login` through the provider's pages; the gateway's answer to the callback.
    pub async fn sign_in(&mut self, gateway: &str, login: &str) -> Page {
        let mut url = format!("{gateway}/login/oidc");
        for _ in 0..12 {
            let page = self.get(&url).await;
            let next = if url.starts_with(&format!("{gateway}/login/oidc/callback")) {
                return page;
            } else if let Some(location) = &page.location {
                location.clone()
            } else {
                let action = page
                    .body
                    .split("action=\"")
                    .nth(1)
                    .and_then(|a| a.split('"').next())
                    .unwrap_or_else(|| panic!("a form at {url}: {}", page.body));
                let action = reqwest::Url::parse(&url).unwrap().join(action).unwrap();
                let answer = if page.body.contains("name=\"login\"") {
                    self.post(
                        action.as_str(),
                        &[("prompt", "login"), ("login", login), ("password", "any")],
                    )
                    .await
                } else {
                    self.post(action.as_str(), &[("prompt", "consent")]).await
                };
                answer
                    .location
                    .expect("the provider redirects after a form")
            };
            url = reqwest::Url::parse(&url)
                .unwrap()
                .join(&next)
                .unwrap()
                .to_string();
        }
        panic!("the sign-in did not come back to the gateway");
    }
}

#[tokio::test]
async fn console_users_sign_in_through_the_provider_with_their_role() {
    let port = free_port();
    let gateway = format!("http://127.0.0.1:{port}");
    let Some(provider) =
        OidcProvider::start_for(Some(format!("{gateway}/login/oidc/callback"))).await
    else {
        return;
    };
    let toml = format!(
        "[auth.oidc]\nissuer = \"{}\"\nclient_id = \"console\"\nredirect_url = \"{gateway}/login/oidc/callback\"\nname = \"Test <IdP>\"\n",
        provider.issuer
    );
    let mock = llm_bridge_mock::MockUpstream::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let file = data_dir.path().join("config.toml");
    std::fs::write(&file, toml).unwrap();
    let mut env = mock_env(&mock);
    env.insert("LLM_BRIDGE_MASTER_KEY".into(), MASTER.into());
    env.insert(
        "LLM_BRIDGE_OIDC_CLIENT_SECRET".into(),
        CONSOLE_SECRET.into(),
    );
    let cli = llm_bridge::config::CliOverrides {
        config_file: Some(file),
        ..Default::default()
    };
    let (config, _) = llm_bridge::config::Config::load(&cli, &env).unwrap();
    let gw = TestGateway::serve_at(config, mock, data_dir, &format!("127.0.0.1:{port}")).await;

    // The login page offers the provider, its name escaped.
    let login = gw.get("/login").send().await.unwrap().text().await.unwrap();
    assert!(login.contains("Sign in with Test &lt;IdP&gt;"), "{login}");

    // An admin: the session opens every page and server function.
    let mut ann = Browser::new();
    let back = ann.sign_in(&gateway, "ann").await;
    assert_eq!(
        (back.status, back.location.as_deref()),
        (303, Some("/")),
        "{}",
        back.body
    );
    assert!(ann.cookies.contains_key("llmb_session"));
    assert!(
        !ann.cookies.contains_key("llmb_oidc"),
        "the sign-in cookie is cleared"
    );
    assert_eq!(ann.get(&format!("{gateway}/keys")).await.status, 200);
    let keys = ann
        .post(&format!("{gateway}/console/fn/get_keys"), &[])
        .await;
    assert_eq!(keys.status, 200, "{}", keys.body);

    // A viewer: dashboards yes; the Keys page, its server functions and the API no.
    let mut vic = Browser::new();
    assert_eq!(vic.sign_in(&gateway, "vic").await.status, 303);
    assert_eq!(vic.get(&format!("{gateway}/")).await.status, 200);
    assert_eq!(vic.get(&format!("{gateway}/requests")).await.status, 200);
    let page = vic.get(&format!("{gateway}/keys")).await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains("your role is viewer"));
    let keys = vic
        .post(&format!("{gateway}/console/fn/get_keys"), &[])
        .await;
    assert!(
        keys.status >= 400 && keys.body.contains("viewer"),
        "{} {}",
        keys.status,
        keys.body
    );
    let api = vic.get(&format!("{gateway}/api/keys")).await;
    assert_eq!(api.status, 403, "{}", api.body);

    // No role from the provider: no session.
    let mut nora = Browser::new();
    let back = nora.sign_in(&gateway, "nora").await;
    assert_eq!(back.status, 401);
    assert!(!nora.cookies.contains_key("llmb_session"));

    // A callback this browser did not start, or whose state or cookie was changed, is refused.
    let mut eve = Browser::new();
    let callback = format!("{gateway}/login/oidc/callback?code=abc&state=xyz");
    let page = eve.get(&callback).await;
    assert_eq!(page.status, 401);
    assert!(
        page.body.contains("expired or was started elsewhere"),
        "{}",
        page.body
    );
    eve.get(&format!("{gateway}/login/oidc")).await;
    let page = eve.get(&callback).await;
    assert_eq!(page.status, 401);
    assert!(page.body.contains("does not match"), "{}", page.body);
    eve.get(&format!("{gateway}/login/oidc")).await;
    let cookie = eve.cookies.get_mut("llmb_oidc").unwrap();
    let last = if cookie.ends_with('0') { "1" } else { "0" };
    let forged = format!("{}{last}", &cookie[..cookie.len() - 1]);
    *cookie = forged;
    let page = eve.get(&callback).await;
    assert!(
        page.body.contains("expired or was started elsewhere"),
        "{}",
        page.body
    );
    assert!(!eve.cookies.contains_key("llmb_session"));
}

/// Three gateway processes on one Redis: the team's rpm is one limit across them, and its budget,
/// spent on one replica, is refused on the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_budget_and_rpm_hold_across_three_replicas() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let Some(provider) = OidcProvider::start().await else {
        return;
    };
    let mock = llm_bridge_mock::MockUpstream::start().await;
    const RPM: u64 = 30;
    let mut gws = Vec::new();
    for _ in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "[auth.jwt]\n[[auth.jwt.issuers]]\nissuer = \"{}\"\naudiences = [\"{AUDIENCE}\"]\n\n\
                 [[teams]]\nname = \"research\"\nrpm = {RPM}\n\n\
                 [[teams]]\nname = \"thrifty\"\nbudget_usd = 0.000001\nbudget_period = \"month\"\n",
                provider.issuer
            ),
        )
        .unwrap();
        let env = [
            ("REDIS_URL", redis.url()),
            ("LLM_BRIDGE_MASTER_KEY", MASTER.to_string()),
            ("OPENAI_API_KEY", OPENAI_KEY.to_string()),
            ("OPENAI_BASE_URL", format!("{}/v1", mock.url())),
            ("LLM_BRIDGE_CONFIG", config.display().to_string()),
        ];
        let gw = Running::start(dir.path(), &env).await;
        gws.push((gw, dir));
    }
    let urls: Vec<String> = gws.iter().map(|(g, _)| g.url.clone()).collect();
    let http = reqwest::Client::new();
    let client = http.clone();
    let chat = move |url: String, token: String| {
        let http = client.clone();
        async move {
            http.post(format!("{url}/v1/chat/completions"))
                .bearer_auth(token)
                .json(&hello("gpt-4o-mini"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // Every replica has the provider's keys before the count starts (a refused token is not
    // admitted, so it does not count).
    let tokens = [
        provider.token("alice", None).await,
        provider.token("erin", None).await,
        provider.token("eddy", None).await,
    ];
    for url in &urls {
        poll_until("the replica holds the issuer's keys", || {
            let (url, token) = (url.clone(), tokens[0].clone());
            let http = http.clone();
            async move {
                let status = http
                    .get(format!("{url}/v1/models"))
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap()
                    .status();
                (status == 200).then_some(())
            }
        })
        .await;
    }

    // Three members, each on its own replica, twice the team's rpm between them.
    let mut tasks = Vec::new();
    for (url, token) in urls.iter().zip(&tokens) {
        let (url, token) = (url.clone(), token.clone());
        let chat = chat.clone();
        tasks.push(tokio::spawn(async move {
            let mut ok = 0;
            for _ in 0..(2 * RPM / 3) {
                match chat(url.clone(), token.clone()).await {
                    200 => ok += 1,
                    429 => {}
                    other => panic!("unexpected status {other}"),
                }
            }
            ok
        }));
    }
    let mut admitted = 0;
    for t in tasks {
        admitted += t.await.unwrap();
    }
    // The bucket refills one request every 2 s while the requests run (well under a second).
    assert!(
        (RPM..=RPM + 1).contains(&admitted),
        "{admitted} admitted for a team rpm of {RPM}"
    );

    // The thrifty team spends its budget on the first replica; the others refuse it soon after.
    let tom = provider.token("tom", None).await;
    assert_eq!(chat(urls[0].clone(), tom.clone()).await, 200);
    for url in &urls[1..] {
        let status = poll_until("the other replica sees the team's spend", || {
            let (url, tom) = (url.clone(), tom.clone());
            let chat = chat.clone();
            async move {
                let status = chat(url, tom).await;
                (status == 429).then_some(status)
            }
        })
        .await;
        assert_eq!(status, 429);
    }

    // A team created on one replica serves on the others within about a second.
    let loner = provider.token("loner", None).await;
    assert_eq!(chat(urls[2].clone(), loner.clone()).await, 403);
    let created = http
        .post(format!("{}/api/teams", urls[0]))
        .bearer_auth(MASTER)
        .json(&json!({"name": "ops", "members": ["loner"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    for url in &urls[1..] {
        poll_until("the other replica knows the new team", || {
            let (url, loner) = (url.clone(), loner.clone());
            let chat = chat.clone();
            async move { (chat(url, loner).await == 200).then_some(()) }
        })
        .await;
    }
}

#[tokio::test]
async fn teams_are_managed_through_the_api_and_bind_members_and_keys() {
    let Some(provider) = OidcProvider::start().await else {
        return;
    };
    let gw = gateway_for(&provider, 1000).await;
    let send = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut request = gw
            .http
            .request(method, format!("{}{path}", gw.url))
            .bearer_auth(MASTER);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let resp = request.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    use reqwest::Method;

    // The configured teams are listed, marked as such, and cannot be changed here.
    let (status, list) = send(Method::GET, "/api/teams", None).await;
    assert_eq!(status, 200);
    let research = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "research")
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(research["source"], "config");
    let (status, err) = send(
        Method::POST,
        "/api/teams",
        Some(json!({"name": "research"})),
    )
    .await;
    assert_eq!(
        (status, &err["error"]["code"]),
        (409, &json!("team_in_configuration"))
    );
    let (status, _) = send(Method::DELETE, "/api/teams/research", None).await;
    assert_eq!(status, 409);

    // Bad input gets a clear error.
    let (status, err) = send(Method::POST, "/api/teams", Some(json!({"name": "a b"}))).await;
    assert_eq!(status, 400, "{err}");
    assert!(
        err["error"]["message"].as_str().unwrap().contains("name"),
        "{err}"
    );
    let (status, _) = send(
        Method::POST,
        "/api/teams",
        Some(json!({"name": "x", "rpm": 0})),
    )
    .await;
    assert_eq!(status, 400);

    // A team made here: a token that names no team acts as the team listing its user.
    let loner = provider.token("loner", None).await;
    assert_eq!(chat_with(&gw, &loner, "gpt-4o-mini").await.status(), 403);
    let (status, created) = send(
        Method::POST,
        "/api/teams",
        Some(json!({"name": "platform", "members": ["loner"], "models": ["gpt-4o-mini"]})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["source"], "api");
    let (status, _) = send(
        Method::POST,
        "/api/teams",
        Some(json!({"name": "platform"})),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(chat_with(&gw, &loner, "gpt-4o-mini").await.status(), 200);
    assert_eq!(chat_with(&gw, &loner, "gpt-4o").await.status(), 403);

    // A virtual key in the team: the team's models apply to it, and its requests count for it.
    let (status, key) = send(
        Method::POST,
        "/api/keys",
        Some(json!({"name": "ci", "team": "platform"})),
    )
    .await;
    assert_eq!(status, 201, "{key}");
    let secret = key["key"].as_str().unwrap().to_string();
    assert_eq!(chat_with(&gw, &secret, "gpt-4o").await.status(), 403);
    assert_eq!(chat_with(&gw, &secret, "gpt-4o-mini").await.status(), 200);
    poll_until("the key's request recorded for its team", || async {
        let log: Value = gw.master_json("/api/requests").await;
        log.as_array()?
            .iter()
            .any(|r| r["team"] == "platform" && r["client_key"] == key["id"])
            .then_some(())
    })
    .await;

    // Changed: all models; then deleted: the member and the key are refused again.
    let (status, changed) = send(
        Method::PUT,
        "/api/teams/platform",
        Some(json!({"name": "platform", "members": ["loner"]})),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(chat_with(&gw, &secret, "gpt-4o").await.status(), 200);
    let file = std::fs::read_to_string(gw.data_dir.path().join("teams.json")).unwrap();
    assert!(
        file.contains("platform") && file.contains("loner"),
        "{file}"
    );
    let (status, _) = send(Method::DELETE, "/api/teams/platform", None).await;
    assert_eq!(status, 200);
    let (status, _) = send(Method::GET, "/api/teams/platform", None).await;
    assert_eq!(status, 404);
    assert_eq!(chat_with(&gw, &loner, "gpt-4o-mini").await.status(), 403);
    let (status, _, code) = refusal(chat_with(&gw, &secret, "gpt-4o-mini").await).await;
    assert_eq!((status, code.as_str()), (403, "team_not_found"));
}

/// With JWT callers as the only way in, the gateway says at startup that nobody can reach the
/// console or `/api`, and it is not open: `/v1` needs a token.
#[tokio::test]
async fn a_gateway_with_only_jwt_callers_says_so_and_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "[[auth.jwt.issuers]]\nissuer = \"http://127.0.0.1:9\"\naudiences = [\"urn:llm-bridge\"]\n",
    )
    .unwrap();
    let gw = Running::start(
        dir.path(),
        &[("LLM_BRIDGE_CONFIG", config.display().to_string())],
    )
    .await;
    let http = reqwest::Client::new();
    let v1 = http
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(&hello("gpt-4o-mini"))
        .send()
        .await
        .unwrap();
    assert_eq!(v1.status(), 401);
    let api = http
        .get(format!("{}/api/keys", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 401);
    gw.terminate();
    let (_, log) = gw.wait_exit().await;
    assert!(log.contains("JWT callers are the only way in"), "{log}");
}

/// An Ed25519 signing key (PKCS#8) and its public half, for tokens made by the test itself.
const ED25519_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIFkochRKFXPpiUWlp+R72lk4jZiV7iZr3kMLOR2sDXj1\n-----END PRIVATE KEY-----\n";
const ED25519_X: &str = "WWHqSJIym_TKZRiqMdHTolVWd3E3HR75kNCtAPAsh-k";

/// A token with exactly this header and these claims, signed with [`ED25519_PEM`].
fn signed_token(header: &Value, claims: &Value) -> String {
    use base64::Engine;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let message = format!("{}.{}", b64(header), b64(claims));
    let key = EncodingKey::from_ed_pem(ED25519_PEM.as_bytes()).unwrap();
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::EdDSA).unwrap();
    format!("{message}.{signature}")
}

#[tokio::test]
async fn tokens_with_critical_header_extensions_are_refused() {
    let jwks = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1", "alg": "EdDSA", "x": ED25519_X}]});
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jwks_url = format!("http://{}/jwks", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || std::future::ready(axum::Json(jwks.clone()))),
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let issuer = "https://idp.example.com";
    let toml = format!(
        "[auth.jwt]\n[[auth.jwt.issuers]]\nissuer = \"{issuer}\"\njwks_url = \"{jwks_url}\"\naudiences = [\"{AUDIENCE}\"]\n\n[[teams]]\nname = \"research\"\n"
    );
    let gw = TestGateway::start_locked(&toml).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"iss": issuer, "aud": AUDIENCE, "sub": "carol", "team": "research", "iat": now, "exp": now + 600});
    let plain = signed_token(&json!({"alg": "EdDSA", "typ": "JWT", "kid": "k1"}), &claims);
    poll_until("the issuer's keys fetched", || async {
        (chat_with(&gw, &plain, "gpt-4o-mini").await.status() == 200).then_some(())
    })
    .await;

    for header in [
        json!({"alg": "EdDSA", "typ": "JWT", "kid": "k1", "crit": ["https://example.com/ext"], "https://example.com/ext": true}),
        json!({"alg": "EdDSA", "kid": "k1", "crit": ["exp"], "exp": now + 600}),
        json!({"alg": "EdDSA", "kid": "k1", "crit": []}),
    ] {
        let token = signed_token(&header, &claims);
        let (status, message, code) = refusal(chat_with(&gw, &token, "gpt-4o-mini").await).await;
        assert_eq!(
            (status, code.as_str()),
            (401, "invalid_api_key"),
            "{header}"
        );
        assert!(message.contains("crit"), "{message}");
    }
    assert_eq!(chat_with(&gw, &plain, "gpt-4o-mini").await.status(), 200);
    server.abort();
}
