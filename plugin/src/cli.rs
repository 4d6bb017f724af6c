//! The command line of `kubectl taskyard` (kubectl finds `kubectl-taskyard` on PATH).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "kubectl taskyard",
    bin_name = "kubectl taskyard",
    version,
    about = "Run Taskyard tasks on local files and web pages, as yourself"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// The namespace of the task (default: the kubeconfig context's namespace, else default).
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// The kubeconfig context to use (default: the current context).
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// The kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// The gateway's URL, e.g. https://taskyard.example or http://127.0.0.1:9000 (a
    /// port-forward). Default: the gateway Service through the API server's service proxy.
    #[arg(long, env = "TASKYARD_GATEWAY", global = true)]
    pub gateway: Option<String>,
    /// The gateway Service reached through the API server when --gateway is not given.
    #[arg(
        long,
        env = "TASKYARD_GATEWAY_SERVICE",
        default_value = "taskyard-system/taskyard-gateway",
        global = true
    )]
    pub gateway_service: String,
    /// The bearer token sent to the gateway (default: your kubeconfig user's token).
    #[arg(long, env = "TASKYARD_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Digests of a local file (MD5 by default): a HashTask.
    #[command(alias = "md5")]
    Hash {
        file: PathBuf,
        /// Comma-separated: md5, sha1, sha256, sha512.
        #[arg(long, default_value = "md5")]
        algorithms: String,
        #[command(flatten)]
        run: Run,
    },
    /// Resize a local image: an ImageTask.
    Resize {
        file: PathBuf,
        #[command(flatten)]
        resize: ResizeOptions,
        #[command(flatten)]
        run: Run,
    },
    /// The readable text of a web page (a URL) or of a local HTML or text file: a TextTask.
    Text {
        /// An http(s) URL, or a local file to upload.
        source: String,
        #[command(flatten)]
        run: Run,
    },
    /// Every image of a web page, optionally resized: an ImageTask.
    Images {
        /// The page's http(s) URL.
        page: String,
        #[command(flatten)]
        resize: ResizeOptions,
        /// At most this many images.
        #[arg(long)]
        max_images: Option<u32>,
        #[command(flatten)]
        run: Run,
    },
    /// A task's status and results: NAME (any kind) or KIND/NAME (hashtask/report).
    Get { task: String },
    /// Wait until a task finishes, then print its status and results.
    Wait {
        task: String,
        #[arg(long, default_value = "10m", value_parser = parse_duration)]
        timeout: Duration,
    },
}

/// How a new task is created and followed.
#[derive(Debug, Args)]
pub struct Run {
    /// The task's name (default: generated from the kind, e.g. hash-x7k2p).
    #[arg(long)]
    pub name: Option<String>,
    /// Wait for the task to finish and print its results (exit 1 if it failed).
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct ResizeOptions {
    /// Width in pixels (1 to 10000); given alone, the height is the same (a box).
    #[arg(long)]
    pub width: Option<u32>,
    /// Height in pixels (1 to 10000).
    #[arg(long)]
    pub height: Option<u32>,
    /// contain (fit inside, the default), cover (fill and crop) or fill (exact, aspect ignored).
    #[arg(long)]
    pub fit: Option<String>,
    /// original (the default), jpeg, png or webp.
    #[arg(long)]
    pub format: Option<String>,
    /// JPEG/WebP quality, 1 to 100 (default 85).
    #[arg(long)]
    pub quality: Option<u8>,
}

/// `90s`, `10m`, `1h` or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration: write e.g. 90s, 10m or 1h"))?;
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("{s:?} is not a duration: write e.g. 90s, 10m or 1h")),
    };
    Ok(Duration::from_secs(n * factor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5d").is_err());
    }

    #[test]
    fn the_examples_of_the_readme_parse() {
        for args in [
            vec!["md5", "./file.bin"],
            vec!["resize", "./photo.jpg", "--width", "200", "--wait"],
            vec!["text", "https://example.com/a.html", "-n", "team-a"],
            vec!["images", "https://example.com/", "--width", "100", "--height", "100"],
            vec!["get", "hashtask/report"],
            vec!["wait", "report", "--timeout", "2m"],
        ] {
            let all = std::iter::once("kubectl-taskyard").chain(args.iter().copied());
            Cli::try_parse_from(all).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        }
    }
}
