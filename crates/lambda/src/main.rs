//! `rez-lambda`: rez_agent on AWS. One binary serves every Lambda function (chosen by
//! `REZ_FUNCTION`), runs the whole platform as a long-lived container against AWS or an
//! emulator (`serve`), and creates the template's resources on an emulator
//! (`provision`).

mod agent_config;
mod functions;
mod metrics;
#[cfg(test)]
mod permissions;
mod serve;
mod settings;
mod wiring;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::settings::Function;
use crate::wiring::{App, Loads};

#[derive(Parser)]
#[command(name = "rez-lambda", version, about = "rez_agent on AWS Lambda, or as a container against AWS")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve Lambda invocations as the function named by REZ_FUNCTION (the default in
    /// a Lambda environment).
    Run,
    /// Run API, MCP, queue consumers (long polling) and the sweeper in one process
    /// against AWS, or against an emulator through AWS_ENDPOINT_URL.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "REZ_BIND", default_value = "127.0.0.1:8080")]
        bind: std::net::SocketAddr,
    },
    /// Create a scoped API key in the deployment's keys table (resource names from the
    /// REZ_* environment, credentials from the AWS environment). Printed once.
    CreateKey {
        #[arg(long)]
        name: String,
        /// read, mcp, write or admin.
        #[arg(long, default_value = "write")]
        scope: String,
    },
    /// Create the template's tables, topics, queues and schedule group on an emulator
    /// (moto) and print the environment the functions need.
    Provision {
        /// The emulator's endpoint.
        #[arg(long, env = "AWS_ENDPOINT_URL")]
        endpoint: String,
        /// Name prefix of the resources (`rez-<stage>` in the template).
        #[arg(long, default_value = "rez-dev")]
        prefix: String,
        #[arg(long, env = "REZ_STAGE", default_value = "dev")]
        stage: String,
        #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
        region: String,
    },
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // JSON lines on stderr (stdout is for command output; Lambda sends both to CloudWatch,
    // whose Logs Insights queries fields such as message_id directly).
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing();
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => {
            let raw = std::env::var("REZ_FUNCTION").context("REZ_FUNCTION is not set")?;
            let function = Function::parse(&raw).with_context(|| {
                let names: Vec<_> = Function::ALL.iter().map(|f| f.as_str()).collect();
                format!("REZ_FUNCTION={raw} is not one of {}", names.join(", "))
            })?;
            let app = App::from_env(Loads::for_function(function)).await?;
            tracing::info!(function = function.as_str(), "function ready");
            functions::run(function, app).await.map_err(|e| anyhow::anyhow!(e))
        }
        Command::Serve { bind } => serve::serve(bind).await,
        Command::CreateKey { name, scope } => {
            use rez_core::ports::ApiKeyStore;
            anyhow::ensure!(!name.trim().is_empty() && name.len() <= 100, "--name must be 1–100 characters");
            let scope = rez_core::auth::Scope::parse(&scope)
                .with_context(|| format!("--scope {scope}: expected read, mcp, write or admin"))?;
            let names = rez_aws::Names::from_env().context("resource names")?;
            let clients = rez_aws::Clients::from_env().await;
            let clock: std::sync::Arc<dyn rez_core::clock::Clock> = std::sync::Arc::new(rez_core::clock::SystemClock);
            let store = rez_aws::AwsStore::new(clients, names, clock.clone(), Default::default());
            let minted = rez_runtime::keys::mint(&name, scope, &*clock);
            store.insert(&minted.record).await?;
            eprintln!("Created key {} ({scope}). It is shown once; store it now:", minted.record.id);
            println!("{}", minted.token);
            Ok(())
        }
        Command::Provision { endpoint, prefix, stage, region } => {
            let clients = rez_aws::Clients::for_endpoint(&endpoint, &region).await;
            let names = rez_aws::provision::provision(&clients, &prefix, &stage).await?;
            println!("AWS_ENDPOINT_URL={endpoint}");
            println!("AWS_REGION={region}");
            for (k, v) in names.to_env() {
                println!("{k}={v}");
            }
            Ok(())
        }
    }
}
