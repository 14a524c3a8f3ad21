//! One re-armable `setTimeout`, owning its closure; dropping it clears the pending timeout.

use super::js::{clear_timeout, set_timeout};
use crate::engine::time::timer_delay;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

pub struct Timer {
    closure: Closure<dyn FnMut()>,
    handle: Option<JsValue>,
    /// The deadline (session clock) the pending timeout is for.
    deadline: Option<u64>,
}

impl Timer {
    pub fn new(on_fire: impl FnMut() + 'static) -> Self {
        Timer {
            closure: Closure::new(on_fire),
            handle: None,
            deadline: None,
        }
    }

    /// Makes the timer fire by `deadline` (`None`: no deadline). A timer already armed for an
    /// earlier time is kept: waking early is harmless (the session finds nothing due and the shell
    /// arms again), while re-arming on every frame — each one pushes the liveness deadline — would
    /// cost a `clearTimeout` and a `setTimeout` per message.
    pub fn set(&mut self, deadline: Option<u64>, now: impl FnOnce() -> u64) {
        match (self.deadline, deadline) {
            (Some(armed), Some(wanted)) if armed <= wanted && self.handle.is_some() => return,
            (_, None) => return,
            _ => {}
        }
        self.cancel();
        if let Some(at) = deadline {
            let ms = timer_delay(at, now());
            self.handle = Some(set_timeout(self.closure.as_ref().unchecked_ref(), ms));
            self.deadline = Some(at);
        }
    }

    /// Disarms the timer.
    #[cfg(feature = "igniter")]
    pub fn clear(&mut self) {
        self.cancel();
    }

    /// The timeout fired: nothing is pending any more.
    pub fn fired(&mut self) {
        self.handle = None;
        self.deadline = None;
    }

    fn cancel(&mut self) {
        if let Some(handle) = self.handle.take() {
            clear_timeout(&handle);
        }
        self.deadline = None;
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.cancel();
    }
}
