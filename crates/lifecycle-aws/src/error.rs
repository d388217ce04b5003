//! Turning SDK errors into the core's typed errors, deciding whether a retry can help.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use lifecycle::store::StoreError;
use lifecycle::tasks::TaskError;

/// Error codes AWS services use for throttling and transient faults.
const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "PriorRequestNotComplete",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "InternalServerErrorException",
];

/// What went wrong with one AWS call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    /// The AWS error code, when the service answered with one.
    pub code: Option<String>,
    /// The service's message (or the transport's).
    pub message: String,
    /// Whether a retry can help.
    pub retryable: bool,
}

impl Failure {
    /// True when the service answered with `code` and its message contains `needle`.
    pub fn is(&self, code: &str, needle: &str) -> bool {
        self.code.as_deref() == Some(code) && self.message.contains(needle)
    }

    pub fn task(&self, operation: &str) -> TaskError {
        TaskError {
            message: format!("{operation}: {}", self.describe()),
            retryable: self.retryable,
        }
    }

    pub fn store(&self, operation: &str) -> StoreError {
        StoreError::Backend {
            message: format!("{operation}: {}", self.describe()),
            retryable: self.retryable,
        }
    }

    fn describe(&self) -> String {
        match &self.code {
            Some(code) => format!("{code}: {}", self.message),
            None => self.message.clone(),
        }
    }
}

/// Classifies an SDK error.
pub(crate) fn classify<E>(err: &SdkError<E, HttpResponse>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let code = se.err().code().map(str::to_owned);
            let message = se
                .err()
                .message()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("HTTP {status}"));
            let retryable = status >= 500
                || status == 429
                || code
                    .as_deref()
                    .is_some_and(|c| RETRYABLE_CODES.contains(&c));
            Failure {
                code,
                message,
                retryable,
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Failure {
                code: None,
                message: DisplayErrorContext(err).to_string(),
                retryable: true,
            }
        }
        _ => Failure {
            code: None,
            message: DisplayErrorContext(err).to_string(),
            retryable: false,
        },
    }
}
