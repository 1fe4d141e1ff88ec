//! Console forms: urlencoded bodies carrying the session's CSRF token (checked
//! on top of the same-origin guard every cookie write passes), the errors of
//! a refused operation shown next to their fields, and POST-redirect-GET with
//! a flash message carried by a short-lived cookie.

use std::collections::BTreeMap;

use askama::Template;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde::de::DeserializeOwned;

use super::page::{PageError, Viewer, redirect, render};
use crate::api::csrf::{append_cookie, origin_of};
use crate::api::extract::invalid_text;
use crate::error::{Error, Kind};

/// The flash cookie: the message of the page a form redirected to.
const FLASH_COOKIE: &str = "orgsync_flash";
/// How long a flash waits for its page.
const FLASH_SECONDS: i64 = 60;

/// A message shown once on the page after a redirect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    /// `success` or `error`: the CSS class of the banner.
    pub kind: &'static str,
    pub message: String,
}

/// Percent-encodes `s` for a query string or a cookie value.
pub fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The flash message the browser carries, if any.
pub fn read_flash(headers: &HeaderMap) -> Option<Flash> {
    let raw = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == FLASH_COOKIE)
        .map(|(_, v)| v.to_owned())?;
    let decoded: String = form_urlencoded::parse(format!("m={raw}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())?;
    let (kind, message) = decoded.split_once(':')?;
    let kind = match kind {
        "success" => "success",
        "error" => "error",
        _ => return None,
    };
    let message: String = message.chars().take(500).collect();
    (!message.is_empty()).then_some(Flash { kind, message })
}

/// Clears the flash cookie (the page showing it is being sent).
pub fn clear_flash(headers: &mut HeaderMap, access_url: &str) {
    append_cookie(headers, access_url, FLASH_COOKIE, "", "/", 0);
}

/// POST-redirect-GET: a 303 to `location` carrying a flash message.
pub fn redirect_with(
    viewer: &Viewer,
    location: &str,
    kind: &'static str,
    message: &str,
) -> Response {
    let mut resp = redirect(location);
    let value = encode(&format!("{kind}:{message}"));
    append_cookie(
        resp.headers_mut(),
        &viewer.app.config.access_url,
        FLASH_COOKIE,
        &value,
        "/",
        FLASH_SECONDS,
    );
    resp
}

/// Parses an urlencoded form and checks its `csrf` field against the
/// viewer's session. A wrong or missing token is a 403 page; text the
/// databases cannot store (NUL) is a 400 naming the field.
pub fn parse<T: DeserializeOwned>(viewer: &Viewer, body: &Bytes) -> Result<T, PageError> {
    let fields = fields(body)?;
    let token = fields.get("csrf").map(String::as_str).unwrap_or_default();
    viewer
        .actor
        .verify_csrf(token)
        .map_err(|_| csrf_refused())?;
    decode(body)
}

/// A form with nothing but its CSRF token (a button).
#[derive(Debug, serde::Deserialize)]
pub struct CsrfOnly {}

/// The 403 of a form whose CSRF token is missing or another session's.
pub fn csrf_refused() -> PageError {
    PageError(Error::refused(
        "This form is out of date or was sent from another site. Reload the page and try again.",
    ))
}

/// The fields of an urlencoded body (the last value of a repeated name).
pub fn fields(body: &Bytes) -> Result<BTreeMap<String, String>, PageError> {
    let mut out = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(body) {
        if let Some(detail) = invalid_text(&k).or_else(|| invalid_text(&v)) {
            return Err(PageError(Error::validation(&k, detail)));
        }
        out.insert(k.into_owned(), v.into_owned());
    }
    Ok(out)
}

/// Decodes an urlencoded body into `T` (fields it does not name ignored).
pub fn decode<T: DeserializeOwned>(body: &Bytes) -> Result<T, PageError> {
    serde_urlencoded::from_bytes(body)
        .map_err(|e| PageError(Error::bad_request("invalid form").with_detail(e.to_string())))
}

/// A form that needs no session (login, setup) must still come from this
/// server's pages: `Sec-Fetch-Site: same-origin`, or an `Origin` equal to the
/// access URL's. (Forms of a session are held to this by the server-wide
/// guard of cookie writes, `api::csrf::guard`.)
pub fn same_origin(headers: &HeaderMap, access_url: &str) -> Result<(), PageError> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let own = origin_of(access_url);
    let fetch_ok = get("sec-fetch-site").is_none_or(|v| v == "same-origin" || v == "none");
    let origin_ok = match get("origin") {
        Some(o) => own.is_some() && origin_of(o) == own,
        None => get("sec-fetch-site") == Some("same-origin"),
    };
    if fetch_ok && origin_ok {
        Ok(())
    } else {
        Err(PageError(Error::refused(
            "This form was sent from another site. Open the page on this server and try again.",
        )))
    }
}

/// A form that needs no session (login, setup): from this server's pages
/// ([`same_origin`]), its text storable, decoded into `T`.
pub fn public<T: DeserializeOwned>(
    headers: &HeaderMap,
    access_url: &str,
    body: &Bytes,
) -> Result<T, PageError> {
    same_origin(headers, access_url)?;
    fields(body)?;
    decode(body)
}

/// The status of a page showing `e` next to its form.
pub fn status_of(e: &Error) -> StatusCode {
    StatusCode::from_u16(e.kind.code()).unwrap_or(StatusCode::BAD_REQUEST)
}

/// Where a form that succeeded goes, and the message it shows there.
pub struct Done {
    pub to: String,
    pub message: String,
}

impl Done {
    pub fn new(to: impl Into<String>, message: impl Into<String>) -> Done {
        Done {
            to: to.into(),
            message: message.into(),
        }
    }
}

/// The answer to a form post (POST-redirect-GET): on success a redirect
/// carrying `done`'s message; when the operation refused the input
/// (validation, conflict), the form's page again, built by `again` with the
/// errors next to their fields, at the error's status; any other error
/// (404, 403, 5xx) its own page.
pub async fn answer<T, P, F>(
    viewer: &Viewer,
    result: Result<T, Error>,
    done: impl FnOnce(T) -> Done,
    again: impl FnOnce(FormErrors) -> F,
) -> Result<Response, PageError>
where
    P: Template,
    F: Future<Output = Result<P, PageError>>,
{
    match result {
        Ok(v) => {
            let d = done(v);
            Ok(redirect_with(viewer, &d.to, "success", &d.message))
        }
        Err(e) => {
            let status = status_of(&e);
            let errors = FormErrors::from_refusal(e)?;
            let page = again(errors).await?;
            Ok(render(&viewer.app, status, &page, false))
        }
    }
}

/// The answer to a button of a list (remove, suspend, run): back to `back`
/// with a success or an error banner; errors that are not about the input
/// (404, 5xx) get their own page.
pub fn answer_back<T>(
    viewer: &Viewer,
    back: &str,
    result: Result<T, Error>,
    done: impl FnOnce(T) -> String,
) -> Result<Response, PageError> {
    match result {
        Ok(v) => Ok(redirect_with(viewer, back, "success", &done(v))),
        Err(e) => {
            let errors = FormErrors::from_error(e)?;
            Ok(redirect_with(viewer, back, "error", errors.top()))
        }
    }
}

/// `e` with its validation of field `from` shown at the form's field `to`.
pub fn rename_field(mut e: Error, from: &str, to: &str) -> Error {
    for v in &mut e.body.validations {
        if v.field == from {
            v.field = to.to_owned();
        }
    }
    e
}

/// A typed confirmation of a deletion: `typed` must be `name`.
pub fn confirmed(typed: &str, name: &str) -> Result<(), Error> {
    if typed.trim() == name {
        Ok(())
    } else {
        Err(Error::validation(
            "confirm",
            format!("type `{name}` to confirm"),
        ))
    }
}

/// The errors of a refused form: the message on top and one per field.
#[derive(Debug, Default, Clone)]
pub struct FormErrors {
    pub message: Option<String>,
    pub fields: BTreeMap<String, String>,
}

impl FormErrors {
    /// What `e` says about the form, or `Err(e)` for errors that are not
    /// about the input (404, 403, 5xx: their own pages).
    pub fn from_error(e: Error) -> Result<FormErrors, PageError> {
        match e.kind {
            Kind::Invalid | Kind::Conflict | Kind::Throttled | Kind::TooLarge => {
                let message = e.body.message.clone();
                Ok(FormErrors::naming(&e, message))
            }
            Kind::Other(code) if (400..500).contains(&code) && code != 404 && code != 403 => {
                Ok(FormErrors::message(e.body.message))
            }
            _ => Err(PageError(e)),
        }
    }

    /// [`FormErrors::from_error`], and also a refusal of the grant rule (a
    /// 403 naming the field that asked for more than the caller may give),
    /// which is about the input: shown on the form with its detail.
    pub fn from_refusal(e: Error) -> Result<FormErrors, PageError> {
        if e.kind == Kind::Forbidden && !e.body.validations.is_empty() {
            let message = match &e.body.detail {
                Some(d) => format!("{}: {d}", e.body.message),
                None => e.body.message.clone(),
            };
            return Ok(FormErrors::naming(&e, message));
        }
        FormErrors::from_error(e)
    }

    /// `message` on top and the fields `e` names.
    fn naming(e: &Error, message: String) -> FormErrors {
        FormErrors {
            message: Some(message),
            fields: e
                .body
                .validations
                .iter()
                .map(|v| (v.field.clone(), v.detail.clone()))
                .collect(),
        }
    }

    /// The form-level message only.
    pub fn message(message: impl Into<String>) -> FormErrors {
        FormErrors {
            message: Some(message.into()),
            fields: BTreeMap::new(),
        }
    }

    /// One field's error.
    pub fn field(field: &str, detail: impl Into<String>) -> FormErrors {
        let detail = detail.into();
        let mut fields = BTreeMap::new();
        fields.insert(field.to_owned(), detail.clone());
        FormErrors {
            message: Some(format!("Check the `{field}` field: {detail}")),
            fields,
        }
    }

    /// The error of `field`, or "" (templates test it with `is_empty`).
    pub fn of(&self, field: &str) -> &str {
        self.fields.get(field).map_or("", String::as_str)
    }

    pub fn any(&self) -> bool {
        self.message.is_some() || !self.fields.is_empty()
    }

    pub fn top(&self) -> &str {
        self.message.as_deref().unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn flash_messages_round_trip_through_the_cookie() {
        let mut h = HeaderMap::new();
        let value = encode("success:Created `data-platform`; saved");
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=b; {FLASH_COOKIE}={value}"))
                .unwrap_or(HeaderValue::from_static("")),
        );
        assert_eq!(
            read_flash(&h),
            Some(Flash {
                kind: "success",
                message: "Created `data-platform`; saved".to_owned()
            })
        );
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("orgsync_flash=weird%3Ahello"),
        );
        assert_eq!(read_flash(&h), None, "unknown kinds are dropped");
    }

    #[test]
    fn anonymous_forms_must_be_same_origin() {
        let site = "http://127.0.0.1:3000";
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_static(v));
            }
            h
        };
        assert!(same_origin(&h(&[("origin", "http://127.0.0.1:3000")]), site).is_ok());
        assert!(same_origin(&h(&[("sec-fetch-site", "same-origin")]), site).is_ok());
        assert!(same_origin(&h(&[("origin", "http://evil.example")]), site).is_err());
        assert!(
            same_origin(
                &h(&[
                    ("sec-fetch-site", "cross-site"),
                    ("origin", "http://127.0.0.1:3000")
                ]),
                site
            )
            .is_err()
        );
        assert!(same_origin(&h(&[]), site).is_err(), "no origin at all");
        assert!(same_origin(&h(&[("origin", "null")]), site).is_err());
    }

    #[test]
    fn refused_operations_map_to_field_errors() {
        let e = Error::validation("name", "must be a slug");
        let f = FormErrors::from_error(e).map_err(|_| "not a form error");
        assert_eq!(f.as_ref().map(|f| f.of("name")), Ok("must be a slug"));
        assert!(FormErrors::from_error(Error::not_found("organization")).is_err());
        assert!(FormErrors::from_error(Error::forbidden()).is_err());
        assert!(FormErrors::from_error(Error::internal("boom")).is_err());
    }
}
