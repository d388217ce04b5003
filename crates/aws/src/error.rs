//! Turning SDK errors into the core's [`Fault`]: the one place where this crate decides what a
//! retry can do about an AWS error ([`FaultKind`]).
//!
//! [`fault`] keeps what AWS said as data — the operation, the error code, the HTTP status and
//! the message — and [`classify`] is the classification table. Callers decide on
//! [`Fault::kind`], never on the message.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use lifecycle::{Fault, FaultKind};

/// Error codes AWS services use for throttling and transient faults.
const TRANSIENT_CODES: &[&str] = &[
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
    // Credentials that expired mid-invocation: the SDK does not retry the call, but a later
    // delivery loads credentials again (the fault matrix shows it ending retryable, then
    // resumed), so the record ends retryable rather than in failure handling.
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
    "RequestTimeout",
    "RequestTimeoutException",
    "KMSThrottlingException",
    "EC2ThrottledException",
    // A DynamoDB transaction in conflict with another one: the other will finish.
    "TransactionConflictException",
];

/// Codes that are transient for one operation only. SSM answers `InvalidInstanceId` to
/// `SendCommand` and `DescribeInstanceInformation` for an instance whose agent has not
/// registered yet (a launch is commonly that young) just as for one that does not exist:
/// the first is mended by waiting, and the second ends when its retries run out.
const TRANSIENT_FOR: &[(&str, &str)] = &[
    ("SendCommand", "InvalidInstanceId"),
    ("DescribeInstanceInformation", "InvalidInstanceId"),
];

/// Error codes that mean "what was asked for does not exist".
const NOT_FOUND_CODES: &[&str] = &["ParameterNotFound"];

/// Error codes that mean "a condition on the write did not hold": someone else changed the
/// item first.
const CONFLICT_CODES: &[&str] = &["ConditionalCheckFailedException"];

/// Auto Scaling answers a completion or heartbeat for a lifecycle action that is over
/// (completed, abandoned, timed out) with a `ValidationError` whose message starts
/// "No active Lifecycle Action found with …". AWS gives that case no error code of its own, so
/// this is the one place in the crate that reads an error message: it is part of the
/// classification table, and nothing else may match on a message.
const NO_ACTIVE_ACTION: (&str, &str) = ("ValidationError", "No active Lifecycle Action");

/// The classification table: what a retry can do about an error of an AWS call, from its code,
/// its HTTP status and — for [`NO_ACTIVE_ACTION`] only — its message.
///
/// - `Transient`: a throttling, server-fault or expired-credentials code
///   ([`TRANSIENT_CODES`]), an operation's own transient code ([`TRANSIENT_FOR`]), HTTP 429
///   or any 5xx, and — `transport` — a timeout, a dispatch failure or an unreadable response;
/// - `Conflict`: a conditional write whose condition did not hold;
/// - `NotFound`: a missing SSM parameter, and no active lifecycle action (see
///   [`NO_ACTIVE_ACTION`]);
/// - `Permanent`: everything else (access denied, validation errors, an unknown group, ...).
fn classify(
    operation: &str,
    code: Option<&str>,
    status: Option<u16>,
    message: &str,
    transport: bool,
) -> FaultKind {
    let has = |codes: &[&str]| code.is_some_and(|c| codes.contains(&c));
    if transport
        || has(TRANSIENT_CODES)
        || TRANSIENT_FOR.contains(&(operation, code.unwrap_or_default()))
        || status.is_some_and(|s| s == 429 || (500..600).contains(&s))
    {
        FaultKind::Transient
    } else if has(CONFLICT_CODES) {
        FaultKind::Conflict
    } else if has(NOT_FOUND_CODES)
        || (code == Some(NO_ACTIVE_ACTION.0) && message.contains(NO_ACTIVE_ACTION.1))
    {
        FaultKind::NotFound
    } else {
        FaultKind::Permanent
    }
}

/// The [`Fault::Service`] for an SDK error of `operation`, with the AWS error code and the
/// HTTP status kept, and its kind decided by [`classify`].
pub(crate) fn fault<E>(operation: &str, err: &SdkError<E, HttpResponse>) -> Fault
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let (code, message, transport) = match err {
        SdkError::ServiceError(se) => {
            let message = match se.err().message() {
                Some(m) => m.to_owned(),
                None => match status {
                    Some(s) => format!("HTTP {s}"),
                    None => DisplayErrorContext(err).to_string(),
                },
            };
            (se.err().code().map(str::to_owned), message, false)
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            (None, DisplayErrorContext(err).to_string(), true)
        }
        _ => (None, DisplayErrorContext(err).to_string(), false),
    };
    let kind = classify(operation, code.as_deref(), status, &message, transport);
    Fault::Service {
        operation: operation.to_owned(),
        code,
        status,
        message,
        kind,
    }
}

/// A [`Fault::Service`] this crate raises itself about `operation` rather than one AWS answered
/// with (a request that could not be built, an answer that lacks what it must hold, a table of
/// the wrong shape): no code, no status, and a retry cannot mend it.
pub(crate) fn permanent(operation: &str, message: impl std::fmt::Display) -> Fault {
    Fault::Service {
        operation: operation.to_owned(),
        code: None,
        status: None,
        message: message.to_string(),
        kind: FaultKind::Permanent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::operation::get_item::GetItemError;
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    /// An error answer of AWS: HTTP `status`, error `code` and `message`.
    fn answer(status: u16, code: &str, message: &str) -> SdkError<GetItemError, HttpResponse> {
        let meta = ErrorMetadata::builder().code(code).message(message).build();
        let raw = HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
        SdkError::service_error(GetItemError::generic(meta), raw)
    }

    fn answered(status: u16, code: &str, message: &str) -> Fault {
        fault("Op", &answer(status, code, message))
    }

    #[test]
    fn the_classification_table() {
        let cases = [
            (
                400,
                "ThrottlingException",
                "Rate exceeded",
                FaultKind::Transient,
            ),
            (400, "Throttling", "Rate exceeded", FaultKind::Transient),
            (
                400,
                "ProvisionedThroughputExceededException",
                "slow down",
                FaultKind::Transient,
            ),
            (500, "InternalFailure", "internal", FaultKind::Transient),
            (503, "SomethingNew", "unavailable", FaultKind::Transient),
            (429, "SomethingNew", "too many", FaultKind::Transient),
            (
                400,
                "ConditionalCheckFailedException",
                "The conditional request failed",
                FaultKind::Conflict,
            ),
            (
                400,
                "ValidationError",
                "No active Lifecycle Action found with token 6f1d2c3b",
                FaultKind::NotFound,
            ),
            (
                400,
                "ParameterNotFound",
                "Parameter /x not found.",
                FaultKind::NotFound,
            ),
            (
                400,
                "ValidationError",
                "AutoScalingGroup name not found - no such group: g",
                FaultKind::Permanent,
            ),
            (
                403,
                "AccessDenied",
                "User is not authorized",
                FaultKind::Permanent,
            ),
            (
                400,
                "AccessDeniedException",
                "User is not authorized",
                FaultKind::Permanent,
            ),
            (
                400,
                "ValidationException",
                "One or more parameter values were invalid",
                FaultKind::Permanent,
            ),
        ];
        for (status, code, message, kind) in cases {
            let f = answered(status, code, message);
            assert_eq!(f.kind(), kind, "{status} {code}: {f:?}");
            assert_eq!(
                f,
                Fault::Service {
                    operation: "Op".into(),
                    code: Some(code.into()),
                    status: Some(status),
                    message: message.into(),
                    kind,
                },
                "code, status and message are kept"
            );
        }
    }

    #[test]
    fn expired_credentials_and_more_throttles_are_transient() {
        for code in [
            "ExpiredToken",
            "ExpiredTokenException",
            "RequestExpired",
            "RequestTimeout",
            "RequestTimeoutException",
            "KMSThrottlingException",
            "EC2ThrottledException",
            "TransactionConflictException",
        ] {
            assert_eq!(
                answered(400, code, "x").kind(),
                FaultKind::Transient,
                "{code}"
            );
        }
    }

    #[test]
    fn an_ssm_agent_not_registered_yet_is_transient_for_ssm_only() {
        let unregistered = answer(400, "InvalidInstanceId", "Instances not in a valid state");
        for op in ["SendCommand", "DescribeInstanceInformation"] {
            assert_eq!(
                fault(op, &unregistered).kind(),
                FaultKind::Transient,
                "{op}"
            );
        }
        // The same code from another service's operation stays permanent.
        assert_eq!(
            fault("CreateSnapshot", &unregistered).kind(),
            FaultKind::Permanent
        );
    }

    #[test]
    fn only_the_no_active_action_validation_error_is_not_found() {
        // The message check is tied to the code: another code saying the same is permanent.
        assert_eq!(
            answered(400, "InvalidParameter", "No active Lifecycle Action").kind(),
            FaultKind::Permanent
        );
    }

    #[test]
    fn transport_failures_are_transient_and_have_no_code() {
        let refused: SdkError<GetItemError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io("connection refused".into()));
        let f = fault("GetItem", &refused);
        assert_eq!(f.kind(), FaultKind::Transient, "{f:?}");
        assert_eq!((f.code(), f.status()), (None, None));
        assert!(f.to_string().starts_with("GetItem: "), "{f}");

        let timeout: SdkError<GetItemError, HttpResponse> =
            SdkError::timeout_error("read timed out");
        assert_eq!(fault("GetItem", &timeout).kind(), FaultKind::Transient);

        let garbled: SdkError<GetItemError, HttpResponse> = SdkError::response_error(
            "unreadable body",
            HttpResponse::new(StatusCode::try_from(200).unwrap(), SdkBody::empty()),
        );
        let f = fault("GetItem", &garbled);
        assert_eq!(f.kind(), FaultKind::Transient, "{f:?}");
        assert_eq!(f.status(), Some(200));

        let unbuilt: SdkError<GetItemError, HttpResponse> =
            SdkError::construction_failure("missing field");
        assert_eq!(fault("GetItem", &unbuilt).kind(), FaultKind::Permanent);
    }

    #[test]
    fn a_service_error_without_a_message_names_the_status() {
        let raw = HttpResponse::new(StatusCode::try_from(403).unwrap(), SdkBody::empty());
        let meta = ErrorMetadata::builder().code("AccessDenied").build();
        let f = fault(
            "GetItem",
            &SdkError::service_error(GetItemError::generic(meta), raw),
        );
        assert_eq!(f.to_string(), "GetItem: AccessDenied: HTTP 403");
        assert_eq!(f.kind(), FaultKind::Permanent);
    }

    #[test]
    fn faults_on_this_side_are_permanent_service_faults() {
        let f = permanent("DescribeTable", "table t has no index");
        assert_eq!(f.kind(), FaultKind::Permanent);
        assert_eq!((f.code(), f.status()), (None, None));
        assert_eq!(f.to_string(), "DescribeTable: table t has no index");
    }
}
