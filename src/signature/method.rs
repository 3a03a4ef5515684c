//! A signature scheme's row of the authenticator's table, and an ordered preference of
//! schemes (`Authenticator::first_of`).

use std::sync::Arc;

use super::check::HeadCheck;
use super::config::SignatureVerifier;
use crate::authenticator::{Head, Inspection, Method};
use crate::error::{ChallengeScheme, Challenges};

impl Method for SignatureVerifier {
    fn name(&self) -> String {
        self.identity().to_owned()
    }

    fn challenges(&self) -> Challenges {
        Challenges::one(ChallengeScheme::Signature)
    }

    fn credentials(&self) -> Vec<String> {
        self.signature_headers()
            .map(|name| format!("the `{name}` header"))
            .collect()
    }

    fn reads_authorization(&self) -> bool {
        false
    }

    fn signs_body(&self) -> bool {
        true
    }

    fn default_body_limit(&self) -> usize {
        self.platform_body_limit()
    }

    fn presented(&self, head: &Head<'_>) -> bool {
        self.is_presented(&head.parts.headers)
    }

    fn inspect(&self, head: &Head<'_>) -> Inspection {
        match self.check_head(head.parts) {
            HeadCheck::Absent => Inspection::Absent,
            HeadCheck::Rejected(kind) => Inspection::rejected(kind, self.challenges()),
            HeadCheck::Pending(read) => Inspection::NeedsBody(read),
        }
    }
}

/// Signature schemes in order of preference: the most preferred header the request carries
/// decides.
#[derive(Clone, Debug)]
pub(crate) struct SignaturePreference(Arc<[SignatureVerifier]>);

impl SignaturePreference {
    pub(crate) fn new(verifiers: Vec<SignatureVerifier>) -> Self {
        Self(verifiers.into())
    }

    pub(crate) fn verifiers(&self) -> &[SignatureVerifier] {
        &self.0
    }
}

impl Method for SignaturePreference {
    fn name(&self) -> String {
        self.0.first().map_or_else(String::new, Method::name)
    }

    fn challenges(&self) -> Challenges {
        Challenges::one(ChallengeScheme::Signature)
    }

    fn credentials(&self) -> Vec<String> {
        // Schemes of one preference share headers (SignalWire's hex and base64 forms).
        let mut names: Vec<String> = self.0.iter().flat_map(Method::credentials).collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    fn reads_authorization(&self) -> bool {
        false
    }

    fn signs_body(&self) -> bool {
        true
    }

    fn default_body_limit(&self) -> usize {
        self.0
            .iter()
            .map(SignatureVerifier::platform_body_limit)
            .max()
            .unwrap_or(crate::guard::DEFAULT_BODY_LIMIT)
    }

    fn presented(&self, head: &Head<'_>) -> bool {
        self.0.iter().any(|v| v.is_presented(&head.parts.headers))
    }

    /// The most preferred header present decides. Among the schemes sharing it, the first
    /// that parses its value checks it; if none does, the first explains why.
    fn inspect(&self, head: &Head<'_>) -> Inspection {
        let headers = &head.parts.headers;
        let chosen = self
            .0
            .iter()
            .find(|v| v.is_presented(headers))
            .map(|preferred| {
                self.0
                    .iter()
                    .filter(|v| v.shares_header(preferred))
                    .find(|v| v.recognizes(headers))
                    .unwrap_or(preferred)
            });
        match chosen {
            Some(verifier) => verifier.inspect(head),
            None => Inspection::Absent,
        }
    }
}
