//! The one-time code flow every store must answer alike.

use std::sync::Mutex;
use std::time::Duration;

use callguard::Secret;
use callguard::clock::FixedClock;
use callguard::limit::{CodeCheck, CodeError, CodeSender, OneTimeCodes};
use callguard::replay::{ReplayStore, StoreError};

/// The application's sender: here, an outbox the test reads.
#[derive(Default)]
pub struct Outbox(Mutex<Vec<(String, String)>>);

impl CodeSender for Outbox {
    async fn send(&self, subject: &str, _: &str, code: &str) -> Result<(), StoreError> {
        self.0
            .lock()
            .unwrap()
            .push((subject.to_owned(), code.to_owned()));
        Ok(())
    }
}

impl Outbox {
    pub fn last(&self) -> String {
        self.0.lock().unwrap().last().unwrap().1.clone()
    }
}

/// Codes in `store`, re-sent at most every `resend` (a store that times the interval by its
/// own clock, as Redis does, needs it to pass in real time).
pub fn codes(store: impl ReplayStore, clock: &FixedClock, resend: Duration) -> OneTimeCodes {
    OneTimeCodes::builder(
        store,
        Secret::from_utf8("a-key-for-code-hashes-0123").unwrap(),
    )
    .clock(clock.clone())
    .resend_after(resend.max(Duration::from_secs(1)))
    .build()
    .unwrap()
}

/// The flow every store must answer alike.
pub async fn the_flow(codes: &OneTimeCodes, clock: &FixedClock, phone: &str, resend: Duration) {
    let outbox = Outbox::default();
    assert_eq!(
        codes.verify(phone, "mfa", "123456").await.unwrap(),
        CodeCheck::Missing
    );
    codes.issue(phone, "mfa", &outbox).await.unwrap();
    let code = outbox.last();
    assert!(
        code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
        "{code}"
    );
    // Re-sent too soon.
    assert!(matches!(
        codes.issue(phone, "mfa", &outbox).await,
        Err(CodeError::TooSoon { .. })
    ));
    let wrong = if code == "000000" { "000001" } else { "000000" };
    for left in [2, 1, 0] {
        assert_eq!(
            codes.verify(phone, "mfa", wrong).await.unwrap(),
            CodeCheck::Wrong {
                attempts_left: left
            }
        );
    }
    // Three wrong: even the right code is refused until the code expires.
    assert_eq!(
        codes.verify(phone, "mfa", &code).await.unwrap(),
        CodeCheck::TooManyAttempts { retry_after: 300 }
    );
    // Sending again does not buy more guesses: no new code while the exhausted one lives.
    clock.advance(Duration::from_secs(31));
    tokio::time::sleep(resend).await;
    assert!(matches!(
        codes.issue(phone, "mfa", &outbox).await,
        Err(CodeError::Exhausted)
    ));
    // And asking again right away is too soon.
    assert!(matches!(
        codes.issue(phone, "mfa", &outbox).await,
        Err(CodeError::TooSoon { .. })
    ));
    // Once it expired, a new code; right once, then used up.
    clock.advance(Duration::from_secs(300));
    codes.issue(phone, "mfa", &outbox).await.unwrap();
    let code = outbox.last();
    assert_eq!(
        codes.verify(phone, "login", &code).await.unwrap(),
        CodeCheck::Missing,
        "a code is for one purpose"
    );
    // Four checks of the right code racing each other: one is verified, once.
    let (a, b, c, d) = tokio::join!(
        codes.verify(phone, "mfa", &code),
        codes.verify(phone, "mfa", &code),
        codes.verify(phone, "mfa", &code),
        codes.verify(phone, "mfa", &code),
    );
    let answers = [a.unwrap(), b.unwrap(), c.unwrap(), d.unwrap()];
    let verified = answers
        .iter()
        .filter(|answer| **answer == CodeCheck::Verified)
        .count();
    assert_eq!(verified, 1, "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|answer| matches!(answer, CodeCheck::Verified | CodeCheck::Missing)),
        "{answers:?}"
    );
    assert_eq!(
        codes.verify(phone, "mfa", &code).await.unwrap(),
        CodeCheck::Missing
    );
    // One that expires.
    clock.advance(Duration::from_secs(31));
    tokio::time::sleep(resend).await;
    codes.issue(phone, "mfa", &outbox).await.unwrap();
    let code = outbox.last();
    clock.advance(Duration::from_secs(300));
    assert_eq!(
        codes.verify(phone, "mfa", &code).await.unwrap(),
        CodeCheck::Expired
    );
}
