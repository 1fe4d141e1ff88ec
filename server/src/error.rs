//! The error of an operation, in the domain's terms: what kind of failure it
//! is (invalid input, not allowed, not found, a conflict, ...), a message for
//! the caller, the invalid fields, and an internal cause that is logged, never
//! shown. The use cases, the model's parsers and the policy layer return it;
//! each adapter maps the kind to its own answer (the HTTP API to a status code
//! and `{message, detail?, validations?}`, in `api/mod.rs`).

use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Validation {
    pub field: String,
    pub detail: String,
}

/// The JSON error body: `{message, detail?, validations?}`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The invalid fields, when the input was refused field by field.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    pub validations: Vec<Validation>,
}

/// What kind of failure an error is. Each has the numeric answer code the
/// audit log records (the HTTP status the API answers with).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Invalid,
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    TooLarge,
    Throttled,
    Internal,
    Unavailable,
    /// Another answer code (given by a planner's refusal, or an adapter).
    Other(u16),
}

impl Kind {
    pub fn code(self) -> u16 {
        match self {
            Kind::Invalid => 400,
            Kind::Unauthenticated => 401,
            Kind::Forbidden => 403,
            Kind::NotFound => 404,
            Kind::Conflict => 409,
            Kind::TooLarge => 413,
            Kind::Throttled => 429,
            Kind::Internal => 500,
            Kind::Unavailable => 503,
            Kind::Other(code) => code,
        }
    }

    pub fn from_code(code: u16) -> Kind {
        [
            Kind::Invalid,
            Kind::Unauthenticated,
            Kind::Forbidden,
            Kind::NotFound,
            Kind::Conflict,
            Kind::TooLarge,
            Kind::Throttled,
            Kind::Internal,
            Kind::Unavailable,
        ]
        .into_iter()
        .find(|k| k.code() == code)
        .unwrap_or(Kind::Other(code))
    }

    pub fn is_internal(self) -> bool {
        self.code() >= 500
    }
}

#[derive(Debug)]
pub struct Error {
    pub kind: Kind,
    pub body: ErrorBody,
    /// The internal cause, logged, never sent.
    pub internal: Option<String>,
}

/// `Result` with [`Error`] unless said otherwise.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The names the HTTP adapters know it by.
pub type ApiError = Error;
pub type ApiResult<T> = Result<T>;

impl Error {
    pub fn of(kind: Kind, message: impl Into<String>) -> Self {
        Self {
            kind,
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

    /// The answer code of the audit log (the HTTP status).
    pub fn status_code(&self) -> u16 {
        self.kind.code()
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::of(Kind::Invalid, message)
    }

    /// A 400 naming the offending field.
    pub fn validation(field: &str, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        let mut e = Self::of(Kind::Invalid, format!("invalid `{field}`: {detail}"));
        e.body.validations.push(Validation {
            field: field.to_owned(),
            detail,
        });
        e
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::of(Kind::Unauthenticated, message)
    }

    /// An error with a status given as a number (403 if it is not one).
    pub fn with_status(status: u16, message: impl Into<String>) -> Self {
        Self::of(Kind::from_code(status), message)
    }

    /// A 403 saying why.
    pub fn refused(message: impl Into<String>) -> Self {
        Self::of(Kind::Forbidden, message)
    }

    pub fn forbidden() -> Self {
        Self::of(
            Kind::Forbidden,
            "forbidden: the policies do not allow this action",
        )
    }

    pub fn not_found(what: &str) -> Self {
        Self::of(Kind::NotFound, format!("{what} not found"))
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::of(Kind::Conflict, message)
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let mut e = Self::of(Kind::Internal, "internal server error");
        e.internal = Some(cause.to_string());
        e
    }

    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        let mut e = Self::of(Kind::Unavailable, "service unavailable");
        e.internal = Some(cause.to_string());
        e
    }
}

impl Error {
    /// Maps a unique-constraint violation to 409 with `message` (what already
    /// exists), any other database error as usual. The one place 409s for
    /// duplicates are made.
    pub fn on_unique(message: impl Into<String>) -> impl FnOnce(sqlx::Error) -> Error {
        let message = message.into();
        move |e| {
            if crate::db::is_unique_violation(&e) {
                Error::conflict(message)
            } else {
                e.into()
            }
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        if crate::db::is_unique_violation(&err) {
            return Error::conflict("a resource with these values already exists");
        }
        match err {
            sqlx::Error::PoolTimedOut => Error::unavailable(err),
            other => Error::internal(other),
        }
    }
}
