//! The end users' self-service page at `/self/`: the Vite build of `ui/src/self` (in
//! `ui/dist-self`, built before the crate), embedded in the binary. Same origin as the API, so
//! no CORS is needed; a strict Content-Security-Policy (scripts of this origin only) so a
//! string that reached the page could not run.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

#[derive(rust_embed::Embed)]
#[folder = "../../ui/dist-self/"]
// A build of the crate without the page (the UI not built yet) still compiles; `/self/` then
// says what is missing.
#[allow_missing = true]
struct Page;

/// Mantine sets style attributes and one style element at run time, hence the styles' inline.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'self'";

fn file(path: &str) -> Response {
    let Some(f) = Page::get(path) else {
        if Page::iter().next().is_none() {
            return (
                StatusCode::NOT_FOUND,
                "the self-service page was not built into this binary (cd ui && npm run build)",
            )
                .into_response();
        }
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    // Assets carry their hash in the name; the page itself is asked for again each time.
    let cache = if path.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mime = f.metadata.mimetype().to_owned();
    let mut r = (
        [
            (header::CONTENT_TYPE, mime),
            (header::CACHE_CONTROL, cache.to_owned()),
        ],
        f.data.into_owned(),
    )
        .into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

pub(crate) async fn self_root() -> Redirect {
    Redirect::permanent("/self/")
}

pub(crate) async fn self_index() -> Response {
    file("index.html")
}

pub(crate) async fn self_file(Path(path): Path<String>) -> Response {
    file(&path)
}
