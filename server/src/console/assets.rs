//! The console's static files (`server/static/`), embedded in the binary and
//! served under a name carrying a hash of their content
//! (`/static/console.3f9a1c2b.css`), so a browser may keep them for a year
//! and a new build is fetched at once. No CDN, no external fonts.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

const CSS: &[u8] = include_bytes!("../../static/console.css");
const JS: &[u8] = include_bytes!("../../static/console.js");

/// `stem.<first 8 hex of SHA-256>.ext`.
fn hashed(stem: &str, ext: &str, content: &[u8]) -> String {
    let digest = hex::encode(Sha256::digest(content));
    format!("{stem}.{}.{ext}", &digest[..8])
}

static CSS_NAME: LazyLock<String> = LazyLock::new(|| hashed("console", "css", CSS));
static JS_NAME: LazyLock<String> = LazyLock::new(|| hashed("console", "js", JS));
static CSS_PATH: LazyLock<String> = LazyLock::new(|| format!("/static/{}", *CSS_NAME));
static JS_PATH: LazyLock<String> = LazyLock::new(|| format!("/static/{}", *JS_NAME));

/// The path of the stylesheet, for the layout.
pub fn css_path() -> &'static str {
    CSS_PATH.as_str()
}

/// The path of the script, for the layout.
pub fn js_path() -> &'static str {
    JS_PATH.as_str()
}

/// `GET /static/{file}`: an embedded file by its hashed name, cached for a
/// year (`immutable`); any other name is a 404.
pub async fn serve(Path(file): Path<String>) -> Response {
    let (body, content_type) = if file == *CSS_NAME {
        (CSS, "text/css; charset=utf-8")
    } else if file == *JS_NAME {
        (JS, "text/javascript; charset=utf-8")
    } else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    (StatusCode::OK, h, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_names_carry_their_content_hash() {
        assert!(css_path().starts_with("/static/console."));
        assert!(css_path().ends_with(".css"));
        assert_ne!(
            hashed("console", "css", b"a"),
            hashed("console", "css", b"b")
        );
        assert_eq!(hashed("x", "js", b"a").len(), "x.12345678.js".len());
    }
}
