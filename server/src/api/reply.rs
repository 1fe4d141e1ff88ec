//! How a handler renders the result of its use case besides `200` with the
//! JSON ([`axum::Json`]) and `204 No Content` ([`axum::http::StatusCode`]):
//! `201 Created` with the JSON. Errors render as [`crate::error::ApiError`].

use axum::Json;
use axum::http::StatusCode;

/// A `201 Created` answer with its JSON body.
pub type Created<T> = (StatusCode, Json<T>);

/// An answer that is only a message: `{message}`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Message {
    pub message: String,
}

impl Message {
    pub fn json(message: &str) -> Json<Message> {
        Json(Message {
            message: message.to_owned(),
        })
    }
}

/// `201 Created` with `value` as the body.
pub fn created<T>(value: T) -> Created<T> {
    (StatusCode::CREATED, Json(value))
}
