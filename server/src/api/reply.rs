//! How a handler renders the result of its use case besides `200` with the
//! JSON ([`axum::Json`]) and `204 No Content` ([`axum::http::StatusCode`]):
//! `201 Created` with the JSON. Errors render as [`crate::error::ApiError`].

use axum::Json;
use axum::http::StatusCode;

/// A `201 Created` answer with its JSON body.
pub type Created<T> = (StatusCode, Json<T>);

/// `201 Created` with `value` as the body.
pub fn created<T>(value: T) -> Created<T> {
    (StatusCode::CREATED, Json(value))
}
