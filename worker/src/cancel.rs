//! Cancelling requests in the worker.
//!
//! Two mechanisms, because the worker has one thread:
//!
//! - A request that waits on the network (a forwarded query, `FetchSeries`)
//!   is registered under its id with a [`CancelToken`] while it waits; the
//!   app's `Request::Cancel` finds the token and fires it, which aborts the
//!   `fetch` (the browser's `Http` hands the token to an `AbortController`).
//! - A query the engine runs in the worker blocks the thread, so no message
//!   is read until it ends. It is stopped by the engine's interrupt, which the
//!   [`Interrupts`] implementation builds: in the browser it reads the shared
//!   flag (`Atomics.load` on an `Int32Array` over a `SharedArrayBuffer`) that
//!   the app writes from the main thread.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use emberlens_promql::EvalError;
use emberlens_promql::engine::Interrupt;
use emberlens_protocol::{CANCELED_MESSAGE, ErrorBody, ErrorKind};

/// Fires once; callbacks registered before or after run exactly once.
/// Cheap to clone (clones share the state). Single-threaded, as the worker.
#[derive(Clone, Default)]
pub struct CancelToken(Rc<Inner>);

#[derive(Default)]
struct Inner {
    canceled: Cell<bool>,
    on_cancel: RefCell<Vec<Box<dyn FnOnce()>>>,
}

impl CancelToken {
    /// Fires the token: runs the registered callbacks. Later calls do nothing.
    pub fn cancel(&self) {
        if self.0.canceled.replace(true) {
            return;
        }
        let callbacks = std::mem::take(&mut *self.0.on_cancel.borrow_mut());
        for f in callbacks {
            f();
        }
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_canceled(&self) -> bool {
        self.0.canceled.get()
    }

    /// Runs `f` when the token fires (at once if it has fired already).
    pub fn on_cancel(&self, f: impl FnOnce() + 'static) {
        if self.is_canceled() {
            f();
        } else {
            self.0.on_cancel.borrow_mut().push(Box::new(f));
        }
    }
}

/// Gives a query that runs in the worker a way to see the app's cancel
/// while it runs.
pub trait Interrupts {
    /// Keeps the shared flag sent beside a `Request::ShareCancelFlag`.
    fn share_flag(&self) -> Result<(), ErrorBody>;

    /// The engine interrupt for the query with request id `id`, or `None`
    /// when there is no flag (the app then stops a local query by restarting
    /// the worker).
    fn for_query(&self, id: u64) -> Option<Interrupt>;
}

/// [`Interrupts`] for contexts without a shared flag.
pub struct NoInterrupts;

impl Interrupts for NoInterrupts {
    fn share_flag(&self) -> Result<(), ErrorBody> {
        Err(ErrorBody {
            kind: ErrorKind::BadRequest,
            message: "a shared cancel flag needs the browser worker".into(),
        })
    }

    fn for_query(&self, _: u64) -> Option<Interrupt> {
        None
    }
}

/// The engine's error for a cancelled query (its message is
/// [`CANCELED_MESSAGE`]).
pub fn canceled_eval_error() -> EvalError {
    EvalError::Canceled("expression evaluation".into())
}

/// The protocol's error for a cancelled request.
pub fn canceled_error() -> ErrorBody {
    ErrorBody {
        kind: ErrorKind::Canceled,
        message: CANCELED_MESSAGE.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callbacks_run_once_whenever_they_were_registered() {
        let t = CancelToken::default();
        let n = Rc::new(Cell::new(0));
        let n1 = n.clone();
        t.on_cancel(move || n1.set(n1.get() + 1));
        assert!(!t.is_canceled());
        t.clone().cancel();
        t.cancel();
        assert!(t.is_canceled());
        let n2 = n.clone();
        t.on_cancel(move || n2.set(n2.get() + 10));
        assert_eq!(n.get(), 11);
    }

    #[test]
    fn the_engine_message_is_the_protocol_message() {
        assert_eq!(canceled_eval_error().to_string(), CANCELED_MESSAGE);
    }
}
