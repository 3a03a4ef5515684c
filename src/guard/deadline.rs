//! The read deadline of a body being collected: a timer started only if the body makes the
//! guard wait, so bodies that arrive at once never touch the timer.

use std::pin::Pin;
use std::task::Context;
use std::time::Duration;

#[cfg(feature = "timeout")]
pin_project_lite::pin_project! {
    /// A lazily started `tokio` sleep.
    pub(crate) struct BodyDeadline {
        #[pin]
        sleep: Option<tokio::time::Sleep>,
    }
}

#[cfg(feature = "timeout")]
impl BodyDeadline {
    pub(crate) fn new() -> Self {
        Self { sleep: None }
    }

    /// Called when the body is not ready: start the timer on first use, and say whether it
    /// has run out. Registers the task to be woken when it does.
    pub(crate) fn expired(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        timeout: Option<Duration>,
    ) -> bool {
        let Some(timeout) = timeout else { return false };
        let mut sleep = self.project().sleep;
        if sleep.is_none() {
            sleep.set(Some(tokio::time::sleep(timeout)));
        }
        let sleep = sleep.as_pin_mut().expect("the timer was just started");
        std::future::Future::poll(sleep, cx).is_ready()
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

    pub(crate) fn expired(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        _timeout: Option<Duration>,
    ) -> bool {
        false
    }
}
