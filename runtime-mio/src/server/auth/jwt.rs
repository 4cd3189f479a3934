//! etcd's JWT tokens (`--auth-token jwt,pub-key=…,priv-key=…,sign-method=…,ttl=…`): signed
//! claims `{"username", "revision", "exp"}` that any member holding the public key accepts, with
//! nothing replicated. RS256/384/512, PS256/384/512 and ES256/384, as etcd's jwt-go signs them;
//! keys in PEM (PKCS#1, PKCS#8 or SEC1 private keys, SubjectPublicKeyInfo public keys).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, RsaKeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{PrivateKeyDer, SubjectPublicKeyInfoDer};

use crate::client::cert_name::element;
use crate::server::flags::parse_go_duration;

/// etcd's default lifetime of a JWT token.
pub(super) const JWT_TTL_DEFAULT: Duration = Duration::from_secs(5 * 60);

/// How tokens are signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Rs(u16),
    Ps(u16),
    Es(u16),
}

impl Method {
    fn parse(name: &str) -> Option<Self> {
        let bits = |s: &str| {
            s.parse::<u16>()
                .ok()
                .filter(|b| [256, 384, 512].contains(b))
        };
        match name.split_at_checked(2)? {
            ("RS", bits_text) => bits(bits_text).map(Method::Rs),
            ("PS", bits_text) => bits(bits_text).map(Method::Ps),
            ("ES", "256") => Some(Method::Es(256)),
            ("ES", "384") => Some(Method::Es(384)),
            _ => None,
        }
    }

    fn name(self) -> String {
        match self {
            Method::Rs(bits) => format!("RS{bits}"),
            Method::Ps(bits) => format!("PS{bits}"),
            Method::Es(bits) => format!("ES{bits}"),
        }
    }

    fn rsa_encoding(self) -> &'static dyn signature::RsaEncoding {
        match self {
            Method::Rs(256) => &signature::RSA_PKCS1_SHA256,
            Method::Rs(384) => &signature::RSA_PKCS1_SHA384,
            Method::Rs(_) => &signature::RSA_PKCS1_SHA512,
            Method::Ps(256) => &signature::RSA_PSS_SHA256,
            Method::Ps(384) => &signature::RSA_PSS_SHA384,
            _ => &signature::RSA_PSS_SHA512,
        }
    }

    fn verification(self) -> &'static dyn signature::VerificationAlgorithm {
        match self {
            Method::Rs(256) => &signature::RSA_PKCS1_2048_8192_SHA256,
            Method::Rs(384) => &signature::RSA_PKCS1_2048_8192_SHA384,
            Method::Rs(_) => &signature::RSA_PKCS1_2048_8192_SHA512,
            Method::Ps(256) => &signature::RSA_PSS_2048_8192_SHA256,
            Method::Ps(384) => &signature::RSA_PSS_2048_8192_SHA384,
            Method::Ps(_) => &signature::RSA_PSS_2048_8192_SHA512,
            Method::Es(256) => &signature::ECDSA_P256_SHA256_FIXED,
            Method::Es(_) => &signature::ECDSA_P384_SHA384_FIXED,
        }
    }

    fn ecdsa_signing(self) -> &'static signature::EcdsaSigningAlgorithm {
        match self {
            Method::Es(256) => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            _ => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
        }
    }
}

#[derive(Debug)]
enum Signer {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
}

/// What `--auth-token jwt,...` configures.
#[derive(Debug)]
pub(super) struct JwtTokens {
    method: Method,
    signer: Signer,
    /// The public key as ring verifies with it (RSAPublicKey, or the EC point).
    public_key: Vec<u8>,
    ttl: Duration,
    random: SystemRandom,
}

/// The bit string of a SubjectPublicKeyInfo: the key itself.
fn spki_key(spki: &[u8]) -> Option<Vec<u8>> {
    let (0x30, contents, _) = element(spki)? else {
        return None;
    };
    let (_, _, rest) = element(contents)?;
    let (0x03, bits, _) = element(rest)? else {
        return None;
    };
    let (&unused, key) = bits.split_first()?;
    (unused == 0).then(|| key.to_vec())
}

/// SEC1's ECPrivateKey: the private scalar and, when it carries it, the public point.
fn sec1_parts(der: &[u8]) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    let (0x30, contents, _) = element(der)? else {
        return None;
    };
    let (0x02, _, rest) = element(contents)? else {
        return None;
    };
    let (0x04, scalar, mut rest) = element(rest)? else {
        return None;
    };
    let mut public = None;
    while !rest.is_empty() {
        let (tag, inner, next) = element(rest)?;
        if tag == 0xa1 {
            let (0x03, bits, _) = element(inner)? else {
                return None;
            };
            public = bits.split_first().map(|(_, point)| point.to_vec());
        }
        rest = next;
    }
    Some((scalar.to_vec(), public))
}

impl JwtTokens {
    /// Reads the option list after `jwt,`: `pub-key`, `priv-key`, `sign-method`, `ttl`.
    pub(super) fn from_options(options: &str) -> Result<Self, String> {
        let mut public_path = None;
        let mut private_path = None;
        let mut method = None;
        let mut ttl = JWT_TTL_DEFAULT;
        for option in options.split(',').filter(|o| !o.is_empty()) {
            let (name, value) = option
                .split_once('=')
                .ok_or_else(|| format!("option {option:?} has no value"))?;
            match name {
                "pub-key" => public_path = Some(value.to_string()),
                "priv-key" => private_path = Some(value.to_string()),
                "sign-method" => {
                    method = Some(
                        Method::parse(value)
                            .ok_or_else(|| format!("sign-method {value} is not served"))?,
                    )
                }
                "ttl" => ttl = parse_ttl(value).ok_or_else(|| format!("ttl {value:?}"))?,
                other => return Err(format!("unknown option {other}")),
            }
        }
        let method = method.ok_or("sign-method is missing")?;
        let public_path = public_path.ok_or("pub-key is missing")?;
        let private_path = private_path.ok_or("priv-key is missing")?;
        Self::load(
            method,
            Path::new(&public_path),
            Path::new(&private_path),
            ttl,
        )
    }

    fn load(method: Method, public: &Path, private: &Path, ttl: Duration) -> Result<Self, String> {
        let spki = SubjectPublicKeyInfoDer::from_pem_file(public)
            .map_err(|e| format!("pub-key {}: {e}", public.display()))?;
        let public_key = spki_key(spki.as_ref())
            .ok_or_else(|| format!("pub-key {}: not a key", public.display()))?;
        let private_key = PrivateKeyDer::from_pem_file(private)
            .map_err(|e| format!("priv-key {}: {e}", private.display()))?;
        let bad = |e: &dyn std::fmt::Display| format!("priv-key {}: {e}", private.display());
        let random = SystemRandom::new();
        let signer = match (method, private_key) {
            (Method::Rs(_) | Method::Ps(_), PrivateKeyDer::Pkcs1(der)) => {
                Signer::Rsa(RsaKeyPair::from_der(der.secret_pkcs1_der()).map_err(|e| bad(&e))?)
            }
            (Method::Rs(_) | Method::Ps(_), PrivateKeyDer::Pkcs8(der)) => {
                Signer::Rsa(RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).map_err(|e| bad(&e))?)
            }
            (Method::Es(_), PrivateKeyDer::Pkcs8(der)) => Signer::Ecdsa(
                EcdsaKeyPair::from_pkcs8(method.ecdsa_signing(), der.secret_pkcs8_der(), &random)
                    .map_err(|e| bad(&e))?,
            ),
            (Method::Es(_), PrivateKeyDer::Sec1(der)) => {
                let (scalar, point) = sec1_parts(der.secret_sec1_der())
                    .ok_or_else(|| bad(&"not an EC private key"))?;
                let point = point.unwrap_or_else(|| public_key.clone());
                Signer::Ecdsa(
                    EcdsaKeyPair::from_private_key_and_public_key(
                        method.ecdsa_signing(),
                        &scalar,
                        &point,
                        &random,
                    )
                    .map_err(|e| bad(&e))?,
                )
            }
            _ => return Err(bad(&format!("not a key for {}", method.name()))),
        };
        Ok(JwtTokens {
            method,
            signer,
            public_key,
            ttl,
            random,
        })
    }

    /// A token for `username` at auth `revision`, expiring a TTL from now.
    pub(super) fn sign(&self, username: &str, revision: u64) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let header = serde_json::json!({"alg": self.method.name(), "typ": "JWT"});
        let claims = serde_json::json!({
            "username": username,
            "revision": revision,
            "exp": (now + self.ttl).as_secs(),
        });
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = match &self.signer {
            Signer::Rsa(key) => {
                let mut signature = vec![0; key.public().modulus_len()];
                key.sign(
                    self.method.rsa_encoding(),
                    &self.random,
                    signed.as_bytes(),
                    &mut signature,
                )
                .expect("an RSA key signs");
                signature
            }
            Signer::Ecdsa(key) => key
                .sign(&self.random, signed.as_bytes())
                .expect("an ECDSA key signs")
                .as_ref()
                .to_vec(),
        };
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// The user a token names, if its signature is this key's and it has not expired.
    pub(super) fn verify(&self, token: &str) -> Option<String> {
        let (signed, signature) = token.rsplit_once('.')?;
        let (header, claims) = signed.split_once('.')?;
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
        if header.get("alg")?.as_str()? != self.method.name() {
            return None;
        }
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        signature::UnparsedPublicKey::new(self.method.verification(), &self.public_key)
            .verify(signed.as_bytes(), &signature)
            .ok()?;
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).ok()?).ok()?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        if claims.get("exp")?.as_u64()? <= now {
            return None;
        }
        Some(claims.get("username")?.as_str()?.to_string())
    }
}

/// A token lifetime as etcd's `ttl=` option takes it: a non-zero Go duration (`5m`, `30s`).
fn parse_ttl(text: &str) -> Option<Duration> {
    parse_go_duration(text).filter(|ttl| !ttl.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(dir: &Path, algorithm: &'static rcgen::SignatureAlgorithm) -> (String, String) {
        let key = rcgen::KeyPair::generate_for(algorithm).expect("key");
        let private = dir.join("jwt.key");
        let public = dir.join("jwt.pub");
        std::fs::write(&private, key.serialize_pem()).expect("write");
        std::fs::write(&public, key.public_key_pem()).expect("write");
        (public.display().to_string(), private.display().to_string())
    }

    #[test]
    fn a_token_signed_by_one_member_is_accepted_by_another_with_the_public_key() {
        let dir = std::env::temp_dir().join(format!("tally-jwt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let (public, private) = keys(&dir, &rcgen::PKCS_ECDSA_P256_SHA256);
        let options = format!("pub-key={public},priv-key={private},sign-method=ES256,ttl=5m");
        let one = JwtTokens::from_options(&options).expect("keys load");
        let other = JwtTokens::from_options(&options).expect("keys load");
        let token = one.sign("alice", 7);
        assert_eq!(token.split('.').count(), 3);
        assert_eq!(other.verify(&token), Some("alice".to_string()));
        // A changed claim or signature is refused.
        let mut forged: Vec<&str> = token.split('.').collect();
        let claims =
            URL_SAFE_NO_PAD.encode(r#"{"username":"root","revision":7,"exp":99999999999}"#);
        forged[1] = &claims;
        assert_eq!(other.verify(&forged.join(".")), None);
        assert_eq!(other.verify("not.a.token"), None);
        assert_eq!(other.verify(""), None);
        // Another key pair's tokens are not this one's.
        let (public2, private2) = keys(&dir.join(""), &rcgen::PKCS_ECDSA_P384_SHA384);
        let stranger = JwtTokens::from_options(&format!(
            "pub-key={public2},priv-key={private2},sign-method=ES384"
        ))
        .expect("keys load");
        assert_eq!(other.verify(&stranger.sign("alice", 7)), None);
        assert!(JwtTokens::from_options("pub-key=x,priv-key=y,sign-method=HS256").is_err());
        assert!(JwtTokens::from_options(&format!("pub-key={public}")).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn ttls_read_as_go_durations() {
        assert_eq!(parse_ttl("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_ttl("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_ttl("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_ttl("5"), None);
        assert_eq!(parse_ttl("0s"), None);
    }
}
