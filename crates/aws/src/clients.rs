//! The SDK clients, built once from one `SdkConfig` and shared (cheap to clone). In a
//! Lambda they are built at init and reused across invocations.
//!
//! The SDK honours `AWS_ENDPOINT_URL`, `AWS_REGION` and the credential variables, so the
//! same code talks to AWS or to moto on a laptop.

#[derive(Clone, Debug)]
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub scheduler: aws_sdk_scheduler::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    /// The configuration the clients were built from (for clients built later, such as
    /// the agent's Bedrock client, which only the agent function needs).
    pub sdk_config: aws_config::SdkConfig,
}

impl Clients {
    /// Clients from the environment (region, credentials, `AWS_ENDPOINT_URL`).
    pub async fn from_env() -> Self {
        let config = aws_config::load_from_env().await;
        Self::from_config(&config)
    }

    pub fn from_config(config: &aws_config::SdkConfig) -> Self {
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            sns: aws_sdk_sns::Client::new(config),
            sqs: aws_sdk_sqs::Client::new(config),
            scheduler: aws_sdk_scheduler::Client::new(config),
            secrets: aws_sdk_secretsmanager::Client::new(config),
            sdk_config: config.clone(),
        }
    }

    /// Clients for an emulator at `endpoint` with fixed test credentials.
    pub async fn for_endpoint(endpoint: &str, region: &str) -> Self {
        Self::for_endpoint_as(endpoint, region, "testing", "testing").await
    }

    /// Clients for an emulator at `endpoint` signing as the given access key (an
    /// emulator that enforces IAM knows its users by their keys).
    pub async fn for_endpoint_as(endpoint: &str, region: &str, access_key_id: &str, secret_access_key: &str) -> Self {
        Self::from_config(&endpoint_config(endpoint, region, access_key_id, secret_access_key).await)
    }
}

/// The configuration of clients for an emulator or a fake at `endpoint`, signing with a
/// fixed access key.
pub async fn endpoint_config(
    endpoint: &str,
    region: &str,
    access_key_id: &str,
    secret_access_key: &str,
) -> aws_config::SdkConfig {
    let creds = aws_sdk_dynamodb::config::Credentials::new(
        access_key_id.to_owned(),
        secret_access_key.to_owned(),
        None,
        None,
        "rez-static",
    );
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(region.to_owned()))
        .credentials_provider(creds)
        .load()
        .await
}
