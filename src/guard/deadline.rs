//! The read deadline of a body being collected: a timer started only if the body makes the
//! guard wait, so bodies that arrive at once never touch the timer.

#[cfg(feature = "timeout")]
use std::pin::Pin;
use std::task::Context;
use std::time::Duration;

/// A lazily started `tokio` sleep, boxed when it starts: a body that arrives at once
/// carries one pointer's worth of it through every move of the request's future, not the
/// timer's hundred bytes.
#[cfg(feature = "timeout")]
pub(crate) struct BodyDeadline {
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

#[cfg(feature = "timeout")]
impl BodyDeadline {
    pub(crate) fn new() -> Self {
        Self { sleep: None }
    }

    /// Called when the body is not ready: start the timer on first use, and say whether it
    /// has run out. Registers the task to be woken when it does.
    pub(crate) fn expired(&mut self, cx: &mut Context<'_>, timeout: Option<Duration>) -> bool {
        let Some(timeout) = timeout else { return false };
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        std::future::Future::poll(sleep.as_mut(), cx).is_ready()
    }
}

/// Without the `timeout` feature a body may take as long as it likes.
#[cfg(not(feature = "timeout"))]
pub(crate) struct BodyDeadline;

#[cfg(not(feature = "timeout"))]
impl BodyDeadline {
    pub(crate) fn new() -> Self {
        Self
    }

    pub(crate) fn expired(&mut self, _cx: &mut Context<'_>, _timeout: Option<Duration>) -> bool {
        false
    }
}
