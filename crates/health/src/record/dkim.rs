//! DKIM key records (RFC 6376 §3.6.1, RFC 8463): `v=DKIM1; k=rsa; p=<base64 key>`.
//!
//! The key size comes from a minimal DER reader: an RSA `p=` is a SubjectPublicKeyInfo
//! (sometimes a bare PKCS#1 RSAPublicKey) whose modulus length is the key size; an Ed25519
//! `p=` is the raw 32-byte key.

use base64::Engine as _;
use serde::Serialize;

use super::tags::TagList;

/// The key algorithm and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum KeyType {
    Rsa { bits: usize },
    Ed25519,
}

/// A parsed DKIM key record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimKey {
    /// `None` when revoked (`p=` empty).
    pub key: Option<KeyType>,
    /// `t=y`: the domain is testing DKIM; receivers must not treat failures differently.
    pub testing: bool,
}

/// True when a TXT record looks like a DKIM key record (`v=DKIM1` first, or a `p=` tag).
pub fn is_dkim(txt: &str) -> bool {
    match TagList::parse(txt) {
        Ok(t) => {
            matches!(t.first(), Some((n, _)) if n.eq_ignore_ascii_case("v"))
                && t.get("v").is_some_and(|v| v.eq_ignore_ascii_case("DKIM1"))
                || t.get("p").is_some()
        }
        Err(_) => false,
    }
}

impl DkimKey {
    /// Parses a key record; `Err` (a sentence) when receivers could not use it.
    pub fn parse(txt: &str) -> Result<Self, String> {
        let tags = TagList::parse(txt).map_err(|e| e.to_string())?;
        if let Some(v) = tags.get("v") {
            if v != "DKIM1" {
                return Err(format!("v={v} is not DKIM1"));
            }
            if !matches!(tags.first(), Some((n, _)) if n == "v") {
                return Err("v=DKIM1 must be the first tag".to_owned());
            }
        }
        let testing = tags
            .get("t")
            .is_some_and(|t| t.split(':').any(|f| f.trim().eq_ignore_ascii_case("y")));
        let p = tags
            .get("p")
            .ok_or_else(|| "the required p= tag (the public key) is missing".to_owned())?;
        let p: String = p.chars().filter(|c| !c.is_whitespace()).collect();
        if p.is_empty() {
            return Ok(Self { key: None, testing });
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(p.as_bytes())
            .map_err(|e| format!("p= is not valid base64 ({e})"))?;
        let k = tags.get("k").unwrap_or("rsa").to_ascii_lowercase();
        let key = match k.as_str() {
            "rsa" => KeyType::Rsa {
                bits: rsa_modulus_bits(&der)
                    .ok_or_else(|| "p= does not hold an RSA public key".to_owned())?,
            },
            "ed25519" => {
                if der.len() != 32 && !is_ed25519_spki(&der) {
                    return Err(format!(
                        "p= holds {} bytes; an Ed25519 key is 32 bytes",
                        der.len()
                    ));
                }
                KeyType::Ed25519
            }
            other => return Err(format!("k={other} is not a known key type (rsa, ed25519)")),
        };
        Ok(Self {
            key: Some(key),
            testing,
        })
    }
}

/// One DER element: (tag, contents, rest of input).
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OID: u8 = 0x06;
const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// The modulus size in bits of an RSA key given as SubjectPublicKeyInfo or as a bare
/// PKCS#1 RSAPublicKey.
pub fn rsa_modulus_bits(der: &[u8]) -> Option<usize> {
    let (tag, body, _) = der_element(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (first_tag, first, rest) = der_element(body)?;
    match first_tag {
        // SubjectPublicKeyInfo: SEQUENCE { AlgorithmIdentifier, BIT STRING }
        SEQUENCE => {
            let (oid_tag, oid, _) = der_element(first)?;
            if oid_tag != OID || oid != RSA_ENCRYPTION {
                return None;
            }
            let (bs_tag, bits, _) = der_element(rest)?;
            if bs_tag != BIT_STRING || bits.first() != Some(&0) {
                return None;
            }
            rsa_modulus_bits(&bits[1..])
        }
        // RSAPublicKey: SEQUENCE { INTEGER modulus, INTEGER exponent }
        INTEGER => {
            let (e_tag, _, _) = der_element(rest)?;
            if e_tag != INTEGER {
                return None;
            }
            let m = first;
            let start = m.iter().position(|&b| b != 0)?;
            let m = &m[start..];
            Some((m.len() - 1) * 8 + (8 - m[0].leading_zeros() as usize))
        }
        _ => None,
    }
}

fn is_ed25519_spki(der: &[u8]) -> bool {
    let Some((SEQUENCE, body, _)) = der_element(der) else {
        return false;
    };
    let Some((SEQUENCE, alg, rest)) = der_element(body) else {
        return false;
    };
    matches!(der_element(alg), Some((OID, oid, _)) if oid == ED25519)
        && matches!(der_element(rest), Some((BIT_STRING, key, _)) if key.len() == 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1024-bit RSA SubjectPublicKeyInfo (openssl genrsa 1024), base64.
    const RSA1024: &str = "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCgqPxR+AE9hRuv6JRO8YdlCubNp2YefjtbnPXtIZS6hLcNhLqEe6+vyIQSjcV3pHlQQeZvj6kg/GQFf7VkEKOHzb3YMKQRXbRJjlhW7EsCpuebKInHPWTmcFavMVciFXP8x5TQLePFjEOAUtRE5F7mpjRLXV3EFV5agbYfnnOk4wIDAQAB";

    #[test]
    fn reads_rsa_key_sizes() {
        let k = DkimKey::parse(&format!("v=DKIM1; k=rsa; p={RSA1024}")).expect("valid");
        assert_eq!(k.key, Some(KeyType::Rsa { bits: 1024 }));
        assert!(!k.testing);
    }

    #[test]
    fn reads_bare_pkcs1_keys() {
        // SEQUENCE { INTEGER 0x00 0x80 00..00 (2048 bits), INTEGER 65537 }
        let mut modulus = vec![0x00, 0x80];
        modulus.extend(std::iter::repeat_n(0u8, 255));
        let mut der = vec![0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01];
        der.extend(&modulus);
        der.extend([0x02, 0x03, 0x01, 0x00, 0x01]);
        assert_eq!(rsa_modulus_bits(&der), Some(2048));
    }

    #[test]
    fn revoked_testing_and_ed25519() {
        let revoked = DkimKey::parse("v=DKIM1; p=").expect("valid");
        assert_eq!(revoked.key, None);
        let ed = DkimKey::parse(
            "v=DKIM1; k=ed25519; t=y; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
        )
        .expect("valid");
        assert_eq!(ed.key, Some(KeyType::Ed25519));
        assert!(ed.testing);
    }

    #[test]
    fn rejects_broken_keys() {
        assert!(DkimKey::parse("v=DKIM1; p=!!!").is_err());
        assert!(DkimKey::parse("v=DKIM1; p=AAAA").is_err());
        assert!(DkimKey::parse("v=DKIM1; k=dsa; p=AAAA").is_err());
        assert!(DkimKey::parse("v=DKIM1; k=rsa").is_err());
        assert!(DkimKey::parse("k=rsa; v=DKIM1; p=").is_err());
        assert!(is_dkim("v=DKIM1; p="));
        assert!(!is_dkim("v=spf1 -all"));
    }

    #[test]
    fn der_reader_survives_junk() {
        for junk in [
            &[][..],
            &[0x30],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            &[0x30, 0x02, 0x02, 0x00],
        ] {
            assert_eq!(rsa_modulus_bits(junk), None);
        }
    }
}
