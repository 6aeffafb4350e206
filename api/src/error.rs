//! One JSON error shape for every failure: `{"error": {"code": "...", "message": "..."}}`, with
//! the offending field named where there is one. Client errors say what was wrong; internal ones
//! become a generic 500 and are logged with their cause.

use axum::extract::rejection::JsonRejection;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadField {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    BadBody(String),
    #[error("request body is too large")]
    TooLarge,
    #[error("the request body did not arrive in time")]
    SlowBody,
    #[error("missing, invalid, expired or revoked bearer token")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("wrong username or password")]
    BadLogin,
    #[error("too many requests: retry in {} s", crate::limits::retry_after_secs(*.0))]
    TooManyRequests(std::time::Duration),
    #[error("{0}")]
    NotFound(String),
    #[error("this endpoint does not take {0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the server is shutting down")]
    Unavailable,
    /// Live state this node could not get: a cluster's shards did not answer in time, or the
    /// question is not one a cluster's API node can ask them (it says which).
    #[error("{0}")]
    Unanswered(String),
    /// A failure of the server's own (the store, the randomness source): answered as a generic
    /// 500, logged with its cause, which is kept (not flattened into text) for the log's chain.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// An internal error caused by `cause` (an error, or a sentence saying what broke).
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        ApiError::Internal(cause.into())
    }

    pub fn field(field: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadField {
            field,
            message: message.into(),
        }
    }

    /// The error's code as answered (`invalid_field`, `not_found`, ...).
    pub fn code(&self) -> &'static str {
        self.status_and_code().1
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadField { .. } => (StatusCode::BAD_REQUEST, "invalid_field"),
            ApiError::BadBody(_) => (StatusCode::BAD_REQUEST, "invalid_body"),
            ApiError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            ApiError::SlowBody => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::BadLogin => (StatusCode::UNAUTHORIZED, "bad_login"),
            ApiError::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Unanswered(_) => (StatusCode::SERVICE_UNAVAILABLE, "unanswered"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let ApiError::Internal(cause) = &self {
            let mut chain = cause.to_string();
            let mut source = cause.source();
            while let Some(inner) = source {
                chain.push_str(": ");
                chain.push_str(&inner.to_string());
                source = inner.source();
            }
            tracing::error!(cause = %chain, "request failed");
        }
        let mut error = json!({ "code": code, "message": self.to_string() });
        if let ApiError::BadField { field, .. } = &self {
            error["field"] = json!(field);
        }
        let mut response = (status, axum::Json(json!({ "error": error }))).into_response();
        if let ApiError::TooManyRequests(wait) = &self {
            let seconds = crate::limits::retry_after_secs(*wait).to_string();
            if let Ok(value) = header::HeaderValue::from_str(&seconds) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge
        } else {
            ApiError::BadBody(rejection.body_text())
        }
    }
}

impl From<tagwatch_store::Error> for ApiError {
    fn from(error: tagwatch_store::Error) -> Self {
        use tagwatch_store::Error as E;
        match error {
            E::StationExists(_)
            | E::TagExists(_)
            | E::PlateExists(_)
            | E::CaseAlreadyOpen(_)
            | E::UserExists(_)
            | E::Conflict(_) => ApiError::Conflict(error.to_string()),
            E::NoSuchVehicle(_) => ApiError::NotFound(error.to_string()),
            // The vehicle exists; its state is what stands in the way.
            E::NoOpenCase(_) => ApiError::Conflict(error.to_string()),
            other => ApiError::internal(other),
        }
    }
}
