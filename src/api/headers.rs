//! One layer of security headers on every answer of the router (`tower-http`'s `SetResponseHeader`):
//! the console, the policy page, the static files and every `/api/*` answer alike.
//!
//! - `Content-Security-Policy`: scripts and styles only from the box's own files (the console's script
//!   and style sheet are served files, no `'unsafe-inline'`); the policy page's one `<style>` is allowed
//!   and the compliance report's by their hashes; `frame-ancestors 'none'` (no framing, so no clickjacking of the login form).
//! - `X-Frame-Options: DENY` for browsers that predate `frame-ancestors`; `X-Content-Type-Options:
//!   nosniff`; `Referrer-Policy: no-referrer`; `Strict-Transport-Security` (one year); `Cache-Control:
//!   no-store` (tokens, search results and read details must not sit in a browser or proxy cache).

use axum::Router;
use axum::http::{HeaderValue, header};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use tower_http::set_header::SetResponseHeaderLayer;

/// The Content-Security-Policy of every answer.
pub fn content_security_policy() -> String {
    let style =
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(crate::config::policy::HTML_STYLE.as_bytes()));
    let report =
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(crate::access::report::HTML_STYLE.as_bytes()));
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self' 'sha256-{style}' 'sha256-{report}'; img-src 'self' blob:; connect-src 'self'; \
         form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )
}

/// The fixed headers, by name and value.
pub fn security_headers() -> Vec<(header::HeaderName, HeaderValue)> {
    let csp = HeaderValue::from_str(&content_security_policy())
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"));
    vec![
        (header::CONTENT_SECURITY_POLICY, csp),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        (header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ]
}

/// The router with the headers set on every answer (overriding any a handler set).
pub fn secure<S: Clone + Send + Sync + 'static>(mut r: Router<S>) -> Router<S> {
    for (name, value) in security_headers() {
        r = r.layer(SetResponseHeaderLayer::overriding(name, value));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_no_inline_script_and_no_framing() {
        let csp = content_security_policy();
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self';"), "{csp}");
        assert!(HeaderValue::from_str(&csp).is_ok());
    }
}
