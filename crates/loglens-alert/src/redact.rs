//! Keeping secrets out of everything alerting prints or stores: receiver URLs carry credentials
//! (`user:pw@`, `?token=`, the token path of Slack and Discord webhooks), headers and SMTP
//! passwords too. Every message, outbox file and history row goes through [`scrub`].

/// What replaces a secret.
pub const MASK: &str = "***";

/// Header names whose values are secrets (compared lowercase, by substring).
const SECRET_HEADER_WORDS: [&str; 7] = [
    "authorization",
    "token",
    "secret",
    "key",
    "cookie",
    "password",
    "signature",
];

/// Whether a header's value should be treated as a secret.
pub fn is_secret_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_HEADER_WORDS.iter().any(|w| lower.contains(w))
}

/// The URL with its credentials masked: userinfo, every query value, and path segments that look
/// like tokens (Slack's `/services/T…/B…/xxxx`, Discord's `/api/webhooks/<id>/<token>`).
pub fn url(text: &str) -> String {
    let mut out = text.to_owned();
    for secret in url_secrets(text) {
        out = out.replace(&secret, MASK);
    }
    out
}

/// The secret parts of a URL, longest first, for [`scrub`].
pub fn url_secrets(text: &str) -> Vec<String> {
    let mut secrets = Vec::new();
    let Some((_, rest)) = text.split_once("://") else {
        return secrets;
    };
    let (authority, path_and_query) = rest
        .find(['/', '?', '#'])
        .map_or((rest, ""), |i| rest.split_at(i));
    if let Some((userinfo, _)) = authority.rsplit_once('@') {
        secrets.push(userinfo.to_owned());
    }
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let slack = authority.ends_with("hooks.slack.com") && segments.first() == Some(&"services");
    let discord = segments.windows(2).any(|w| w == ["api", "webhooks"]);
    for (i, segment) in segments.iter().enumerate() {
        let known_token = (slack && i >= 1) || (discord && i >= 3);
        if known_token || looks_like_token(segment) {
            secrets.push((*segment).to_owned());
        }
    }
    let query = query.split('#').next().unwrap_or_default();
    for pair in query.split('&') {
        if let Some((_, value)) = pair.split_once('=') {
            secrets.push(value.to_owned());
        }
    }
    secrets.retain(|s| !s.is_empty());
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets
}

/// Why this heuristic? Webhook services put tokens in the path; a long run of letters and digits
/// mixed (unlike `hook`, `api`, `v1` or a date) is almost always one.
fn looks_like_token(segment: &str) -> bool {
    segment.len() >= 20
        && segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && segment.chars().any(|c| c.is_ascii_digit())
        && segment.chars().any(|c| c.is_ascii_alphabetic())
}

/// `text` with every non-empty secret replaced by [`MASK`].
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    let mut sorted: Vec<&String> = secrets.iter().filter(|s| !s.is_empty()).collect();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for s in sorted {
        out = out.replace(s.as_str(), MASK);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_userinfo_query_values_and_token_paths() {
        assert_eq!(
            url("https://bob:pw@example.com/hook"),
            "https://***@example.com/hook"
        );
        assert_eq!(
            url("https://example.com/hook?token=abc123&team=sre"),
            "https://example.com/hook?token=***&team=***"
        );
        assert_eq!(
            url("https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX"),
            "https://hooks.slack.com/services/***/***/***"
        );
        assert_eq!(
            url("https://discord.com/api/webhooks/123456/tok-en_value"),
            "https://discord.com/api/webhooks/123456/***"
        );
        assert_eq!(
            url("https://example.com/x/a1b2c3d4e5f6a7b8c9d0e1f2"),
            "https://example.com/x/***"
        );
        assert_eq!(url("http://127.0.0.1:9000/hook"), "http://127.0.0.1:9000/hook");
    }

    #[test]
    fn scrub_masks_every_secret_and_ignores_empty_ones() {
        let secrets = vec!["hunter2".to_owned(), String::new()];
        assert_eq!(scrub("auth hunter2 failed", &secrets), "auth *** failed");
        assert!(is_secret_header("X-Api-Key") && is_secret_header("Authorization"));
        assert!(!is_secret_header("X-Team"));
    }
}
