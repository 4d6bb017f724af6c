//! The command line of `kubectl taskyard` (kubectl finds `kubectl-taskyard` on PATH).

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};

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
    /// Upload a local file and run a task on it: --hash (the default, MD5), --resize or --text.
    Upload {
        file: PathBuf,
        #[command(flatten)]
        task: UploadAs,
        #[command(flatten)]
        run: Run,
    },
    /// Download a finished task's outputs (result, digests, text, images) into a directory.
    Fetch {
        /// NAME (any kind) or KIND/NAME (hashtask/report).
        task: String,
        #[command(flatten)]
        fetch: FetchOptions,
    },
    /// A task's status and results: NAME (any kind) or KIND/NAME (hashtask/report); with
    /// -o DIR, downloads its outputs as `fetch` does.
    Get {
        task: String,
        /// Download the task's outputs into DIR instead of printing its status.
        #[arg(short = 'o', long = "output-dir", value_name = "DIR")]
        output: Option<PathBuf>,
        /// With -o: overwrite files that already exist in DIR.
        #[arg(long, requires = "output")]
        force: bool,
        /// Wait for the task to finish first.
        #[arg(long)]
        wait: bool,
        /// How long --wait waits.
        #[arg(long, default_value = "10m", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Wait until a task finishes, then print its status and results.
    Wait {
        task: String,
        #[arg(long, default_value = "10m", value_parser = parse_duration)]
        timeout: Duration,
    },
}

/// Which task `upload` runs on the file: at most one of these (none: --hash md5).
#[derive(Debug, Args)]
#[group(required = false, multiple = false)]
pub struct UploadAs {
    /// A HashTask with these comma-separated algorithms (md5, sha1, sha256, sha512).
    #[arg(long, value_name = "ALGS")]
    pub hash: Option<String>,
    /// An ImageTask resizing the image to WIDTHxHEIGHT, optionally :contain (the default),
    /// :cover or :fill, e.g. 200x100:fill.
    #[arg(long, value_name = "WxH[:fit]", value_parser = parse_size)]
    pub resize: Option<Size>,
    /// A TextTask of the (HTML or text) file.
    #[arg(long, action = ArgAction::SetTrue)]
    pub text: bool,
}

/// A `WxH[:fit]` size.
#[derive(Clone, Debug, PartialEq)]
pub struct Size {
    pub width: u32,
    pub height: u32,
    pub fit: Option<String>,
}

impl Size {
    /// As the `resize` command's options.
    pub fn options(&self) -> ResizeOptions {
        ResizeOptions {
            width: Some(self.width),
            height: Some(self.height),
            fit: self.fit.clone(),
            format: None,
            quality: None,
        }
    }
}

/// `200x100`, `200x100:fill`: width and height 1 to 10000, fit contain, cover or fill.
pub fn parse_size(s: &str) -> Result<Size, String> {
    let how = "write WIDTHxHEIGHT[:FIT], e.g. 200x100 or 200x100:fill (FIT: contain, cover or fill)";
    let (size, fit) = match s.split_once(':') {
        Some((size, fit)) => (size, Some(fit)),
        None => (s, None),
    };
    let Some((w, h)) = size.split_once(['x', 'X']) else {
        return Err(format!("{s:?} has no WIDTHxHEIGHT: {how}"));
    };
    let pixels = |what: &str, v: &str| -> Result<u32, String> {
        match v.parse::<u32>() {
            Ok(n) if (1..=10_000).contains(&n) => Ok(n),
            Ok(n) => Err(format!("{s:?}: the {what} {n} is out of range, 1 to 10000 pixels")),
            Err(_) => Err(format!("{s:?}: the {what} {v:?} is not a number of pixels: {how}")),
        }
    };
    let (width, height) = (pixels("width", w)?, pixels("height", h)?);
    let fit = match fit {
        None => None,
        Some(f @ ("contain" | "cover" | "fill")) => Some(f.to_string()),
        Some(f) => return Err(format!("{s:?}: the fit {f:?} is not one of contain, cover, fill")),
    };
    Ok(Size { width, height, fit })
}

/// Where and how `fetch` writes a task's outputs.
#[derive(Debug, Args)]
pub struct FetchOptions {
    /// The directory to write into (default: ./NAME); created if missing.
    #[arg(short = 'o', long = "output-dir", value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Overwrite files that already exist in the directory.
    #[arg(long)]
    pub force: bool,
    /// Wait for the task to finish first (without it, an unfinished task is an error).
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub timeout: Duration,
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

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("kubectl-taskyard").chain(args.iter().copied()))
    }

    #[test]
    fn upload_defaults_to_md5_and_takes_one_task_flag() {
        let Command::Upload { file, task, run } = parse(&["upload", "a.bin"]).unwrap().command else {
            panic!("not an upload");
        };
        assert_eq!(file, PathBuf::from("a.bin"));
        assert_eq!((task.hash, task.resize, task.text), (None, None, false));
        assert!(!run.wait && run.name.is_none());
        let Command::Upload { task, run, .. } = parse(&[
            "upload",
            "p.png",
            "--resize",
            "20x10:cover",
            "--name",
            "p",
            "--wait",
            "--timeout",
            "1m",
        ])
        .unwrap()
        .command
        else {
            panic!("not an upload");
        };
        assert_eq!(
            task.resize,
            Some(Size {
                width: 20,
                height: 10,
                fit: Some("cover".into())
            })
        );
        assert_eq!(
            (run.name.as_deref(), run.wait, run.timeout),
            (Some("p"), true, Duration::from_secs(60))
        );
        for both in [
            vec!["upload", "a", "--hash", "md5", "--text"],
            vec!["upload", "a", "--resize", "2x2", "--hash", "md5"],
            vec!["upload", "a", "--text", "--resize", "2x2"],
        ] {
            let e = parse(&both).unwrap_err();
            assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict, "{both:?}");
            assert!(e.to_string().contains("cannot be used with"), "{e}");
        }
        let e = parse(&["upload", "a", "--resize", "big"]).unwrap_err().to_string();
        assert!(e.contains("WIDTHxHEIGHT"), "{e}");
    }

    #[test]
    fn sizes_are_width_x_height_with_an_optional_fit() {
        let size = |w, h, fit: Option<&str>| Size {
            width: w,
            height: h,
            fit: fit.map(str::to_string),
        };
        assert_eq!(parse_size("200x100"), Ok(size(200, 100, None)));
        assert_eq!(parse_size("1X10000:fill"), Ok(size(1, 10000, Some("fill"))));
        assert_eq!(parse_size("5x6:contain"), Ok(size(5, 6, Some("contain"))));
        for (bad, says) in [
            ("200", "no WIDTHxHEIGHT"),
            ("x100", "the width \"\" is not a number"),
            ("200x", "the height \"\" is not a number"),
            ("0x10", "the width 0 is out of range"),
            ("10x10001", "the height 10001 is out of range"),
            ("-1x5", "is not a number"),
            (
                "10x10:stretch",
                "the fit \"stretch\" is not one of contain, cover, fill",
            ),
            ("10x10:", "the fit \"\""),
        ] {
            let e = parse_size(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let r = parse_size("20x10:fill").unwrap().options();
        assert_eq!(
            (r.width, r.height, r.fit.as_deref()),
            (Some(20), Some(10), Some("fill"))
        );
    }

    #[test]
    fn fetch_and_get_take_an_output_directory() {
        let Command::Fetch { task, fetch } = parse(&["fetch", "hashtask/r"]).unwrap().command else {
            panic!("not a fetch");
        };
        assert_eq!(task, "hashtask/r");
        assert_eq!((fetch.output, fetch.force, fetch.wait), (None, false, false));
        let Command::Fetch { fetch, .. } = parse(&["fetch", "r", "-o", "d", "--force", "--wait"]).unwrap().command
        else {
            panic!("not a fetch");
        };
        assert_eq!(
            (fetch.output, fetch.force, fetch.wait),
            (Some(PathBuf::from("d")), true, true)
        );
        let Command::Get { output, .. } = parse(&["get", "r", "--output-dir", "d"]).unwrap().command else {
            panic!("not a get");
        };
        assert_eq!(output, Some(PathBuf::from("d")));
        // --force means nothing without a directory to write into.
        assert!(parse(&["get", "r", "--force"]).is_err());
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
            vec!["upload", "./file.bin", "--wait"],
            vec!["upload", "./photo.jpg", "--resize", "200x100:fill", "-n", "team-a"],
            vec!["upload", "./page.html", "--text", "--name", "page", "--timeout", "1m"],
            vec!["upload", "./file.bin", "--hash", "md5,sha256"],
            vec!["fetch", "hash-x7k2p"],
            vec!["fetch", "imagetask/resize-4tqzv", "-o", "./out", "--force"],
            vec!["get", "hash-x7k2p", "-o", "./out"],
        ] {
            let all = std::iter::once("kubectl-taskyard").chain(args.iter().copied());
            Cli::try_parse_from(all).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        }
    }
}
