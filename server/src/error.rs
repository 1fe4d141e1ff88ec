//! The one API error type. Every failure of a handler becomes an `ApiError`, and
//! this file alone maps errors to status codes and bodies. 5xx bodies say
//! nothing internal; the real error is logged in the request's span.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Validation {
    pub field: String,
    pub detail: String,
}

/// The JSON error body: `{message, detail?, validations?}`.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorBody {
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub validations: Vec<Validation>,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
    /// The internal cause, logged, never sent.
    pub internal: Option<String>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                message: message.into(),
                detail: None,
                validations: Vec::new(),
            },
            internal: None,
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.body.detail = Some(detail.into());
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// A 400 naming the offending field.
    pub fn validation(field: &str, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        let mut e = Self::new(
            StatusCode::BAD_REQUEST,
            format!("invalid `{field}`: {detail}"),
        );
        e.body.validations.push(Validation {
            field: field.to_owned(),
            detail,
        });
        e
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    /// An error with a status given as a number (403 if it is not one).
    pub fn with_status(status: u16, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN),
            message,
        )
    }

    /// A 403 saying why.
    pub fn refused(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden: the policies do not allow this action",
        )
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("{what} not found"))
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let mut e = Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal server error");
        e.internal = Some(cause.to_string());
        e
    }

    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, "service unavailable");
        e.internal = Some(cause.to_string());
        e
    }
}

impl ApiError {
    /// Maps a unique-constraint violation to 409 with `message` (what already
    /// exists), any other database error as usual. The one place 409s for
    /// duplicates are made.
    pub fn on_unique(message: impl Into<String>) -> impl FnOnce(sqlx::Error) -> ApiError {
        let message = message.into();
        move |e| {
            if crate::db::is_unique_violation(&e) {
                ApiError::conflict(message)
            } else {
                e.into()
            }
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        if crate::db::is_unique_violation(&err) {
            return ApiError::conflict("a resource with these values already exists");
        }
        match err {
            sqlx::Error::PoolTimedOut => ApiError::unavailable(err),
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, error = self.internal.as_deref().unwrap_or(""), "request failed");
        }
        (self.status, axum::Json(self.body)).into_response()
    }
}
