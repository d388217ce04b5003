//! [`SnsReporter`]: reports to SNS topics, each in its own region.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use aws_sdk_sns::Client;
use aws_sdk_sns::config::Region;
use lifecycle::{Fault, Sensitive};
use lifecycle_runtime::capability::Reporter;

use crate::error::fault;

/// SNS through the AWS SDK. A topic is published to in the region its ARN names, whatever
/// the function's own region.
#[derive(Debug)]
pub struct SnsReporter {
    config: aws_config::SdkConfig,
    clients: Mutex<HashMap<String, Client>>,
}

/// The region of `arn:aws:sns:REGION:ACCOUNT:NAME`.
pub fn topic_region(arn: &str) -> Option<&str> {
    let mut parts = arn.split(':');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("arn"), Some(_), Some("sns"), Some(region)) if !region.is_empty() => Some(region),
        _ => None,
    }
}

impl SnsReporter {
    /// SNS on `config`.
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        SnsReporter {
            config: config.clone(),
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, region: &str) -> Client {
        let mut clients = match self.clients.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        clients
            .entry(region.to_owned())
            .or_insert_with(|| {
                let conf = aws_sdk_sns::config::Builder::from(&self.config)
                    .region(Region::new(region.to_owned()))
                    .build();
                Client::from_conf(conf)
            })
            .clone()
    }
}

#[async_trait]
impl Reporter for SnsReporter {
    async fn publish(
        &self,
        topic_arn: &Sensitive,
        subject: &str,
        message: &str,
    ) -> Result<(), Fault> {
        // The error shows the topic's masked form (`Debug` of a `Sensitive`).
        let region = topic_region(topic_arn.expose()).ok_or_else(|| {
            Fault::permanent(format!("Publish: {topic_arn:?} is not an SNS topic ARN"))
        })?;
        let mut req = self
            .client(region)
            .publish()
            .topic_arn(topic_arn.expose())
            .message(message);
        if !subject.is_empty() {
            req = req.subject(subject);
        }
        req.send().await.map_err(|e| fault("Publish", &e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_comes_from_the_topic_arn() {
        assert_eq!(
            topic_region("arn:aws:sns:eu-central-1:123456789012:t"),
            Some("eu-central-1")
        );
        assert_eq!(topic_region("arn:aws:sqs:eu-central-1:1:t"), None);
        assert_eq!(topic_region("nonsense"), None);
    }
}
