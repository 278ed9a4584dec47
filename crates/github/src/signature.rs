//! HMAC-SHA256 body signatures in GitHub's `sha256=<hex>` form: previewd
//! signs its callbacks with it and checks GitHub's `X-Hub-Signature-256`.
//!
//! The HMAC is ring's: ring is already linked for the GitHub App's RS256
//! signatures, and the `hmac` crate in the lock file (0.13) is built for
//! sha2 0.11, not the workspace's sha2 0.10.

use ring::hmac;
use subtle::ConstantTimeEq;

const PREFIX: &str = "sha256=";

/// HMAC-SHA256 (RFC 2104) of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), message);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// The header value for `body`: `sha256=` and the lowercase hex HMAC, the
/// scheme of GitHub's `X-Hub-Signature-256` and previewd's
/// `X-Previewd-Signature-256`.
pub fn signature_header(secret: &[u8], body: &[u8]) -> String {
    format!("{PREFIX}{}", hex::encode(hmac_sha256(secret, body)))
}

/// Whether `header_value` (an `X-Hub-Signature-256`) signs `body` under
/// `secret`. Only the `sha256=` form is accepted: the SHA-1
/// `X-Hub-Signature` is refused. The comparison takes the same time
/// wherever the first wrong byte is, so a forger learns nothing from timing.
pub fn verify_signature(secret: &[u8], body: &[u8], header_value: &str) -> bool {
    let Some(hex_part) = header_value.trim().strip_prefix(PREFIX) else {
        return false;
    };
    let Ok(given) = hex::decode(hex_part) else {
        return false;
    };
    let expected = hmac_sha256(secret, body);
    // `ct_eq` on slices of different lengths is false; the length is public.
    expected.as_slice().ct_eq(given.as_slice()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_case_1() {
        let mac = hmac_sha256(&[0x0b; 20], b"Hi There");
        assert_eq!(
            hex::encode(mac),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }

    #[test]
    fn rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn rfc4231_case_6_key_longer_than_a_block() {
        let mac = hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(
            hex::encode(mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    /// The example in GitHub's "Validating webhook deliveries".
    const GH_SECRET: &[u8] = b"It's a Secret to Everybody";
    const GH_BODY: &[u8] = b"Hello, World!";
    const GH_SIG: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn github_published_example_verifies() {
        assert_eq!(signature_header(GH_SECRET, GH_BODY), GH_SIG);
        assert!(verify_signature(GH_SECRET, GH_BODY, GH_SIG));
    }

    #[test]
    fn a_changed_body_secret_or_digit_fails() {
        assert!(!verify_signature(GH_SECRET, b"Hello, World?", GH_SIG));
        assert!(!verify_signature(b"another secret", GH_BODY, GH_SIG));
        let flipped = GH_SIG.replace("757107", "757108");
        assert!(!verify_signature(GH_SECRET, GH_BODY, &flipped));
    }

    #[test]
    fn wrong_prefix_truncated_or_non_hex_fails() {
        let hex_part = GH_SIG.trim_start_matches("sha256=");
        assert!(!verify_signature(
            GH_SECRET,
            GH_BODY,
            &format!("sha1={hex_part}")
        ));
        assert!(!verify_signature(GH_SECRET, GH_BODY, hex_part));
        assert!(!verify_signature(
            GH_SECRET,
            GH_BODY,
            &GH_SIG[..GH_SIG.len() - 2]
        ));
        assert!(!verify_signature(GH_SECRET, GH_BODY, "sha256=zz"));
        assert!(!verify_signature(GH_SECRET, GH_BODY, ""));
    }

    #[test]
    fn uppercase_hex_and_surrounding_space_are_tolerated() {
        let upper = format!("  sha256={}\n", GH_SIG[7..].to_uppercase());
        assert!(verify_signature(GH_SECRET, GH_BODY, &upper));
    }
}
