//! `rez`: run the platform (`rez serve`) and administer it.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use rez_cli::commands;
use rez_cli::config::Config;
use rez_cli::serve::{self, Server};
use rez_core::auth::Scope;
use rez_core::ports::ApiKeyStore;

#[derive(Parser)]
#[command(name = "rez", version, about = "rez_agent: automation that acts on your behalf")]
struct Cli {
    /// Configuration file (default: $REZ_CONFIG, or ./rez.toml if it exists).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the platform: API, MCP endpoint, workers and scheduler in one process.
    Serve,
    /// Serve MCP on stdin/stdout for a local client (Claude Desktop), on the same data directory.
    Mcp,
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Queue a push notification.
    Send {
        /// The notification text.
        message: String,
        #[arg(long)]
        title: Option<String>,
        /// 1–5 or min|low|default|high|urgent.
        #[arg(long)]
        priority: Option<String>,
        /// Repeatable.
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// URL opened when the notification is tapped.
        #[arg(long)]
        click: Option<String>,
        #[arg(long)]
        markdown: bool,
    },
    /// Inspect messages.
    Messages {
        #[command(subcommand)]
        command: MessagesCommand,
    },
    /// Inspect and redrive dead letters.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Manage schedules (EventBridge Scheduler expressions).
    Schedules {
        #[command(subcommand)]
        command: SchedulesCommand,
    },
    /// Store secrets (encrypted at rest); values are never printed back.
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// Golf courses (built in, plus REZ_COURSES_FILE).
    Courses {
        #[command(subcommand)]
        command: CoursesCommand,
    },
    /// Check the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// The agent: start runs, follow them, chat, and see what they spent.
    Agent {
        #[command(subcommand)]
        command: AgentCommand,
    },
    /// What agent runs wait for: list, show, approve, decline.
    Approvals {
        #[command(subcommand)]
        command: ApprovalsCommand,
    },
    /// Write a consistent snapshot of the database to a file.
    Backup {
        /// Destination file (must not exist).
        dest: PathBuf,
    },
}

#[derive(Subcommand)]
enum AgentCommand {
    /// Start a run of a task in plain words (carried out by `rez serve`).
    Run {
        prompt: String,
        /// A course id or name the task is about.
        #[arg(long)]
        course: Option<String>,
        /// Players to book for (1–4).
        #[arg(long)]
        players: Option<u8>,
        /// Let the run book (without it, it finds and proposes).
        #[arg(long)]
        auto_book: bool,
        /// Do not push the outcome.
        #[arg(long)]
        no_notify: bool,
        /// Follow the run, showing each step, until it ends.
        #[arg(long)]
        wait: bool,
        #[arg(long)]
        json: bool,
    },
    /// List or show runs.
    Runs {
        #[command(subcommand)]
        command: AgentRunsCommand,
    },
    /// Chat in the terminal; each tool call is shown as it happens.
    Chat {
        /// Continue a session.
        #[arg(long)]
        session: Option<String>,
        /// Let the chat book.
        #[arg(long)]
        auto_book: bool,
    },
    /// Spend today, over the last 7 days and per model.
    Usage {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ApprovalsCommand {
    /// Pending approvals (or `--state approved|declined|expired|all`).
    List {
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        json: bool,
    },
    Show {
        id: String,
    },
    /// Approve: the stored call runs with its stored idempotency key.
    Approve {
        id: String,
    },
    /// Decline: the run is told the user said no.
    Decline {
        id: String,
    },
}

#[derive(Subcommand)]
enum AgentRunsCommand {
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// A run with every step.
    Show { id: String },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key; it is printed once.
    Create {
        #[arg(long)]
        name: String,
        /// read, mcp, write or admin.
        #[arg(long, default_value = "write")]
        scope: String,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    Revoke {
        id: String,
    },
}

#[derive(Subcommand)]
enum MessagesCommand {
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long = "type")]
        message_type: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    Show {
        id: String,
    },
}

#[derive(Subcommand)]
enum DlqCommand {
    List {
        #[arg(long)]
        queue: Option<String>,
        #[arg(long)]
        json: bool,
    },
    Redrive {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        queue: Option<String>,
        ids: Vec<String>,
    },
}

#[derive(Subcommand)]
enum SchedulesCommand {
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long = "target-type")]
        target_type: Option<String>,
        #[arg(long)]
        json: bool,
    },
    Show {
        id: String,
    },
    /// Create a schedule, e.g. `--expression 'cron(0 6 ? * FRI *)' --timezone America/New_York
    /// --target-type notify --target '{"payload":{"message":"Friday!"}}'`.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        expression: String,
        #[arg(long)]
        timezone: Option<String>,
        /// notify, web_action, agent or message.
        #[arg(long = "target-type")]
        target_type: String,
        /// The target as JSON.
        #[arg(long)]
        target: String,
        #[arg(long)]
        description: Option<String>,
        #[arg(long = "window-minutes")]
        window_minutes: Option<u32>,
        #[arg(long)]
        paused: bool,
    },
    /// Update with a JSON patch, e.g. `'{"schedule_expression":"rate(2 hours)"}'`.
    Update {
        id: String,
        patch: String,
    },
    Pause {
        id: String,
    },
    Resume {
        id: String,
    },
    Delete {
        id: String,
    },
    /// Fire once now.
    Run {
        id: String,
    },
    /// Show the next fire times of an expression.
    Preview {
        #[arg(long)]
        expression: String,
        #[arg(long, default_value = "UTC")]
        timezone: String,
        /// RFC 3339 start (default: now).
        #[arg(long)]
        from: Option<String>,
        #[arg(long, default_value_t = 10)]
        count: usize,
        /// Print a JSON array of UTC RFC 3339 strings.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum SecretsCommand {
    /// Set a secret from stdin (default) or from an environment variable.
    Set {
        name: String,
        #[arg(long = "from-env")]
        from_env: Option<String>,
    },
    /// Store golf credentials for a course: the password is read from stdin (or --password-env).
    SetGolf {
        #[arg(long)]
        course: String,
        #[arg(long)]
        username: String,
        #[arg(long = "password-env")]
        password_env: Option<String>,
        #[arg(long = "client-id")]
        client_id: Option<String>,
        #[arg(long = "client-secret-env")]
        client_secret_env: Option<String>,
    },
    /// Names and dates only.
    List {
        #[arg(long)]
        json: bool,
    },
    Delete {
        name: String,
    },
}

#[derive(Subcommand)]
enum CoursesCommand {
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Load the configuration and explain any problem.
    Check,
}

fn init_tracing(json: bool, default_level: &str) {
    let mut filter = tracing_subscriber::EnvFilter::try_from_env("REZ_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    // rmcp logs every new session's id at info; a session id is a handle on a session, so
    // it stays out of the logs unless rmcp's own logs are asked for by name.
    let rmcp_named = std::env::var("REZ_LOG").is_ok_and(|v| v.contains("rmcp"));
    if !rmcp_named && let Ok(directive) = "rmcp::transport::streamable_http_server::session=warn".parse() {
        filter = filter.add_directive(directive);
    }
    // Colour codes only for a terminal: a file or a pipe (journald, a log shipper) gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    if json {
        builder.json().init();
    } else {
        builder.compact().init();
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // A one-line error with its causes, not a backtrace: these are user-facing errors.
    match start(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn start(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    // The server logs its life at info; one-shot commands only warnings.
    init_tracing(config.log_json, if matches!(cli.command, Command::Serve | Command::Mcp) { "info" } else { "warn" });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(16)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(cli.command, config))
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => serve_forever(config).await,
        Command::Mcp => mcp_stdio(config).await,
        Command::Config { command: ConfigCommand::Check } => check(&config),
        Command::Courses { command: CoursesCommand::List { json } } => {
            let courses = rez_cli::wiring::courses(&config)?;
            if json {
                return commands::print_json(&courses.list());
            }
            for c in courses.list() {
                println!(
                    "{:<12} {:<28} {:<20} {:>9.4} {:>10.4}  {}",
                    c.id, c.name, c.time_zone, c.latitude, c.longitude, c.origin
                );
            }
            Ok(())
        }
        Command::Schedules { command: SchedulesCommand::Preview { expression, timezone, from, count, json } } => {
            commands::schedules::preview(&expression, &timezone, from.as_deref(), count, json)
        }
        command => {
            let store = rez_cli::wiring::open_store(&config)?;
            match command {
                Command::Keys { command } => match command {
                    KeysCommand::Create { name, scope } => {
                        let scope = Scope::parse(&scope)
                            .ok_or_else(|| anyhow::anyhow!("--scope must be read, mcp, write or admin"))?;
                        commands::keys::create(&store, &name, scope).await
                    }
                    KeysCommand::List { json } => commands::keys::list(&store, json).await,
                    KeysCommand::Revoke { id } => commands::keys::revoke(&store, &id).await,
                },
                Command::Send { message, title, priority, tags, click, markdown } => {
                    let args = commands::send::SendArgs { message, title, priority, tags, click, markdown };
                    commands::send::run(&config, &store, args).await
                }
                Command::Messages { command } => match command {
                    MessagesCommand::List { status, message_type, limit, json } => {
                        commands::messages::list(&store, status, message_type, limit, json).await
                    }
                    MessagesCommand::Show { id } => commands::messages::show(&store, &id).await,
                },
                Command::Dlq { command } => match command {
                    DlqCommand::List { queue, json } => commands::dlq::list(&store, queue, json).await,
                    DlqCommand::Redrive { all, queue, ids } => commands::dlq::redrive(&store, all, queue, ids).await,
                },
                Command::Schedules { command } => {
                    let services = rez_cli::wiring::services(&config, &store, Default::default())?;
                    let s = &services;
                    use commands::schedules as sc;
                    match command {
                        SchedulesCommand::List { status, target_type, json } => {
                            sc::list(s, status, target_type, json).await
                        }
                        SchedulesCommand::Show { id } => sc::show(s, &id).await,
                        SchedulesCommand::Create {
                            name,
                            expression,
                            timezone,
                            target_type,
                            target,
                            description,
                            window_minutes,
                            paused,
                        } => {
                            sc::create(
                                s,
                                sc::CreateArgs {
                                    name,
                                    expression,
                                    timezone,
                                    target_type,
                                    target,
                                    description,
                                    window_minutes,
                                    paused,
                                },
                            )
                            .await
                        }
                        SchedulesCommand::Update { id, patch } => sc::update(s, &id, &patch).await,
                        SchedulesCommand::Pause { id } => sc::pause(s, &id).await,
                        SchedulesCommand::Resume { id } => sc::resume(s, &id).await,
                        SchedulesCommand::Delete { id } => sc::delete(s, &id).await,
                        SchedulesCommand::Run { id } => sc::run(s, &id).await,
                        SchedulesCommand::Preview { .. } => unreachable!("handled above"),
                    }
                }
                Command::Agent { command } => {
                    let services = rez_cli::wiring::services(&config, &store, Default::default())?;
                    let s = &services;
                    use commands::agent as ag;
                    match command {
                        AgentCommand::Run { prompt, course, players, auto_book, no_notify, wait, json } => {
                            ag::run(s, ag::RunArgs { prompt, course, players, auto_book, no_notify, wait, json }).await
                        }
                        AgentCommand::Runs { command: AgentRunsCommand::List { status, limit, json } } => {
                            ag::list(s, status, limit, json).await
                        }
                        AgentCommand::Runs { command: AgentRunsCommand::Show { id } } => ag::show(s, &id).await,
                        AgentCommand::Chat { session, auto_book } => ag::chat(s, session, auto_book).await,
                        AgentCommand::Usage { json } => ag::usage(s, json).await,
                    }
                }
                Command::Approvals { command } => {
                    let services = rez_cli::wiring::services(&config, &store, Default::default())?;
                    let s = &services;
                    use commands::approvals as ap;
                    use rez_core::agent::approval::Decision;
                    match command {
                        ApprovalsCommand::List { state, json } => ap::list(s, state, json).await,
                        ApprovalsCommand::Show { id } => ap::show(s, &id).await,
                        ApprovalsCommand::Approve { id } => ap::answer(s, &id, Decision::Approve).await,
                        ApprovalsCommand::Decline { id } => ap::answer(s, &id, Decision::Decline).await,
                    }
                }
                Command::Secrets { command } => {
                    use commands::secrets::{self as sec, SecretSource};
                    let source = |env: Option<String>| env.map(SecretSource::Env).unwrap_or(SecretSource::Stdin);
                    match command {
                        SecretsCommand::Set { name, from_env } => sec::set(&store, &name, source(from_env)).await,
                        SecretsCommand::SetGolf { course, username, password_env, client_id, client_secret_env } => {
                            let course = rez_cli::wiring::courses(&config)?.find(&course)?.id.clone();
                            sec::set_golf(
                                &store,
                                &course,
                                &username,
                                source(password_env),
                                client_id.as_deref(),
                                client_secret_env.map(SecretSource::Env),
                            )
                            .await
                        }
                        SecretsCommand::List { json } => sec::list(&store, json).await,
                        SecretsCommand::Delete { name } => sec::delete(&store, &name).await,
                    }
                }
                Command::Backup { dest } => {
                    anyhow::ensure!(!dest.exists(), "{} already exists", dest.display());
                    store.db().backup(dest.clone()).await?;
                    println!("wrote {}", dest.display());
                    Ok(())
                }
                Command::Serve | Command::Mcp | Command::Config { .. } | Command::Courses { .. } => {
                    unreachable!("handled above")
                }
            }
        }
    }
}

async fn serve_forever(config: Config) -> anyhow::Result<()> {
    let listener =
        tokio::net::TcpListener::bind(config.bind).await.with_context(|| format!("binding {}", config.bind))?;
    let server = Server::start(config.clone(), listener).await?;
    let url = format!("http://{}", server.addr);
    println!("rez listening on {url}  (data: {})", config.data_dir.display());
    if config.ntfy.is_none() {
        tracing::info!(
            "push notifications are off; notifications go to the inbox only. Set REZ_NTFY_URL=https://ntfy.sh/<your-topic> to enable push"
        );
    }
    if config.api_key.is_none() && server.store.list_keys().await.map(|k| k.is_empty()).unwrap_or(false) {
        println!("no API key yet: create one with `rez keys create --name me --scope admin`, then");
        println!("  curl -H 'Authorization: Bearer <key>' {url}/api/messages");
    }
    let token = server.shutdown_token();
    tokio::spawn(async move {
        serve::signal().await;
        token.cancel();
    });
    server.wait().await
}

/// `rez mcp`: the MCP server on stdio over the data directory, like the other admin
/// commands. Work it queues (notifications, web actions, schedule changes) is done by the
/// `rez serve` running on the same data directory. stdout carries only the protocol.
async fn mcp_stdio(config: Config) -> anyhow::Result<()> {
    let store = rez_cli::wiring::open_store(&config)?;
    let services = rez_cli::wiring::services(&config, &store, Default::default())?;
    let registry = rez_cli::wiring::tools(&config, services)?;
    rez_mcp::serve_stdio(registry).await?;
    Ok(())
}

fn check(config: &Config) -> anyhow::Result<()> {
    println!("configuration from: {}", config.sources.join(", "));
    println!("{config:#?}");
    let mut problems = Vec::new();
    if let Err(e) = rez_local::files::ensure_private_dir(&config.data_dir) {
        problems.push(format!("data directory: {e}"));
    }
    if let Some(n) = &config.ntfy {
        if n.url.scheme() == "http" {
            println!(
                "note: REZ_NTFY_URL uses plain http (a self-hosted ntfy on your network): pushes and credentials are not encrypted"
            );
        }
        if n.token.is_some() && n.username.is_some() {
            problems.push("both REZ_NTFY_TOKEN and REZ_NTFY_USER are set; the token is used".into());
        }
        if let Err(e) = rez_cli::wiring::notifier(config) {
            problems.push(format!("ntfy: {e:#}"));
        }
    } else {
        println!("note: REZ_NTFY_URL is not set; notifications go to the inbox only");
    }
    match config.agent.provider {
        None => println!("note: the agent is off; set REZ_AGENT_PROVIDER (anthropic or openai) to turn it on"),
        Some(p) => {
            let has_key = match p {
                rez_cli::agent_config::Provider::Anthropic => config.agent.anthropic_api_key.is_some(),
                rez_cli::agent_config::Provider::OpenAi => {
                    config.agent.openai_api_key.is_some() || config.agent.openai_base_url.is_some()
                }
                rez_cli::agent_config::Provider::Bedrock => {
                    problems.push("REZ_AGENT_PROVIDER=bedrock works in the AWS deployment only".into());
                    true
                }
            };
            if !has_key {
                println!(
                    "note: no {} API key in the environment or rez.toml; `rez serve` reads it from the secret store (`rez secrets set {}_api_key`) or refuses to start",
                    p.as_str(),
                    p.as_str()
                );
            }
        }
    }
    if config.allow_loopback_for_tests {
        problems.push(
            "REZ_OUTBOUND_ALLOW_LOOPBACK is on: outbound calls may reach 127.0.0.1 (tests and benchmarks only)".into(),
        );
    }
    if !config.bind.ip().is_loopback() && config.api_key.is_none() {
        println!("note: binding {} (not loopback); every route but health requires an API key", config.bind);
    }
    if problems.is_empty() {
        println!("ok");
        Ok(())
    } else {
        for p in &problems {
            println!("problem: {p}");
        }
        anyhow::bail!("{} problem(s) found", problems.len())
    }
}
