//! Certificate-bound access tokens (RFC 8705): a token whose `cnf["x5t#S256"]` names the
//! SHA-256 thumbprint of the client certificate it was issued to is accepted only over a
//! connection authenticated with that certificate.
//!
//! The certificate comes from the connection: a server that terminates TLS itself puts it
//! into each request's extensions as [`ClientCertificate`]; behind a TLS-terminating proxy,
//! [`ClientCertificateLayer`] reads the header the proxy sets (nginx
//! `$ssl_client_escaped_cert`, Envoy `x-forwarded-client-cert`), from configured proxy
//! addresses only. Either way the layer resolves one [`CertificateThumbprint`] per request,
//! and the token verifiers given a [`CertificateBinding`] hold bound tokens to it, in the
//! bearer row's one funnel.

mod layer;

pub use layer::{ClientCertificateLayer, ClientCertificateService, ProxyHeader};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;

/// The client certificate of the request's TLS connection, DER-encoded: put into each
/// request's extensions by a server that terminates TLS itself (from rustls'
/// `peer_certificates()`, say), before a [`ClientCertificateLayer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate(pub Bytes);

/// The SHA-256 thumbprint of the request's client certificate (RFC 8705 §3.1), as
/// [`ClientCertificateLayer`] resolved it: what a token's `cnf["x5t#S256"]` must name.
///
/// ```
/// use callguard::mtls::CertificateThumbprint;
///
/// let thumbprint = CertificateThumbprint::of_der(b"not really DER");
/// assert_eq!(thumbprint.to_base64url().len(), 43);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertificateThumbprint(pub [u8; 32]);

impl CertificateThumbprint {
    /// The thumbprint of a DER-encoded certificate.
    pub fn of_der(der: &[u8]) -> Self {
        use sha2::Digest as _;
        Self(sha2::Sha256::digest(der).into())
    }

    /// base64url without padding, as `x5t#S256` spells it.
    pub fn to_base64url(self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }
}

/// How a token verifier holds certificate-bound tokens (without one, a token carrying `cnf`
/// is never accepted as a bearer token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertificateBinding {
    /// A token bound to a certificate is accepted over a connection with that certificate;
    /// an unbound token is accepted as before.
    WhenBound,
    /// Every token must be bound to the connection's certificate (RFC 9728
    /// `tls_client_certificate_bound_access_tokens`).
    Required,
}

/// Whether `caller`'s token passes `binding` with the request's `certificate`: the
/// `x5t#S256` it names, when it is certificate-bound and the certificate matches.
///
/// # Errors
///
/// [`UnprovenKeyBinding`](crate::AuthErrorKind::UnprovenKeyBinding) naming `cnf.x5t#S256`
/// for a bound token without its certificate, or an unbound one where binding is required.
pub(crate) fn check(
    binding: CertificateBinding,
    certificate: Option<CertificateThumbprint>,
    caller: &crate::Caller,
) -> Result<Option<String>, crate::error::Refusal> {
    use crate::error::{AuthErrorKind, Refusal};
    let refused = || Refusal::by(AuthErrorKind::UnprovenKeyBinding, "cnf.x5t#S256");
    let cnf = caller.claims().and_then(|claims| claims.get("cnf"));
    let Some(cnf) = cnf else {
        return match binding {
            CertificateBinding::Required => Err(refused()),
            CertificateBinding::WhenBound => Ok(None),
        };
    };
    let bound_to = cnf
        .as_object()
        .filter(|cnf| cnf.len() == 1)
        .and_then(|cnf| cnf.get("x5t#S256"))
        .and_then(serde_json::Value::as_str)
        // Bound to something else (a DPoP key), or to more than a certificate: no
        // certificate proves it.
        .ok_or_else(|| Refusal::by(AuthErrorKind::UnprovenKeyBinding, "cnf"))?;
    match certificate {
        Some(thumbprint) if thumbprint.to_base64url() == bound_to => Ok(Some(bound_to.to_owned())),
        _ => Err(refused()),
    }
}

/// Whether `caller`'s token, already bound to a DPoP key its proof proved, passes `binding`
/// with the request's `certificate`: a `cnf["x5t#S256"]` it also carries must name the
/// certificate, and with [`CertificateBinding::Required`] it must carry one. The certificate
/// the token names, when it names one.
///
/// # Errors
///
/// [`UnprovenKeyBinding`](crate::AuthErrorKind::UnprovenKeyBinding) naming `cnf.x5t#S256`.
#[cfg(feature = "dpop")]
pub(crate) fn check_beside_proof(
    binding: CertificateBinding,
    certificate: Option<CertificateThumbprint>,
    caller: &crate::Caller,
) -> Result<Option<String>, crate::error::Refusal> {
    use crate::error::{AuthErrorKind, Refusal};
    let refused = || Refusal::by(AuthErrorKind::UnprovenKeyBinding, "cnf.x5t#S256");
    let bound_to = caller
        .claims()
        .and_then(|claims| claims.get("cnf"))
        .and_then(|cnf| cnf.get("x5t#S256"));
    match (bound_to, binding) {
        (None, CertificateBinding::WhenBound) => Ok(None),
        (None, CertificateBinding::Required) => Err(refused()),
        (Some(x5t), _) => {
            let x5t = x5t.as_str().ok_or_else(refused)?;
            match certificate {
                Some(thumbprint) if thumbprint.to_base64url() == x5t => Ok(Some(x5t.to_owned())),
                _ => Err(refused()),
            }
        }
    }
}
