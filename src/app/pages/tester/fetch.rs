//! The browser side of a run: `fetch` through the real gateway path, reading a streamed body chunk
//! by chunk as it arrives.

use leptos::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use super::run::{RunState, SseDecoder};

/// Sends `body` to `path` (an inbound API's route) and reports into `run` until the reply ends.
pub async fn send(
    path: String,
    body: String,
    run: RwSignal<RunState>,
    abort: web_sys::AbortSignal,
) {
    if let Err(e) = exchange(path, body, run, &abort).await {
        let message = if abort.aborted() {
            "Stopped.".to_string()
        } else {
            let detail = e
                .dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
                .or_else(|| e.as_string())
                .unwrap_or_else(|| format!("{e:?}"));
            format!("Cannot reach the gateway: {detail}")
        };
        run.update(|r| r.fail(message, crate::clock::now_ms_f64()));
    }
}

async fn exchange(
    path: String,
    body: String,
    run: RwSignal<RunState>,
    abort: &web_sys::AbortSignal,
) -> Result<(), JsValue> {
    let headers = web_sys::Headers::new()?;
    headers.set("content-type", "application/json")?;
    if path == "/v1/messages" {
        headers.set("anthropic-version", super::form::ANTHROPIC_VERSION)?;
    }
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_headers(&headers);
    init.set_body(&JsValue::from_str(&body));
    init.set_signal(Some(abort));
    let response: web_sys::Response =
        JsFuture::from(window().fetch_with_str_and_init(&path, &init))
            .await?
            .dyn_into()?;
    let status = response.status();
    let content_type = response.headers().get("content-type")?.unwrap_or_default();
    run.update(|r| r.status = Some(status));
    let streamed = content_type.contains("text/event-stream");
    let Some(stream) = response.body().filter(|_| streamed) else {
        let text = JsFuture::from(response.text()?).await?;
        let text = text.as_string().unwrap_or_default();
        run.update(|r| r.on_body(status, &text, crate::clock::now_ms_f64()));
        return Ok(());
    };
    let reader: web_sys::ReadableStreamDefaultReader = stream.get_reader().dyn_into()?;
    let mut decoder = SseDecoder::default();
    loop {
        let chunk = JsFuture::from(reader.read()).await?;
        if js_sys::Reflect::get(&chunk, &"done".into())?
            .as_bool()
            .unwrap_or(true)
        {
            break;
        }
        let bytes = js_sys::Uint8Array::new(&js_sys::Reflect::get(&chunk, &"value".into())?);
        let events = decoder.push(&bytes.to_vec());
        if !events.is_empty() {
            let now = crate::clock::now_ms_f64();
            run.update(|r| {
                for data in &events {
                    r.on_event(data, now);
                }
            });
        }
    }
    run.update(|r| r.finish(crate::clock::now_ms_f64()));
    Ok(())
}

thread_local! {
    static CURRENT: std::cell::RefCell<Option<web_sys::AbortController>> = const { std::cell::RefCell::new(None) };
}

/// Starts a run in the background; a run still going is stopped first.
pub fn start(path: String, body: String, run: RwSignal<RunState>) {
    stop();
    let Ok(controller) = web_sys::AbortController::new() else {
        run.update(|r| {
            r.fail(
                "This browser cannot send requests (no AbortController).".into(),
                crate::clock::now_ms_f64(),
            )
        });
        return;
    };
    let signal = controller.signal();
    CURRENT.with(|c| *c.borrow_mut() = Some(controller));
    leptos::task::spawn_local(send(path, body, run, signal));
}

pub fn stop() {
    if let Some(controller) = CURRENT.with(|c| c.borrow_mut().take()) {
        controller.abort();
    }
}

pub fn origin() -> Option<String> {
    window().location().origin().ok()
}

pub fn load_form() -> Option<String> {
    window()
        .local_storage()
        .ok()??
        .get_item(super::form::STORAGE_KEY)
        .ok()?
}

pub fn save_form(json: &str) {
    if let Ok(Some(storage)) = window().local_storage() {
        let _ = storage.set_item(super::form::STORAGE_KEY, json);
    }
}
