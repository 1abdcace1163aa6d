use anyhow::Context;
use clap::{Parser, Subcommand};
use polewatch::{config, ops};
use std::path::PathBuf;
use std::process::ExitCode;

/// Edge daemon for pole-mounted licence-plate-reader cameras.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Main configuration file; drop-ins are read from `conf.d/*.toml` beside it.
    #[arg(long, short, global = true, env = "POLEWATCH_CONFIG", default_value = config::DEFAULT_PATH)]
    config: PathBuf,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the daemon (under systemd: Type=notify).
    Run,
    /// Validate the configuration and exit; non-zero on any error.
    CheckConfig,
    /// Manage users, offline on the store (the first admin is made here).
    User(polewatch::cli::user::UserArgs),
    /// Verify, show and checkpoint the audit log (offline on the store), verify it through the running
    /// daemon (`verify --online`) and print the compliance report for a period (`report`).
    Audit(polewatch::cli::audit::AuditArgs),
    /// Check an export bundle against the device's public key; print that key.
    Export(polewatch::cli::export::ExportArgs),
    /// Write the man pages (polewatch.1 and one per subcommand, from this CLI) into a folder.
    Man {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// The store's encryption key: generate one, rotate (re-encrypt) offline.
    Store(polewatch::cli::store::StoreArgs),
    /// Print the usage and privacy policy this configuration enforces (Markdown, or HTML with --html).
    Policy {
        #[arg(long)]
        html: bool,
    },
    /// Find and read the plates in images; prints one JSON object per image.
    Recognize {
        /// Images (JPEG or PNG).
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// A model set file (`[detector]`, `[ocr]`); default: the configuration's `[recognizer]`.
        #[arg(long)]
        models: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Run => run(cli.config),
        Cmd::CheckConfig => return check_config(&cli.config),
        Cmd::Recognize { images, models } => return recognize_images(&images, models.as_deref(), &cli.config),
        Cmd::Policy { html } => with_config(&cli.config, |c| {
            let roles = polewatch::api::role_lines();
            print!(
                "{}",
                if html {
                    polewatch::config::policy::html(c, &roles)
                } else {
                    polewatch::config::policy::markdown(c, &roles)
                }
            );
            Ok(())
        }),
        Cmd::User(args) => with_config(&cli.config, |c| polewatch::cli::user::run(c, args)),
        Cmd::Audit(args) => with_config(&cli.config, |c| polewatch::cli::audit::run(c, args)),
        Cmd::Export(args) => match args.command {
            polewatch::cli::export::ExportCmd::Key => {
                with_config(&cli.config, |c| polewatch::cli::export::run(Some(c), args))
            }
            _ => polewatch::cli::export::run(None, args),
        },
        Cmd::Man { out } => write_man_pages(&out),
        Cmd::Store(args) => match args.command {
            // A key is made before any configuration names it.
            polewatch::cli::store::StoreCmd::GenKey { file } => polewatch::cli::store::gen_key(&file),
            command => with_config(&cli.config, |c| {
                polewatch::cli::store::run(c, polewatch::cli::store::StoreArgs { command })
            }),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("polewatch: error: {e:#}");
            log::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// One page per command and subcommand (`polewatch-audit-verify.1`, …), hidden ones left out.
fn write_man_pages(out: &std::path::Path) -> anyhow::Result<()> {
    use clap::CommandFactory;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut cmd = Cli::command();
    cmd.build();
    let mut n = 0;
    fn walk(cmd: &clap::Command, name: String, out: &std::path::Path, n: &mut usize) -> anyhow::Result<()> {
        let page = cmd.clone().display_name(&name).version(env!("CARGO_PKG_VERSION"));
        let path = out.join(format!("{name}.1"));
        let mut f = std::fs::File::create(&path).with_context(|| format!("cannot write {}", path.display()))?;
        clap_mangen::Man::new(page).render(&mut f).with_context(|| format!("cannot write {}", path.display()))?;
        *n += 1;
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
            walk(sub, format!("{name}-{}", sub.get_name()), out, n)?;
        }
        Ok(())
    }
    walk(&cmd, "polewatch".into(), out, &mut n)?;
    println!("{n} man pages written to {}", out.display());
    Ok(())
}

fn with_config(path: &std::path::Path, f: impl FnOnce(&config::Config) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let loaded = config::load(path).map_err(|e| anyhow::anyhow!("configuration invalid:\n{e}"))?;
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    f(&loaded.config)
}

fn check_config(path: &std::path::Path) -> ExitCode {
    match config::load(path) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("warning: {w}");
            }
            let now = jiff::Timestamp::now().as_millisecond();
            let mut bad = false;
            for f in &loaded.config.hotlists.files {
                if let Err(e) = polewatch::hotlist::load_file(f, now) {
                    eprintln!("{e}");
                    bad = true;
                }
            }
            if bad {
                eprintln!("configuration invalid: a hotlist is rejected");
                return ExitCode::FAILURE;
            }
            let files: Vec<String> = loaded.files.iter().map(|f| f.display().to_string()).collect();
            println!(
                "configuration OK: {} (site {}, device {}, {} camera(s))",
                files.join(", "),
                loaded.config.site.site_id,
                loaded.config.site.device_id,
                loaded.config.cameras.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("configuration invalid:\n{e}");
            ExitCode::FAILURE
        }
    }
}

fn run(path: PathBuf) -> anyhow::Result<()> {
    let malloc_tuned = ops::malloc::tune();
    let loaded = config::load(&path).map_err(|e| anyhow::anyhow!("configuration invalid:\n{e}"))?;
    ops::logging::init(&loaded.config.logging)?;
    if !malloc_tuned {
        log::warn!("malloc settings not applied; memory use may be higher than documented");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("polewatch")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(ops::supervisor::run(path, loaded))
}

fn recognize_images(images: &[PathBuf], models: Option<&std::path::Path>, config_path: &std::path::Path) -> ExitCode {
    let rec = match models {
        // A model set alone: default thresholds, no formats, five candidates.
        Some(m) => config::load_model_set(m).map_err(|e| anyhow::anyhow!("model set invalid:\n{e}")).and_then(|set| {
            let ocr = set.ocr.as_ref().context("no [ocr] model in the model set")?;
            Ok(polewatch::recognize::Recognizer::new(
                set.detector.as_ref(),
                ocr,
                config::DnnBackend::Cpu,
                0.35,
                &[],
                5,
            )?
            .checked()?)
        }),
        // The configuration's [recognizer], as the daemon builds it.
        None => config::load(config_path)
            .map_err(|e| anyhow::anyhow!("configuration invalid (or pass --models):\n{e}"))
            .and_then(|l| Ok(polewatch::recognize::Recognizer::from_config(&l.config.recognizer)?)),
    };
    let mut rec = match rec {
        Ok(r) => r,
        Err(e) => {
            eprintln!("polewatch: error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = false;
    for path in images {
        let t = std::time::Instant::now();
        let result = std::fs::read(path)
            .map_err(anyhow::Error::from)
            .and_then(|b| Ok(polewatch::recognize::decode_image(&b)?))
            .and_then(|m| {
                let size = (opencv::prelude::MatTraitConst::cols(&m), opencv::prelude::MatTraitConst::rows(&m));
                Ok((size, rec.recognize(&m, &polewatch::recognize::View::default())?))
            });
        let line = match result {
            Ok(((w, h), r)) => serde_json::json!({
                "image": path.display().to_string(), "width": w, "height": h, "reads": r.reads,
                "detect_ms": r.detect_ms, "ocr_ms": r.ocr_ms, "total_ms": t.elapsed().as_secs_f64() * 1e3,
            }),
            Err(e) => {
                failed = true;
                serde_json::json!({ "image": path.display().to_string(), "error": format!("{e:#}") })
            }
        };
        println!("{line}");
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
