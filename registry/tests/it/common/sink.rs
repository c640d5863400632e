//! An HTTP receiver on loopback for what the registry sends out (webhooks, chat-service
//! messages, export callbacks): it records every request and answers the status it is told to.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::Value;

/// One request the sink received.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "the body sent to {} is not JSON ({e}): {}",
                self.path,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    status: Option<StatusCode>,
    delay: Option<Duration>,
}

/// A running sink; it stops with the test's runtime.
#[derive(Clone)]
pub struct HttpSink {
    /// `http://127.0.0.1:<port>`
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl HttpSink {
    pub async fn start() -> HttpSink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = shared.clone();
                async move {
                    let (status, delay) = {
                        let mut s = state.lock().unwrap();
                        s.received.push(Received {
                            method,
                            path: uri.to_string(),
                            headers,
                            body,
                        });
                        (s.status.unwrap_or(StatusCode::OK), s.delay)
                    };
                    if let Some(delay) = delay {
                        tokio::time::sleep(delay).await;
                    }
                    status
                }
            },
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        HttpSink { url, state }
    }

    /// The status every later request gets (200 until set).
    pub fn answer(&self, status: StatusCode) {
        self.state.lock().unwrap().status = Some(status);
    }

    /// Answer only after `delay` (a slow receiver).
    pub fn delay(&self, delay: Duration) {
        self.state.lock().unwrap().delay = Some(delay);
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// Waits (up to 10 s) until at least `n` requests arrived, and returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..500 {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "expected {n} requests at {}, got {}",
            self.url,
            self.received().len()
        );
    }
}
