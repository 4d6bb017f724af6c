//! The `job-runner` command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use taskyard_api::{Outcome, RunnerInput};
use taskyard_common::setting::{number_in, or_default};
use taskyard_common::store::S3Settings;
use taskyard_runner::settings::RunnerArgs;

#[derive(Parser)]
#[command(name = "job-runner", version, about = "Runs Taskyard tasks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one task resource (the YAML you would kubectl apply) on this machine, with a
    /// directory as the object store; prints the task's status as YAML.
    /// Exit code 0 when the task succeeded, 1 when it failed, 2 for usage errors.
    Run {
        /// Directory used as the object store (same key layout as the bucket).
        #[arg(long)]
        store: PathBuf,
        /// The task resource file.
        task: PathBuf,
        #[command(flatten)]
        runner: RunnerArgs,
    },
    /// Print a day's HashTask results log from a directory store (one line per finished task
    /// generation). Exit code 0 when printed (an empty day prints nothing), 1 when the store
    /// cannot be read, 2 for usage errors.
    Log {
        /// Directory used as the object store by `job-runner run --store`.
        #[arg(long)]
        store: PathBuf,
        /// The day, YYYY-MM-DD in UTC; default today.
        #[arg(long)]
        date: Option<String>,
    },
    /// Run the tasks of a runner Job (used by the operator's Jobs).
    Exec {
        /// The tasks, as JSON.
        #[arg(long, env = "TASKYARD_TASKS", hide_env_values = true)]
        tasks: String,
        /// S3 endpoint URL; empty means AWS.
        #[arg(long, env = "TASKYARD_S3_ENDPOINT", default_value = "")]
        s3_endpoint: String,
        #[arg(long, env = "TASKYARD_S3_REGION", default_value = "us-east-1",
              value_parser = or_default::<String>("us-east-1"))]
        s3_region: String,
        #[arg(long, env = "TASKYARD_S3_BUCKET")]
        s3_bucket: String,
        #[arg(long, env = "TASKYARD_S3_FORCE_PATH_STYLE", default_value_t = false,
              action = clap::ArgAction::Set, value_parser = or_default::<bool>("false"))]
        s3_force_path_style: bool,
        /// Seconds a store request may wait for its answer before it is tried again.
        #[arg(long, env = "TASKYARD_S3_STALL_TIMEOUT_SECONDS", default_value_t = 30,
              value_parser = number_in::<u64>("30", 1, 3600))]
        s3_stall_timeout_seconds: u64,
        /// Where Kubernetes reads the container's termination message.
        #[arg(long, env = "TASKYARD_TERMINATION_LOG", default_value = "/dev/termination-log",
              value_parser = or_default::<String>("/dev/termination-log"))]
        termination_log: String,
        #[command(flatten)]
        runner: RunnerArgs,
    },
}

fn main() -> ExitCode {
    // Before the runtime starts its threads.
    taskyard_runner::allocator::tune_for_images();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the async runtime starts")
        .block_on(run_command())
}

async fn run_command() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in a container's log.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    taskyard_runner::install_crypto_provider();
    match Cli::parse().command {
        Command::Run { store, task, runner } => run(store, task, runner).await,
        Command::Log { store, date } => {
            ExitCode::from(taskyard_runner::daylog::log_command(&store, date.as_deref()).await)
        }
        Command::Exec {
            tasks,
            s3_endpoint,
            s3_region,
            s3_bucket,
            s3_force_path_style,
            s3_stall_timeout_seconds,
            termination_log,
            runner,
        } => {
            let input: RunnerInput = match serde_json::from_str(&tasks) {
                Ok(input) => input,
                Err(e) => {
                    eprintln!("error: TASKYARD_TASKS is not a valid task list: {e}");
                    return ExitCode::from(2);
                }
            };
            let s3 = S3Settings {
                endpoint: (!s3_endpoint.is_empty()).then_some(s3_endpoint),
                region: s3_region,
                bucket: s3_bucket,
                force_path_style: s3_force_path_style,
                credentials: None,
                stall_timeout: std::time::Duration::from_secs(s3_stall_timeout_seconds),
            };
            let code = taskyard_runner::exec::exec(&input, &s3, runner, &termination_log).await;
            ExitCode::from(code as u8)
        }
    }
}

async fn run(store: PathBuf, task: PathBuf, runner: RunnerArgs) -> ExitCode {
    let yaml = match std::fs::read_to_string(&task) {
        Ok(yaml) => yaml,
        Err(e) => {
            eprintln!("error: cannot read the task file {}: {e}", task.display());
            return ExitCode::from(2);
        }
    };
    match taskyard_runner::local::run_local(&store, &yaml, runner).await {
        Ok(outcome) => {
            print!(
                "{}",
                serde_yaml::to_string(&outcome.status).expect("a status always serialises")
            );
            match outcome.result.outcome {
                Outcome::Succeeded => ExitCode::SUCCESS,
                Outcome::Failed => ExitCode::from(1),
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
