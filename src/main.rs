use anyhow::Context;
use clap::{Parser, Subcommand};
use polewatch::{bench, config, ops};
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
    /// Verify, show and checkpoint the audit log, offline on the store.
    Audit(polewatch::cli::audit::AuditArgs),
    /// Print the usage and privacy policy this configuration enforces (Markdown, or HTML with --html).
    Policy {
        #[arg(long)]
        html: bool,
    },
    /// Print performance figures.
    Bench {
        #[command(subcommand)]
        what: BenchCmd,
    },
    /// Tools for tests and benchmarks.
    #[command(hide = true)]
    Debug {
        #[command(subcommand)]
        what: DebugCmd,
    },
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Durable insert rate, bytes on disk per read, purge time against store size.
    Store {
        /// Reads written for the insert and size figures.
        #[arg(long, default_value_t = 20_000)]
        insert_reads: usize,
        /// Store sizes for the purge figures (10% of each expires).
        #[arg(long, value_delimiter = ',', default_value = "100000,1000000")]
        purge_sizes: Vec<usize>,
        /// Where scratch stores go (default: the system temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// End with one line holding the figures as a JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Vehicle read → alert PUBACK latency and backlog drain through a local mosquitto with TLS.
    Uplink {
        #[arg(long, default_value_t = 200)]
        alerts: usize,
        #[arg(long, default_value_t = 10_000)]
        backlog: usize,
        #[arg(long)]
        json: bool,
    },
    /// Hotlist matching time per read against a large synthetic list.
    Hotlist {
        #[arg(long, default_value_t = 100_000)]
        entries: usize,
        #[arg(long, default_value_t = 20_000)]
        reads: usize,
        #[arg(long)]
        json: bool,
    },
    /// Time of one argon2id password hash and one login verification, with the parameters in use.
    Login {
        #[arg(long, default_value_t = 20)]
        rounds: usize,
        #[arg(long)]
        json: bool,
    },
    /// Durable audit appends (one and four writers) and the time to verify a large audit log.
    Audit {
        #[arg(long, default_value_t = 1_000_000)]
        entries: usize,
        #[arg(long)]
        json: bool,
    },
    /// Kill -9 a writing child many times and count acknowledged reads lost.
    Crash {
        #[arg(long, default_value_t = 200)]
        cycles: usize,
        /// Longest wait before each kill, in ms.
        #[arg(long, default_value_t = 600)]
        max_delay_ms: u64,
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum DebugCmd {
    /// Write synthetic reads until killed, printing `stored <id> <seq>` for each durable one.
    WriteReads {
        #[arg(long)]
        store: PathBuf,
        #[arg(long, default_value_t = 4)]
        threads: usize,
        #[arg(long, default_value_t = 0)]
        seq_start: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Run => run(cli.config),
        Cmd::CheckConfig => return check_config(&cli.config),
        Cmd::Bench { what } => bench_cmd(what),
        Cmd::Policy { html } => with_config(&cli.config, |c| {
            let roles = polewatch::api::role_lines();
            print!("{}", if html { polewatch::access::policy::html(c, &roles) } else { polewatch::access::policy::markdown(c, &roles) });
            Ok(())
        }),
        Cmd::User(args) => with_config(&cli.config, |c| polewatch::cli::user::run(c, args)),
        Cmd::Audit(args) => with_config(&cli.config, |c| polewatch::cli::audit::run(c, args)),
        Cmd::Debug { what: DebugCmd::WriteReads { store, threads, seq_start } } => {
            bench::crash::write_forever(&store, threads, seq_start)
        }
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
    let loaded = config::load(&path).map_err(|e| anyhow::anyhow!("configuration invalid:\n{e}"))?;
    ops::logging::init(&loaded.config.logging)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("polewatch")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(ops::supervisor::run(path, loaded))
}

fn bench_cmd(what: BenchCmd) -> anyhow::Result<()> {
    match what {
        BenchCmd::Store { insert_reads, purge_sizes, dir, json } => {
            bench::store::run(&bench::store::Options { insert_reads, purge_sizes, dir, json })
        }
        BenchCmd::Uplink { alerts, backlog, json } => bench::uplink::run(&bench::uplink::Options { alerts, backlog, json }),
        BenchCmd::Hotlist { entries, reads, json } => {
            bench::print_figures(&polewatch::hotlist::bench::bench(entries, reads), json);
            Ok(())
        }
        BenchCmd::Login { rounds, json } => {
            bench::print_figures(&polewatch::access::password::bench(rounds), json);
            Ok(())
        }
        BenchCmd::Audit { entries, json } => bench::audit::run(&bench::audit::Options { entries, json, ..Default::default() }),
        BenchCmd::Crash { cycles, max_delay_ms, dir, json } => {
            let scratch = bench::ScratchDir::new(dir.as_deref(), "bench-crash")?;
            let exe = std::env::current_exe().context("cannot find my own executable")?;
            let t = std::time::Instant::now();
            let r = bench::crash::run_cycles(&exe, &scratch.0, cycles, std::time::Duration::from_millis(max_delay_ms))?;
            for p in &r.problems {
                eprintln!("{p}");
            }
            bench::print_figures(
                &[
                    ("kill9_cycles".into(), r.cycles as f64, ""),
                    ("acknowledged_reads".into(), r.acknowledged as f64, ""),
                    ("acknowledged_reads_lost".into(), r.lost as f64, ""),
                    ("acknowledged_reads_damaged".into(), r.damaged as f64, ""),
                    ("store_failed_to_open".into(), r.failed_opens as f64, ""),
                    ("store_found_corrupt".into(), r.corrupt_recoveries as f64, ""),
                    ("elapsed_s".into(), t.elapsed().as_secs_f64(), "s"),
                ],
                json,
            );
            Ok(())
        }
    }
}
