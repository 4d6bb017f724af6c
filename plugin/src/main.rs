//! `kubectl taskyard`: run Taskyard tasks on local files and web pages as yourself. A local
//! file goes to the gateway with your token (it checks that you may create the task kind in
//! the namespace and stores the file in that namespace's upload area); the task is then
//! created with your own kubeconfig credentials.

mod cli;
mod error;
mod fetch;
mod gateway;
mod spec;
mod task;
mod user;

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command, FetchOptions, ResizeOptions, Run};
use error::PluginError;
use spec::NewTask;
use user::User;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

async fn run(cli: Cli) -> Result<(), PluginError> {
    let usage = PluginError::Usage;
    let user = user::load(&cli.global).await?;
    match cli.command {
        Command::Hash { file, algorithms, run } => hash_file(&user, &cli.global, &file, &algorithms, &run).await,
        Command::Resize { file, resize, run } => resize_file(&user, &cli.global, &file, &resize, &run).await,
        Command::Text { source, run } => {
            if spec::is_web_url(&source) {
                start(&user, spec::text(("page", &source)), &run).await
            } else {
                text_file(&user, &cli.global, Path::new(&source), &run).await
            }
        }
        // The same flows as hash, resize and text of a file.
        Command::Upload { file, task, run } => match (task.hash, task.resize, task.text) {
            (_, Some(size), _) => resize_file(&user, &cli.global, &file, &size.options(), &run).await,
            (_, _, true) => text_file(&user, &cli.global, &file, &run).await,
            (algorithms, None, false) => {
                let algorithms = algorithms.unwrap_or_else(|| "md5".into());
                hash_file(&user, &cli.global, &file, &algorithms, &run).await
            }
        },
        Command::Images {
            page,
            resize,
            max_images,
            run,
        } => start(&user, spec::images(&page, &resize, max_images).map_err(usage)?, &run).await,
        Command::Fetch { task, fetch } => fetch::fetch(&user, &cli.global, &task, &fetch).await,
        Command::Get {
            task,
            output: Some(output),
            force,
            wait,
            timeout,
        } => {
            let options = FetchOptions {
                output: Some(output),
                force,
                wait,
                timeout,
            };
            fetch::fetch(&user, &cli.global, &task, &options).await
        }
        Command::Get {
            task,
            output: None,
            wait,
            timeout,
            ..
        } => {
            let (task, mut object) = task::find(&user.client, &user.namespace, &task).await?;
            if wait {
                object = task::wait(&user.client, &user.namespace, &task, timeout).await?;
            }
            print!("{}", task::report(&task, &object)?);
            Ok(())
        }
        Command::Wait { task, timeout } => {
            let (task, _) = task::find(&user.client, &user.namespace, &task).await?;
            let object = task::wait(&user.client, &user.namespace, &task, timeout).await?;
            print!("{}", task::report(&task, &object)?);
            Ok(())
        }
    }
}

/// A HashTask of a local file (`hash FILE`, `upload FILE [--hash ALGS]`).
async fn hash_file(
    user: &User,
    global: &cli::Global,
    file: &Path,
    algorithms: &str,
    run: &Run,
) -> Result<(), PluginError> {
    // Checked before the upload, so a typo costs nothing.
    spec::hash("x", algorithms).map_err(PluginError::Usage)?;
    let object = upload(user, global, file, "HashTask").await?;
    start(user, spec::hash(&object, algorithms).map_err(PluginError::Usage)?, run).await
}

/// An ImageTask resizing a local image (`resize FILE`, `upload FILE --resize WxH`).
async fn resize_file(
    user: &User,
    global: &cli::Global,
    file: &Path,
    resize: &ResizeOptions,
    run: &Run,
) -> Result<(), PluginError> {
    spec::resize_object("x", resize).map_err(PluginError::Usage)?;
    let object = upload(user, global, file, "ImageTask").await?;
    start(
        user,
        spec::resize_object(&object, resize).map_err(PluginError::Usage)?,
        run,
    )
    .await
}

/// A TextTask of a local file (`text FILE`, `upload FILE --text`).
async fn text_file(user: &User, global: &cli::Global, file: &Path, run: &Run) -> Result<(), PluginError> {
    let object = upload(user, global, file, "TextTask").await?;
    start(user, spec::text(("object", &object)), run).await
}

/// Streams the file through the gateway; returns the task's `source.object`.
async fn upload(user: &User, global: &cli::Global, file: &Path, kind: &str) -> Result<String, PluginError> {
    let uploaded = gateway::upload(user, global, file, &spec::resource(kind)).await?;
    eprintln!(
        "uploaded {} ({} bytes) to {}",
        file.display(),
        uploaded.size,
        uploaded.key
    );
    Ok(uploaded.object)
}

/// Creates the task as the user; with --wait, waits and prints its results.
async fn start(user: &User, task: NewTask, run: &Run) -> Result<(), PluginError> {
    let created = task::create(&user.client, &user.namespace, &task, run.name.as_deref()).await?;
    println!("{created} created in namespace {}", user.namespace);
    if run.wait {
        let object = task::wait(&user.client, &user.namespace, &created, run.timeout).await?;
        print!("{}", task::report(&created, &object)?);
    }
    Ok(())
}
