//! `rez-models`: the model providers rez_agent talks to, each implementing rez-core's
//! `ModelClient` port over the SSRF-safe `rez-http` client.
//!
//! - [`AnthropicClient`]: the Anthropic Messages API;
//! - [`OpenAiClient`]: OpenAI-compatible Chat Completions (OpenAI, Ollama, vLLM,
//!   llama.cpp's server, OpenRouter), at a configurable base URL;
//!
//! One `complete` is one HTTP exchange (the run loop's `rez-runtime::agent::retry` bounds
//! the retries around it); its failure is classified transient or permanent
//! with a message that says what to fix and never contains the key. Bedrock Converse
//! lives in `rez-aws` (the AWS SDK stays there).

mod anthropic;
mod endpoint;
mod error;
mod key;
mod openai;

pub use anthropic::{ANTHROPIC_DEFAULT_BASE_URL, ANTHROPIC_VERSION, AnthropicClient, AnthropicConfig};
pub use endpoint::{ClientError, DEFAULT_MODEL_TIMEOUT};
pub use key::{ApiKey, InvalidApiKey};
pub use openai::{OPENAI_DEFAULT_BASE_URL, OpenAiClient, OpenAiConfig, TokenLimitField};
