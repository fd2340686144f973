//! The client that carries requests upstream: hyper's pooled HTTP/1.1 and HTTP/2 client over
//! rustls (ALPN picks the version), with `TCP_NODELAY`, a connect timeout, and the proxies of
//! `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` / `NO_PROXY` as curl reads them.
//!
//! Nothing else is in the way: no redirects are followed (an upstream's redirect is its reply),
//! nothing is retried here (failover decides), and the timeouts after the connect (first byte,
//! silence, total) are kept by the gateway around the request and its body.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::header::{ACCEPT, PROXY_AUTHORIZATION, USER_AGENT};
use axum::http::uri::Scheme;
use axum::http::{HeaderMap, HeaderValue, Method, Request, Uri};
use bytes::Bytes;
use http_body_util::{BodyDataStream, Full};
use hyper::body::Incoming;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_rustls::{ConfigBuilderExt, HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tower_service::Service;

pub type Response = hyper::Response<Incoming>;
pub type Error = hyper_util::client::legacy::Error;
/// An upstream body, chunk by chunk.
pub type BodyStream = BodyDataStream<Incoming>;

const USER_AGENT_VALUE: HeaderValue =
    HeaderValue::from_static(concat!("llm-bridge/", env!("CARGO_PKG_VERSION")));
const ANY: HeaderValue = HeaderValue::from_static("*/*");

#[derive(Clone)]
pub struct Client {
    inner: hyper_util::client::legacy::Client<Connector, Full<Bytes>>,
    proxies: Option<Arc<Matcher>>,
}

impl Client {
    /// `proxies`: `None` connects directly; see [`proxies_from_env`].
    pub fn new(connect_timeout: Duration, proxies: Option<Matcher>) -> Result<Client, String> {
        let mut tcp = HttpConnector::new();
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(connect_timeout));
        tcp.enforce_http(false);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot set up TLS: {e}"))?
            .with_webpki_roots()
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let proxies = proxies.map(Arc::new);
        let connector = Connector {
            tcp: Tcp(tcp),
            tls: Arc::new(tls),
            proxies: proxies.clone(),
        };
        let inner = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        Ok(Client { inner, proxies })
    }

    /// Sends a POST; `headers` are sent as given, with the gateway's `user-agent` and `accept`
    /// where they are missing.
    pub fn post(
        &self,
        uri: Uri,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> impl Future<Output = Result<Response, Error>> + Send + 'static {
        headers.entry(USER_AGENT).or_insert(USER_AGENT_VALUE);
        headers.entry(ACCEPT).or_insert(ANY);
        if let Some(auth) = self.plain_proxy_auth(&uri) {
            headers.insert(PROXY_AUTHORIZATION, auth);
        }
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        self.inner.request(request)
    }

    /// A plain-HTTP request through a proxy carries the proxy's credentials itself; an HTTPS one
    /// sends them with its `CONNECT`.
    fn plain_proxy_auth(&self, uri: &Uri) -> Option<HeaderValue> {
        if uri.scheme() != Some(&Scheme::HTTP) {
            return None;
        }
        let intercept = self.proxies.as_ref()?.intercept(uri)?;
        intercept.basic_auth().cloned()
    }
}

/// The proxies the environment names, or `None` when it names none (the common case, which then
/// costs nothing per request).
pub fn proxies_from_env() -> Option<Matcher> {
    const NAMES: [&str; 6] = [
        "ALL_PROXY",
        "all_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
    ];
    NAMES
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
        .then(Matcher::from_env)
}

/// The body of a reply, chunk by chunk (trailers are dropped).
pub fn body_stream(response: Response) -> BodyStream {
    BodyDataStream::new(response.into_body())
}

/// Whether a send failed by a timeout (the connect's, as the rest are kept outside).
pub fn is_timeout(e: &Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>()
            && io.kind() == io::ErrorKind::TimedOut
        {
            return true;
        }
        source = s.source();
    }
    false
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Connects directly, or through the proxy the destination's scheme calls for: an HTTPS
/// destination through a `CONNECT` tunnel, a plain one by sending the request to the proxy.
#[derive(Clone)]
struct Connector {
    tcp: Tcp,
    tls: Arc<rustls::ClientConfig>,
    proxies: Option<Arc<Matcher>>,
}

impl Service<Uri> for Connector {
    type Response = MaybeHttpsStream<TcpIo>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let proxy = self.proxies.as_ref().and_then(|m| m.intercept(&dst));
        let (mut tcp, tls) = (self.tcp.clone(), self.tls.clone());
        Box::pin(async move {
            let Some(proxy) = proxy else {
                return HttpsConnector::from((tcp, tls)).call(dst).await;
            };
            if dst.scheme() == Some(&Scheme::HTTPS) {
                let mut tunnel = Tunnel::new(proxy.uri().clone(), tcp);
                if let Some(auth) = proxy.basic_auth() {
                    tunnel = tunnel.with_auth(auth.clone());
                }
                return HttpsConnector::from((tunnel, tls)).call(dst).await;
            }
            let mut io = tcp.call(proxy.uri().clone()).await?;
            io.via_proxy = true;
            Ok(MaybeHttpsStream::Http(io))
        })
    }
}

/// TCP connections, marked when they lead to a proxy (the request line then names the whole URL).
#[derive(Clone)]
struct Tcp(HttpConnector);

impl Service<Uri> for Tcp {
    type Response = TcpIo;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<TcpIo, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.0.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let connecting = self.0.call(dst);
        Box::pin(async move {
            Ok(TcpIo {
                io: connecting.await?,
                via_proxy: false,
            })
        })
    }
}

pub struct TcpIo {
    io: TokioIo<TcpStream>,
    via_proxy: bool,
}

impl Connection for TcpIo {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.via_proxy)
    }
}

impl Read for TcpIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl Write for TcpIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A proxy that records the head of the first request it gets and answers it with `reply`.
    async fn proxy(reply: &'static [u8]) -> (String, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let seen = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = socket.read(&mut buf).await.unwrap();
                assert!(n > 0, "the client hung up before its request's head");
                head.extend_from_slice(&buf[..n]);
            }
            socket.write_all(reply).await.unwrap();
            String::from_utf8(head).unwrap()
        });
        (addr, seen)
    }

    fn through(matcher: Matcher) -> Client {
        Client::new(Duration::from_secs(2), Some(matcher)).unwrap()
    }

    #[tokio::test]
    async fn a_plain_request_goes_to_the_proxy_whole_with_its_credentials() {
        let (addr, seen) =
            proxy(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}").await;
        let with_auth = addr.replace("http://", "http://user:pa%20ss@");
        let client = through(Matcher::builder().http(with_auth).build());
        let uri: Uri = "http://upstream.invalid:8080/v1/chat/completions"
            .parse()
            .unwrap();
        let response = client.post(uri, HeaderMap::new(), Bytes::from_static(b"{}"));
        let response = tokio::time::timeout(Duration::from_secs(5), response)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(response.status(), 200);
        let head = seen.await.unwrap().to_ascii_lowercase();
        assert!(
            head.starts_with("post http://upstream.invalid:8080/v1/chat/completions http/1.1\r\n"),
            "{head}"
        );
        // user:pa ss
        assert!(
            head.contains("proxy-authorization: basic dxnlcjpwysbzcw=="),
            "{head}"
        );
    }

    #[tokio::test]
    async fn an_https_request_tunnels_through_the_proxy() {
        // The proxy refuses the tunnel: the request fails, having asked the proxy only.
        let (addr, seen) = proxy(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n").await;
        let client = through(Matcher::builder().https(addr).build());
        let uri: Uri = "https://api.upstream.invalid/v1/messages".parse().unwrap();
        let sent = client.post(uri, HeaderMap::new(), Bytes::from_static(b"{}"));
        let result = tokio::time::timeout(Duration::from_secs(5), sent)
            .await
            .unwrap();
        assert!(result.unwrap_err().is_connect());
        let head = seen.await.unwrap();
        assert!(
            head.starts_with("CONNECT api.upstream.invalid:443 HTTP/1.1\r\n"),
            "{head}"
        );
    }

    #[tokio::test]
    async fn an_https_url_is_reached_over_tls_naming_its_host_and_offering_http2() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hello = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = socket.read(&mut buf).await.unwrap();
            buf.truncate(n);
            buf
        });
        let client = Client::new(Duration::from_secs(2), None).unwrap();
        let uri: Uri = format!("https://localhost:{port}/v1/x").parse().unwrap();
        let sent = client.post(uri, HeaderMap::new(), Bytes::from_static(b"{}"));
        let result = tokio::time::timeout(Duration::from_secs(5), sent)
            .await
            .unwrap();
        assert!(result.is_err(), "the listener never answers the handshake");
        let hello = hello.await.unwrap();
        // A TLS handshake record (ClientHello), not the request in the clear.
        assert_eq!(hello[0], 0x16, "{hello:?}");
        assert_eq!(hello[5], 0x01, "{hello:?}");
        assert!(!hello.windows(4).any(|w| w == b"POST"));
        let has = |needle: &[u8]| hello.windows(needle.len()).any(|w| w == needle);
        assert!(has(b"localhost"), "server name indication");
        assert!(
            has(b"\x02h2") && has(b"\x08http/1.1"),
            "ALPN offers h2 and http/1.1"
        );
    }

    #[tokio::test]
    async fn hosts_named_by_no_proxy_are_reached_directly() {
        let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = upstream.local_addr().unwrap().port();
        let direct = tokio::spawn(async move {
            let (mut socket, _) = upstream.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let n = socket.read(&mut buf).await.unwrap();
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        let matcher = Matcher::builder()
            .http("http://127.0.0.1:9".to_string())
            .no("127.0.0.1")
            .build();
        let uri: Uri = format!("http://127.0.0.1:{port}/v1/x").parse().unwrap();
        let sent = through(matcher).post(uri, HeaderMap::new(), Bytes::new());
        let response = tokio::time::timeout(Duration::from_secs(5), sent)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(response.status(), 200);
        let head = direct.await.unwrap();
        assert!(head.starts_with("POST /v1/x HTTP/1.1\r\n"), "{head}");
        assert!(head.contains("user-agent: llm-bridge/"), "{head}");
    }
}
