//! The share URL in the page's fragment, read and written through
//! [`emberlens_protocol::share_url`]. Each view owns its part of the state
//! (the series panel its selector and range, the profile view the `p.*`
//! keys) and writes it with [`update`], which reads the fragment first, so
//! one view's write keeps the other's state.

use emberlens_protocol::share_url::ViewState;

/// The state in the page's fragment now.
pub fn read() -> ViewState {
    let hash = leptos::prelude::window()
        .location()
        .hash()
        .unwrap_or_default();
    ViewState::from_fragment(&hash)
}

/// Changes the fragment's state with `f` (`history.replaceState`, so no
/// history entry per keystroke); nothing is written when the fragment
/// already reads so.
pub fn update(f: impl FnOnce(&mut ViewState)) {
    let window = leptos::prelude::window();
    let hash = window.location().hash().unwrap_or_default();
    let mut state = ViewState::from_fragment(&hash);
    f(&mut state);
    let fragment = state.to_fragment();
    if fragment == hash {
        return;
    }
    if let Ok(h) = window.history() {
        let _ = h.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&fragment));
    }
}
