//! GitHub App authentication: the App's RSA key signs a short RS256 JWT,
//! which GitHub trades for an installation token; the token is kept until
//! shortly before it expires.

use crate::Secret;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeDelta, Utc};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde_json::json;

/// GitHub rejects a JWT dated in its future; backdating covers clock drift.
const JWT_BACKDATE: TimeDelta = TimeDelta::seconds(60);
/// GitHub accepts at most ten minutes; nine leaves room for drift.
const JWT_LIFETIME: TimeDelta = TimeDelta::minutes(9);
/// Renew this long before `expires_at`, so no call goes out with a token
/// that dies in flight or while a retry waits.
pub const RENEW_BEFORE: TimeDelta = TimeDelta::minutes(5);

/// An App private key that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "not a PEM RSA private key: expected \"-----BEGIN RSA PRIVATE KEY-----\" (PKCS#1, as \
         GitHub issues it) or \"-----BEGIN PRIVATE KEY-----\" (PKCS#8)"
    )]
    NotPem,
    #[error("PEM body is not base64: {0}")]
    Base64(#[source] base64::DecodeError),
    #[error("RSA key rejected: {0}")]
    Rejected(#[source] ring::error::KeyRejected),
    #[error("signing the App JWT failed")]
    Sign(#[source] ring::error::Unspecified),
}

/// Reads a PEM RSA private key in PKCS#1 or PKCS#8 form.
pub fn parse_private_key_pem(pem: &str) -> Result<RsaKeyPair, KeyError> {
    let (der, pkcs8) = pem_body(pem, "RSA PRIVATE KEY")
        .map(|b| (b, false))
        .or_else(|| pem_body(pem, "PRIVATE KEY").map(|b| (b, true)))
        .ok_or(KeyError::NotPem)?;
    let der = STANDARD.decode(der).map_err(KeyError::Base64)?;
    let parsed = if pkcs8 {
        RsaKeyPair::from_pkcs8(&der)
    } else {
        RsaKeyPair::from_der(&der)
    };
    parsed.map_err(KeyError::Rejected)
}

/// The base64 between `-----BEGIN {label}-----` and its END line, with
/// line breaks removed.
fn pem_body(pem: &str, label: &str) -> Option<String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = start + pem[start..].find(&end)?;
    Some(pem[start..stop].split_whitespace().collect())
}

/// Signs App JWTs.
pub(crate) struct AppSigner {
    app_id: u64,
    key: RsaKeyPair,
    rng: SystemRandom,
}

impl AppSigner {
    pub(crate) fn new(app_id: u64, private_key_pem: &Secret) -> Result<Self, KeyError> {
        Ok(AppSigner {
            app_id,
            key: parse_private_key_pem(private_key_pem.expose())?,
            rng: SystemRandom::new(),
        })
    }

    /// An RS256 JWT for the App: `iat` a minute back, `exp` nine minutes on,
    /// `iss` the App id.
    pub(crate) fn jwt(&self, now: DateTime<Utc>) -> Result<Secret, KeyError> {
        let header = json!({ "alg": "RS256", "typ": "JWT" });
        let claims = json!({
            "iat": (now - JWT_BACKDATE).timestamp(),
            "exp": (now + JWT_LIFETIME).timestamp(),
            "iss": self.app_id.to_string(),
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &self.rng,
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(KeyError::Sign)?;
        Ok(Secret::new(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        )))
    }
}

/// An installation token and when GitHub said it dies.
#[derive(Debug, Clone)]
pub(crate) struct InstallationToken {
    pub(crate) token: Secret,
    pub(crate) expires_at: DateTime<Utc>,
}

impl InstallationToken {
    /// Still good for more than [`RENEW_BEFORE`] at `now`.
    pub(crate) fn is_fresh(&self, now: DateTime<Utc>) -> bool {
        self.expires_at - now > RENEW_BEFORE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

    const PKCS1: &str = include_str!("../tests/data/TEST-ONLY-app-key.pkcs1.pem");
    const PKCS8: &str = include_str!("../tests/data/TEST-ONLY-app-key.pkcs8.pem");

    #[test]
    fn both_pem_forms_give_the_same_key() {
        let a = parse_private_key_pem(PKCS1).unwrap();
        let b = parse_private_key_pem(PKCS8).unwrap();
        assert_eq!(a.public().as_ref(), b.public().as_ref());
    }

    #[test]
    fn garbage_is_refused_with_a_clear_error() {
        let e = parse_private_key_pem("ssh-rsa AAAA").unwrap_err();
        assert!(matches!(e, KeyError::NotPem));
        assert!(e.to_string().contains("BEGIN RSA PRIVATE KEY"));
        let e = parse_private_key_pem(
            "-----BEGIN RSA PRIVATE KEY-----\n!!!\n-----END RSA PRIVATE KEY-----",
        )
        .unwrap_err();
        assert!(matches!(e, KeyError::Base64(_)));
        let e = parse_private_key_pem(
            "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----",
        )
        .unwrap_err();
        assert!(matches!(e, KeyError::Rejected(_)));
    }

    #[test]
    fn jwt_claims_and_signature_verify_with_the_public_key() {
        let signer = AppSigner::new(12345, &Secret::new(PKCS1)).unwrap();
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let jwt = signer.jwt(now).unwrap();
        let parts: Vec<&str> = jwt.expose().split('.').collect();
        assert_eq!(parts.len(), 3);
        let decode = |p: &str| -> serde_json::Value {
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
        };
        assert_eq!(decode(parts[0]), json!({ "alg": "RS256", "typ": "JWT" }));
        assert_eq!(
            decode(parts[1]),
            json!({ "iat": 1_700_000_000 - 60, "exp": 1_700_000_000 + 540, "iss": "12345" })
        );
        let public = signer.key.public().as_ref().to_vec();
        let signed = format!("{}.{}", parts[0], parts[1]);
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &public)
            .verify(signed.as_bytes(), &signature)
            .expect("signature verifies");
        let mut tampered = signature.clone();
        tampered[0] ^= 1;
        assert!(
            UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &public)
                .verify(signed.as_bytes(), &tampered)
                .is_err()
        );
    }

    #[test]
    fn a_token_is_renewed_five_minutes_before_it_expires() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let token = |mins| InstallationToken {
            token: Secret::new("ghs_x"),
            expires_at: now + TimeDelta::minutes(mins),
        };
        assert!(token(60).is_fresh(now));
        assert!(token(6).is_fresh(now));
        assert!(!token(5).is_fresh(now));
        assert!(!token(-1).is_fresh(now));
    }
}
