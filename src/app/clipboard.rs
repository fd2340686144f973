//! The browser's clipboard, the one helper the pages use to copy text.

/// Copies text to the clipboard; true when it worked.
pub async fn copy(text: String) -> bool {
    let promise = leptos::prelude::window()
        .navigator()
        .clipboard()
        .write_text(&text);
    wasm_bindgen_futures::JsFuture::from(promise).await.is_ok()
}
