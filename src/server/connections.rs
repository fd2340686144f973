//! Client connections: accepted up to a cap, served by hyper (HTTP/1.1 and HTTP/2), and closed when
//! a client is too slow to send its request's headers or stays idle too long. The replies hyper
//! writes by itself to HTTP/1.1 requests it cannot parse (400, 414, 431) get a JSON body in
//! OpenAI's error shape on their way out. Slow request bodies are cut by the router's body timeout
//! (see [`super::router`]).
//!
//! Each connection carries a small [`Activity`] record: the socket wrapper notes when bytes
//! arrive, the service wrapper notes when a request starts and when its reply has been sent, and a
//! watchdog task per connection closes it when a deadline passes.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::AbortHandle;
use tower_service::Service;

use crate::config::ServerConfig;

/// Headers hyper parses per request at most (past it, hyper answers 431 itself, and
/// [`TrackedStream`] gives that reply its JSON body). The gateway's own limit is lower
/// (`api::hardening::MAX_HEADERS`). Kept small: hyper allocates room for this many headers for
/// every request it parses.
const PARSED_HEADERS: usize = 128;

/// How long a client may take, and how many may be connected at once.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl ConnectionLimits {
    pub fn from_config(config: &ServerConfig) -> ConnectionLimits {
        ConnectionLimits {
            header_timeout: config.client_header_timeout,
            idle_timeout: config.client_idle_timeout,
            max_connections: config.max_connections,
        }
    }

    /// How often a connection's watchdog looks at it.
    fn tick(&self) -> Duration {
        (self.header_timeout.min(self.idle_timeout) / 4)
            .clamp(Duration::from_millis(20), Duration::from_secs(1))
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets open requests finish for up to
/// `drain` before returning.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // The watchdog enforces the header timeout (hyper's would also cut idle keep-alive).
        .header_read_timeout(None)
        .max_headers(PARSED_HEADERS);
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut warned_full = false;
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let full = slots.available_permits() == 0;
        if full && !warned_full {
            tracing::warn!(
                max_connections = limits.max_connections,
                "connection limit reached; new connections wait until one closes"
            );
        }
        warned_full = full;
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Without it a reply written in two pieces waits for the client's delayed ACK (~40 ms).
        let _ = tcp.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(TrackedStream {
            inner: tcp,
            activity: activity.clone(),
            replaced: Bytes::new(),
        });
        let service = ConnectionService {
            app: app.clone(),
            peer,
            activity: activity.clone(),
        };
        let builder = builder.clone();
        let conn = graceful.watch(
            builder
                .serve_connection_with_upgrades(
                    io,
                    hyper_util::service::TowerToHyperService::new(service),
                )
                .into_owned(),
        );
        let served = tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
        // The watchdog is a task of its own: in the connection's task its timer was polled at
        // every wake-up, once per event of a streamed reply.
        let served = served.abort_handle();
        tokio::spawn(async move {
            if let Some(reason) = activity.expired(limits, &served).await {
                served.abort();
                tracing::debug!(%peer, reason, "connection closed");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("drain timeout reached; closing the remaining connections");
    }
}

/// What a connection's watchdog needs to know, in milliseconds since the connection opened.
struct Activity {
    opened: Instant,
    /// Requests whose reply has not been sent completely.
    in_flight: AtomicU32,
    /// When the first byte of a request not yet dispatched arrived (`u64::MAX`: none pending).
    head_started: AtomicU64,
    /// The last byte received or the last reply finished.
    last_seen: AtomicU64,
}

const NONE_PENDING: u64 = u64::MAX;

impl Activity {
    fn new() -> Activity {
        Activity {
            opened: Instant::now(),
            in_flight: AtomicU32::new(0),
            // A new connection owes its first request's headers.
            head_started: AtomicU64::new(0),
            last_seen: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        self.opened.elapsed().as_millis() as u64
    }

    fn received(&self) {
        let now = self.now();
        self.last_seen.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Relaxed) == 0 {
            let _ = self.head_started.compare_exchange(
                NONE_PENDING,
                now,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// No request is being served: a reply head written now is hyper's own, to a request it could
    /// not parse (or the empty-bodied end of one whose body it has already dropped).
    fn serves_nothing(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0
    }

    fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_started.store(NONE_PENDING, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Resolves, naming the reason, when the connection should be closed; `None` once it has
    /// ended by itself.
    async fn expired(
        &self,
        limits: ConnectionLimits,
        served: &AbortHandle,
    ) -> Option<&'static str> {
        let header_ms = limits.header_timeout.as_millis() as u64;
        let idle_ms = limits.idle_timeout.as_millis() as u64;
        let mut tick = tokio::time::interval(limits.tick());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if served.is_finished() {
                return None;
            }
            if self.in_flight.load(Ordering::Relaxed) > 0 {
                continue;
            }
            let now = self.now();
            let head = self.head_started.load(Ordering::Relaxed);
            if head != NONE_PENDING {
                if now.saturating_sub(head) >= header_ms {
                    return Some("request headers not received in time");
                }
            } else if now.saturating_sub(self.last_seen.load(Ordering::Relaxed)) >= idle_ms {
                return Some("idle");
            }
        }
    }
}

/// A request being served; dropped when its reply has been sent (or abandoned).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        a.last_seen.store(a.now(), Ordering::Relaxed);
        a.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The socket, noting when bytes arrive, and turning hyper's own error replies into JSON.
struct TrackedStream {
    inner: TcpStream,
    activity: Arc<Activity>,
    /// A reply written in place of one of hyper's, not yet all sent.
    replaced: Bytes,
}

impl TrackedStream {
    /// Sends what is left of a replaced reply.
    fn poll_replaced(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.replaced.is_empty() {
            let n = std::task::ready!(Pin::new(&mut self.inner).poll_write(cx, &self.replaced))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            let _ = self.replaced.split_to(n);
        }
        Poll::Ready(Ok(()))
    }

    /// Writes `bytes` for hyper, or their JSON replacement when they are one of hyper's own error
    /// replies; either way they count as written.
    fn poll_write_or_replace(
        &mut self,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        std::task::ready!(self.poll_replaced(cx))?;
        let reply = if self.activity.serves_nothing() {
            json_error_reply(bytes)
        } else {
            None
        };
        match reply {
            Some(reply) => {
                self.replaced = reply;
                // Sent now as far as the socket takes it; the rest on the next write or flush.
                if let Poll::Ready(Err(e)) = self.poll_replaced(cx) {
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(Ok(bytes.len()))
            }
            None => Pin::new(&mut self.inner).poll_write(cx, bytes),
        }
    }
}

/// The most one of hyper's own error replies takes (a status line and two or three headers).
const MAX_ERROR_HEAD: usize = 1024;

/// hyper answers a request it cannot parse by itself, before the router sees it, with an empty
/// body: 400 (a malformed request line or header, conflicting framing), 414 (a URI over 64 KiB)
/// or 431 (more headers than it parses, or a head larger than its buffer). Such a reply is a
/// lone response head with `content-length: 0` and at most `date` and `connection` besides (the
/// router's replies carry more); this is the same head with a JSON body in OpenAI's error shape.
fn json_error_reply(bytes: &[u8]) -> Option<Bytes> {
    if bytes.len() > MAX_ERROR_HEAD || !bytes.ends_with(b"\r\n\r\n") {
        return None;
    }
    let head = std::str::from_utf8(bytes).ok()?;
    let status = head.strip_prefix("HTTP/1.1 ")?.get(..3)?;
    let (message, code) = match status {
        "400" => (
            "The request could not be read: its request line, a header or its framing (Content-Length, Transfer-Encoding) is malformed.",
            "invalid_request",
        ),
        "414" => ("The request URI is too long.", "uri_too_long"),
        "431" => (
            "The request has too many headers, or they are too large.",
            "headers_too_large",
        ),
        _ => return None,
    };
    let lines: Vec<&str> = head.trim_end().split("\r\n").collect();
    // hyper's reply has these headers and no others.
    let is_hypers = lines[1..].iter().all(|line| {
        let name = line.split(':').next().unwrap_or_default();
        ["content-length", "date", "connection"]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n))
    });
    let is_empty = lines
        .iter()
        .any(|l| l.eq_ignore_ascii_case("content-length: 0"));
    if !is_hypers || !is_empty {
        return None;
    }
    let body = serde_json::json!({"error": {
        "message": message,
        "type": "invalid_request_error",
        "param": null,
        "code": code,
    }})
    .to_string();
    let mut reply = String::with_capacity(head.len() + body.len() + 64);
    for line in lines {
        if line.eq_ignore_ascii_case("content-length: 0") {
            reply.push_str("content-type: application/json\r\n");
            reply.push_str(&format!("content-length: {}\r\n", body.len()));
        } else {
            reply.push_str(line);
            reply.push_str("\r\n");
        }
    }
    reply.push_str("\r\n");
    reply.push_str(&body);
    Some(Bytes::from(reply))
}

impl AsyncRead for TrackedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.received();
        }
        result
    }
}

impl AsyncWrite for TrackedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_or_replace(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        std::task::ready!(self.poll_replaced(cx))?;
        // One of hyper's own error replies is one small head, written when no request is being
        // served: only then are the pieces looked at together.
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let first = bufs.iter().find(|b| !b.is_empty());
        let last = bufs.iter().rev().find(|b| !b.is_empty());
        if total <= MAX_ERROR_HEAD
            && first.is_some_and(|b| b.starts_with(b"HTTP/1.1 4"))
            && last.is_some_and(|b| b.ends_with(b"\r\n\r\n"))
            && self.activity.serves_nothing()
        {
            let joined: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            return self.poll_write_or_replace(cx, &joined);
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_replaced(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_replaced(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The router for one connection: adds the peer's address and tracks the request until its
/// reply has been sent.
#[derive(Clone)]
struct ConnectionService {
    app: Router,
    peer: SocketAddr,
    activity: Arc<Activity>,
}

impl Service<axum::http::Request<Incoming>> for ConnectionService {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future =
        Pin<Box<dyn Future<Output = Result<axum::response::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: axum::http::Request<Incoming>) -> Self::Future {
        let in_flight = self.activity.request_started();
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let reply = self.app.call(request);
        Box::pin(async move {
            let response = reply.await?;
            Ok(response.map(|body| {
                Body::new(TrackedBody {
                    inner: body,
                    _in_flight: in_flight,
                })
            }))
        })
    }
}

/// A reply body that keeps its request counted as in flight until it is dropped.
struct TrackedBody {
    inner: Body,
    _in_flight: InFlight,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
