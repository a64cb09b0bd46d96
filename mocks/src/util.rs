//! Small helpers shared by the mocks.

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A random identifier of `len` base62 characters (Mailpit IDs are 22, Netcup session ids 32).
pub(crate) fn random_id(len: usize) -> String {
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let mut n: u128 = rand::random();
        // 21 full base62 digits fit in 128 bits.
        for _ in 0..21 {
            if out.len() == len {
                break;
            }
            out.push(BASE62[(n % 62) as usize] as char);
            n /= 62;
        }
    }
    out
}

/// Decodes an HTTP Basic `Authorization` header value into (user, password).
pub(crate) fn basic_auth(header: &str) -> Option<(String, Option<String>)> {
    use base64::Engine;
    let encoded = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    match text.split_once(':') {
        Some((u, p)) => Some((u.to_string(), Some(p.to_string()))),
        None => Some((text, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_have_the_requested_length_and_differ() {
        let a = random_id(22);
        let b = random_id(22);
        assert_eq!(a.len(), 22);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(random_id(32).len(), 32);
    }

    #[test]
    fn basic_auth_splits_on_the_first_colon() {
        // "42:key:with:colons"
        let h = "Basic NDI6a2V5OndpdGg6Y29sb25z";
        assert_eq!(
            basic_auth(h),
            Some(("42".into(), Some("key:with:colons".into())))
        );
        assert_eq!(basic_auth("Bearer x"), None);
    }
}
