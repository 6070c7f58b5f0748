//! The server's connection handling on in-memory streams, with tokio's paused clock: the
//! deadlines, the held connection of the #816 wedge, pipelining and `100 Continue`.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::time::Instant;

use super::*;
use crate::vmm::chapi::hooks::{HookFuture, NoHooks};
use crate::vmm::chapi::state::Event;

const CONFIG: &str = r#"{"payload":{"kernel":"/k"},"vsock":{"cid":3,"socket":"/run/v.sock"}}"#;

/// One connection to a server core, over an in-memory stream.
struct Conn {
    io: DuplexStream,
    decoder: HttpDecoder,
    buf: BytesMut,
    task: tokio::task::JoinHandle<()>,
}

fn connect(shared: &Arc<Shared>) -> Conn {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let task = tokio::spawn(serve_connection(
        Connected::new(server, "test", "test"),
        shared.clone(),
    ));
    Conn {
        io: client,
        decoder: HttpDecoder::new(HttpKind::Response),
        buf: BytesMut::new(),
        task,
    }
}

fn server(config: ServerConfig, hooks: Arc<dyn ChApiHooks>) -> Arc<Shared> {
    Shared::new(config, hooks)
}

fn request(method: &str, endpoint: &str, body: &str) -> String {
    format!(
        "{method} /api/v1/{endpoint} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

impl Conn {
    async fn send(&mut self, bytes: &str) {
        self.io.write_all(bytes.as_bytes()).await.expect("write");
    }

    /// The next response (status, body), or `None` at end of stream.
    async fn response(&mut self) -> Option<(u16, String)> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buf) {
                let HttpMessage::Response { status, body, .. } = frame.expect("a response").message
                else {
                    panic!("not a response");
                };
                return Some((status, String::from_utf8_lossy(&body).to_string()));
            }
            if self.io.read_buf(&mut self.buf).await.expect("read") == 0 {
                return None;
            }
        }
    }

    async fn call(&mut self, method: &str, endpoint: &str, body: &str) -> (u16, String) {
        self.send(&request(method, endpoint, body)).await;
        self.response().await.expect("a response")
    }
}

#[tokio::test(start_paused = true)]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let shared = server(ServerConfig::new("/unused"), Arc::new(NoHooks));
    let mut c = connect(&shared);
    assert_eq!(c.call("GET", "vmm.ping", "").await.0, 200);
    let start = Instant::now();
    assert_eq!(c.response().await, None);
    assert_eq!(start.elapsed(), Duration::from_secs(300));
}

#[tokio::test(start_paused = true)]
async fn a_request_that_stalls_is_dropped_after_the_request_timeout() {
    let shared = server(ServerConfig::new("/unused"), Arc::new(NoHooks));
    let mut c = connect(&shared);
    let start = Instant::now();
    c.send("PUT /api/v1/vm.create HTTP/1.1\r\nContent-Length: 10\r\n\r\n{\"pa")
        .await;
    assert_eq!(c.response().await, None);
    assert_eq!(start.elapsed(), Duration::from_secs(10));
}

/// Hooks whose `vsock_up` never answers.
struct Deaf;

impl ChApiHooks for Deaf {
    fn on_event(&self, event: &Event) -> HookFuture<'_> {
        if matches!(event, Event::VsockUp { .. }) {
            Box::pin(std::future::pending())
        } else {
            Box::pin(std::future::ready(Ok(())))
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_hook_that_never_answers_fails_the_request_at_the_hook_deadline() {
    let shared = server(ServerConfig::new("/unused"), Arc::new(Deaf));
    let mut c = connect(&shared);
    assert_eq!(c.call("PUT", "vm.create", CONFIG).await.0, 204);
    let start = Instant::now();
    let (status, body) = c.call("PUT", "vm.boot", "").await;
    assert_eq!(start.elapsed(), Duration::from_secs(10));
    assert_eq!(status, 500);
    assert_eq!(
        body,
        r#"["Error from API","The VM could not boot","the vsock_up hook did not answer within 10000 ms"]"#
    );
    assert_eq!(shared.core.lock().await.state(), Some(VmState::Created));
}

#[tokio::test(start_paused = true)]
async fn a_wedged_connection_is_held_past_every_deadline_until_the_server_stops() {
    let mut config = ServerConfig::new("/unused");
    config.api.shutdown_wedge = true;
    let shared = server(config, Arc::new(NoHooks));
    let mut c = connect(&shared);
    for (endpoint, body) in [("vm.create", CONFIG), ("vm.boot", ""), ("vm.pause", "")] {
        assert_eq!(c.call("PUT", endpoint, body).await.0, 204, "{endpoint}");
    }
    c.send(&request("PUT", "vmm.shutdown", "")).await;
    let mut other = connect(&shared);
    other.send(&request("GET", "vmm.ping", "")).await;
    // An hour later, still no answer and still open.
    let silent = tokio::time::timeout(Duration::from_secs(3600), c.response()).await;
    assert!(silent.is_err(), "answered: {silent:?}");
    let silent = tokio::time::timeout(Duration::from_secs(1), other.response()).await;
    assert!(silent.is_err(), "answered: {silent:?}");
    assert!(shared.wedged.is_cancelled());
    assert!(!c.task.is_finished());
    shared.stop.cancel();
    assert_eq!(c.response().await, None);
    assert_eq!(other.response().await, None);
}

#[tokio::test(start_paused = true)]
async fn pipelined_requests_are_answered_in_order() {
    let shared = server(ServerConfig::new("/unused"), Arc::new(NoHooks));
    let mut c = connect(&shared);
    let batch = [
        request("PUT", "vm.create", CONFIG),
        request("PUT", "vm.boot", ""),
        request("PUT", "vm.boot", ""),
        request("GET", "vm.info", ""),
    ]
    .concat();
    c.send(&batch).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(c.response().await.expect("a response").0);
    }
    assert_eq!(statuses, [204, 204, 500, 200]);
}

#[tokio::test(start_paused = true)]
async fn expect_100_continue_is_answered_before_the_body_is_sent() {
    let shared = server(ServerConfig::new("/unused"), Arc::new(NoHooks));
    let mut c = connect(&shared);
    c.send(&format!(
        "PUT /api/v1/vm.create HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        CONFIG.len()
    ))
    .await;
    assert_eq!(c.response().await, Some((100, String::new())));
    c.send(CONFIG).await;
    assert_eq!(c.response().await, Some((204, String::new())));
}

#[tokio::test(start_paused = true)]
async fn a_connection_close_request_is_answered_then_closed() {
    let shared = server(ServerConfig::new("/unused"), Arc::new(NoHooks));
    let mut c = connect(&shared);
    c.send("GET /api/v1/vmm.ping HTTP/1.1\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(c.response().await.map(|r| r.0), Some(200));
    assert_eq!(c.response().await, None);
}

#[test]
fn continue_is_wanted_only_for_a_missing_body() {
    let head =
        "PUT /api/v1/vm.create HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n";
    assert!(wants_continue(head.as_bytes()));
    assert!(!wants_continue(format!("{head}{{}}xx").as_bytes()));
    assert!(!wants_continue(&head.as_bytes()[..20]));
    let plain = "PUT /api/v1/vm.create HTTP/1.1\r\nContent-Length: 4\r\n\r\n";
    assert!(!wants_continue(plain.as_bytes()));
}
