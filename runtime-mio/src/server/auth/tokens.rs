//! etcd's simple tokens: a random string given to a user by `Authenticate`, good on every
//! member for `--auth-token-ttl` after its last use. The log carries only its SHA-256 (the
//! `Authenticate` entry), so every member learns it without any file holding the token.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ring::rand::{SecureRandom, SystemRandom};

/// Tokens known at once; past it the one that expires first is dropped.
pub(super) const TOKENS_MAX: usize = 100_000;
/// Letters of a token before its `.<sequence>` (etcd's simple tokens have 16).
const TOKEN_LETTERS: usize = 16;

/// The SHA-256 of a token, in hex: what the log and the table hold.
pub(super) fn token_hash(token: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest.as_ref() {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    hex
}

#[derive(Debug)]
struct Token {
    user: String,
    expires_at: Instant,
}

/// The tokens this member knows, by hash.
#[derive(Debug)]
pub(super) struct SimpleTokens {
    by_hash: HashMap<String, Token>,
    ttl: Duration,
    sequence: u64,
    random: SystemRandom,
}

impl SimpleTokens {
    pub(super) fn new(ttl: Duration) -> Self {
        SimpleTokens {
            by_hash: HashMap::new(),
            ttl,
            sequence: 0,
            random: SystemRandom::new(),
        }
    }

    /// A new token: 16 random letters, a dot and a sequence number, as etcd's look.
    pub(super) fn generate(&mut self) -> String {
        let mut bytes = [0u8; TOKEN_LETTERS];
        self.random
            .fill(&mut bytes)
            .expect("the system's random source works");
        self.sequence += 1;
        let letters: String = bytes
            .iter()
            .map(|b| char::from(b'a' + b % 26))
            .collect::<String>();
        let mixed: String = letters
            .chars()
            .zip(bytes.iter())
            .map(|(c, b)| {
                if b & 0x80 != 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
        format!("{mixed}.{}", self.sequence)
    }

    /// A token was given to `user` (its `Authenticate` applied here).
    pub(super) fn insert(&mut self, hash: String, user: String, now: Instant) {
        if self.by_hash.len() >= TOKENS_MAX && !self.by_hash.contains_key(&hash) {
            if let Some(oldest) = self
                .by_hash
                .iter()
                .min_by_key(|(_, t)| t.expires_at)
                .map(|(h, _)| h.clone())
            {
                self.by_hash.remove(&oldest);
            }
        }
        let expires_at = now + self.ttl;
        self.by_hash.insert(hash, Token { user, expires_at });
    }

    /// The user `token` was given to, if it is known and not expired; using it keeps it alive.
    pub(super) fn user_of(&mut self, token: &str, now: Instant) -> Option<&str> {
        let ttl = self.ttl;
        let entry = self.by_hash.get_mut(&token_hash(token))?;
        if entry.expires_at <= now {
            return None;
        }
        entry.expires_at = now + ttl;
        Some(&entry.user)
    }

    /// Forgets the expired tokens.
    pub(super) fn expire(&mut self, now: Instant) {
        self.by_hash.retain(|_, token| token.expires_at > now);
    }

    /// Forgets every token given to `user`.
    pub(super) fn forget_user(&mut self, user: &str) {
        self.by_hash.retain(|_, token| token.user != user);
    }

    /// Forgets every token: authentication was turned off.
    pub(super) fn clear(&mut self) {
        self.by_hash.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_known_by_its_hash_until_it_idles_past_its_ttl() {
        let start = Instant::now();
        let mut tokens = SimpleTokens::new(Duration::from_secs(300));
        let token = tokens.generate();
        let (letters, sequence) = token.split_once('.').expect("letters.sequence");
        assert_eq!((letters.len(), sequence), (16, "1"));
        assert_ne!(tokens.generate(), token, "tokens differ");
        tokens.insert(token_hash(&token), "alice".into(), start);
        assert_eq!(tokens.user_of(&token, start), Some("alice"));
        assert_eq!(tokens.user_of("someone-elses.1", start), None);
        // Used at 200 s: alive until 500 s.
        let used = start + Duration::from_secs(200);
        assert_eq!(tokens.user_of(&token, used), Some("alice"));
        assert_eq!(
            tokens.user_of(&token, start + Duration::from_secs(450)),
            Some("alice")
        );
        let idle = start + Duration::from_secs(450 + 300);
        assert_eq!(
            tokens.user_of(&token, idle),
            None,
            "expired after idling a TTL"
        );
        tokens.expire(idle);
        assert!(tokens.by_hash.is_empty());
        // A user's new password ends its tokens, and only its own.
        let (alice, bob) = (tokens.generate(), tokens.generate());
        tokens.insert(token_hash(&alice), "alice".into(), start);
        tokens.insert(token_hash(&bob), "bob".into(), start);
        tokens.forget_user("alice");
        assert_eq!(tokens.user_of(&alice, start), None);
        assert_eq!(tokens.user_of(&bob, start), Some("bob"));
        assert_eq!(token_hash("x").len(), 64);
    }
}
