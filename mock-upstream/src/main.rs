//! Runs the mock upstream on its own: `mock_upstream [ADDR]` (default 127.0.0.1:0; the bound
//! address is printed). Used by the end2end tests and handy for trying the gateway without keys.

#![forbid(unsafe_code)]

use llm_bridge_mock::MockUpstream;

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let addr = addr.parse().expect("an address like 127.0.0.1:9000");
    let mock = MockUpstream::start_on(addr, false).await;
    println!("mock upstream listening on {}", mock.url());
    mock.wait().await;
}
