//! What the page knows about connecting: online/offline, visibility, the back-forward cache.
//! Owns its listeners and removes them on drop. Works in windows; in workers (no `document`) only
//! online/offline is watched.

use crate::prelude::*;
use alloc::rc::Rc;
use js_sys::Reflect;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Event, EventTarget};

/// A change the session must hear about.
pub enum PageEvent {
    Online(bool),
    Visible(bool),
    Frozen(bool),
}

struct Listener {
    target: EventTarget,
    kind: &'static str,
    closure: Closure<dyn FnMut(Event)>,
}

pub struct PageWatcher {
    listeners: Vec<Listener>,
}

fn get(target: &JsValue, key: &str) -> JsValue {
    Reflect::get(target, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// `navigator.onLine`, `true` when unknown.
pub fn is_online() -> bool {
    get(&get(&js_sys::global(), "navigator"), "onLine")
        .as_bool()
        .unwrap_or(true)
}

/// `document.visibilityState !== "hidden"`, `true` without a document.
pub fn is_visible() -> bool {
    let document = get(&js_sys::global(), "document");
    get(&document, "visibilityState").as_string().as_deref() != Some("hidden")
}

impl PageWatcher {
    pub fn new(on_event: impl Fn(PageEvent) + 'static) -> PageWatcher {
        let on_event: Rc<dyn Fn(PageEvent)> = Rc::new(on_event);
        let mut watcher = PageWatcher {
            listeners: Vec::new(),
        };
        let global = js_sys::global();
        let Some(global_target) = global.dyn_ref::<EventTarget>().cloned() else {
            return watcher;
        };
        let handler = on_event.clone();
        watcher.listen(&global_target, "online", move |_| {
            handler(PageEvent::Online(true))
        });
        let handler = on_event.clone();
        watcher.listen(&global_target, "offline", move |_| {
            handler(PageEvent::Online(false))
        });
        // `pagehide` with `persisted`: the page goes into the back-forward cache.
        let handler = on_event.clone();
        watcher.listen(&global_target, "pagehide", move |e| {
            if get(&e, "persisted").as_bool() == Some(true) {
                handler(PageEvent::Frozen(true));
            }
        });
        let handler = on_event.clone();
        watcher.listen(&global_target, "pageshow", move |e| {
            if get(&e, "persisted").as_bool() == Some(true) {
                handler(PageEvent::Frozen(false));
            }
        });
        if let Some(document) = get(&global, "document").dyn_ref::<EventTarget>().cloned() {
            let handler = on_event;
            watcher.listen(&document, "visibilitychange", move |_| {
                handler(PageEvent::Visible(is_visible()))
            });
        }
        watcher
    }

    fn listen(
        &mut self,
        target: &EventTarget,
        kind: &'static str,
        f: impl FnMut(JsValue) + 'static,
    ) {
        let mut f = f;
        let closure = Closure::<dyn FnMut(Event)>::new(move |e: Event| f(e.into()));
        if target
            .add_event_listener_with_callback(kind, closure.as_ref().unchecked_ref())
            .is_ok()
        {
            self.listeners.push(Listener {
                target: target.clone(),
                kind,
                closure,
            });
        }
    }
}

impl Drop for PageWatcher {
    fn drop(&mut self) {
        for l in self.listeners.drain(..) {
            // Removing a listener that is registered cannot fail in a way worth reporting.
            let _ = l
                .target
                .remove_event_listener_with_callback(l.kind, l.closure.as_ref().unchecked_ref());
        }
    }
}
