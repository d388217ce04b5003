//! The AWS Lambda function of **autoscaling-lifecycle** (SPEC 8): the binary `bootstrap` for
//! the `provided.al2023` runtime, on `lambda_runtime`.
//!
//! At init — once per container — it reads its [`Settings`] from the environment, compiles
//! the operator's YAML (`lifecycle.yaml` beside `bootstrap`), builds the SDK configuration
//! with a timeout on every call, and binds the definition: any problem fails the init with
//! every error listed, so no event ever meets a bad configuration. Each invocation then goes
//! through [`Function::invoke`]: the payload (EventBridge, SNS, SQS, scheduled) through the
//! same parser as the CLI, each record with its share of the deadline less
//! `LIFECYCLE_DEADLINE_MARGIN_MS`, and the answer Lambda expects ([`Response`]). Every record
//! is logged as one JSON line and counted in CloudWatch Embedded Metric Format ([`metrics`]).

mod function;
pub mod metrics;
mod settings;

pub use function::{Function, InitError, Invocation, Response, load_definition};
pub use settings::{SettingError, Settings};
