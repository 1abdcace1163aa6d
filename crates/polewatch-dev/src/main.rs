//! `polewatch-dev`: the project's development tools, kept out of the daemon binary and its Debian
//! package (issue 14): the demo video `make run` plays, the benchmarks (`polewatch-dev bench …`, see the
//! README's "Benchmarks") and the hidden helpers the benchmarks and tests start as child processes.

use anyhow::Context;
use clap::{Parser, Subcommand};
use polewatch_dev::{bench, config};
use std::path::PathBuf;
use std::process::ExitCode;

/// Development tools of polewatch: demo video, benchmarks, test helpers. Not shipped on the box.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// The daemon's configuration file, for the figures that default to its `[recognizer]` models.
    #[arg(long, short, global = true, env = "POLEWATCH_CONFIG", default_value = config::DEFAULT_PATH)]
    config: PathBuf,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Render the demo video (H.264 in MP4): vehicles with rendered plates passing a pole camera.
    DemoVideo {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 1280)]
        width: i32,
        #[arg(long, default_value_t = 720)]
        height: i32,
        #[arg(long, default_value_t = 10)]
        fps: i32,
        #[arg(long, default_value_t = 16.0)]
        seconds: f64,
    },
    /// Print performance figures.
    Bench {
        #[command(subcommand)]
        what: BenchCmd,
    },
    /// Write the JSON Schemas derived from the payload types (reads, alert, health, command, ack).
    Schemas {
        #[arg(long, default_value = "config/schemas")]
        out: PathBuf,
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
        /// Encrypt the stores of the insert, size and purge figures at rest (a random key).
        #[arg(long)]
        encrypted: bool,
        /// Also fill a clear and an encrypted store with this many reads and time exact and wildcard
        /// search and the retroactive walk on each (e.g. 1000000).
        #[arg(long, default_value_t = 0)]
        search_reads: usize,
        /// Instead of the figures above: a year of reads at each of these store sizes (e.g.
        /// 1000000,10000000): fill and insert rate, exact and wildcard search p50/p99, a day's purge.
        #[arg(long, value_delimiter = ',')]
        scale: Vec<usize>,
        /// Crop bytes stored with each read of the --scale stores (0: metadata only).
        #[arg(long, default_value_t = 0)]
        scale_crop_bytes: usize,
        /// End with one line holding the figures as a JSON object.
        #[arg(long)]
        json: bool,
    },
    /// The daemon's alert path over loopback RTSP, recognizer, tracker, store and MQTT/TLS: frame → alert
    /// latency per hotlisted pass, false alerts, analysed fps, and the return after RTSP server kills.
    /// Prints a table, then one JSON object as the last line.
    Alerts {
        /// Model set file for the daemon's recognizer.
        #[arg(long, default_value = "models/polewatch.toml")]
        models: PathBuf,
        /// Times the RTSP server is killed (-9) and restarted, at the end of a play of the clip.
        #[arg(long, default_value_t = 10)]
        kills: usize,
        /// The camera's analysis_fps.
        #[arg(long, default_value_t = 10.0)]
        analysis_fps: f64,
        /// Run the daemon at debug level and write its log (per-frame reads: plate text) to this file.
        #[arg(long)]
        frame_reads: Option<PathBuf>,
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
    /// Detection, OCR-only and end-to-end accuracy on a labelled set, per group and overall.
    Accuracy {
        /// Labelled set: `<group>/<image>.jpg` with `<image>.txt` (file, x, y, w, h, plate per line).
        #[arg(long)]
        dataset: PathBuf,
        /// Model set file to measure; default: the configuration's `[recognizer]`.
        #[arg(long)]
        models: Option<PathBuf>,
        /// A second model set file, run on the same images in the same process, shown side by side.
        #[arg(long)]
        against: Option<PathBuf>,
        /// OpenCV threads (1: per-core figures; 0: OpenCV decides).
        #[arg(long, default_value_t = 1)]
        threads: u32,
        /// Plate formats (a TOML file of `[[formats]]` tables: region, patterns); each image's group
        /// name is its region.
        #[arg(long)]
        formats: Option<PathBuf>,
        /// Each image's region is its group and the letters its file name starts with (`us/ca123.jpg`:
        /// `us-ca`), for sets whose file names give the state or country.
        #[arg(long)]
        region_from_name: bool,
        /// Drop reads below this confidence before detection and end-to-end counting, as the daemon's
        /// `[recognizer] min_read_confidence` does (default 0: the recognizer's output; OCR-only keeps all).
        #[arg(long, default_value_t = 0.0)]
        min_read_confidence: f32,
        /// Only the first N images.
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// Frames per second per core on rendered 1080p frames: detector alone, and with OCR on every plate.
    Recognize {
        #[arg(long)]
        models: Option<PathBuf>,
        #[arg(long, default_value_t = 30)]
        frames: usize,
        #[arg(long)]
        json: bool,
    },
    /// N 1080p cameras over RTSP on loopback through decode, recognizer, tracker and store.
    Pipeline {
        #[arg(long)]
        models: Option<PathBuf>,
        /// A second model set (the reference's detector and OCR) run on the same cameras and clips.
        #[arg(long)]
        against: Option<PathBuf>,
        /// Camera counts to measure, one run each.
        #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
        cameras: Vec<usize>,
        /// The clips' frame rate.
        #[arg(long, default_value_t = 25)]
        source_fps: i32,
        /// Measured seconds per run.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        #[arg(long, default_value_t = 10.0)]
        analysis_fps: f64,
        #[arg(long)]
        json: bool,
    },
    /// A broker outage at production rate with a kill -9 of the box in the middle: delivered, lost and
    /// duplicated by id, alerts before reads, backlog, RSS and drain time.
    Outage {
        #[arg(long, default_value_t = 4)]
        cameras: usize,
        #[arg(long, default_value_t = 2.0)]
        reads_per_s_per_camera: f64,
        /// One read in N is on a hotlisted plate (raises an alert).
        #[arg(long, default_value_t = 20)]
        alert_every: u64,
        #[arg(long, default_value_t = 600)]
        outage_s: u64,
        #[arg(long, default_value_t = 20)]
        before_s: u64,
        #[arg(long)]
        json: bool,
    },
    /// Simulated power cuts (only synced writes survive; LD_PRELOAD journal shim, built with `cc`) of a
    /// child writing reads, holds, audit entries and outbox messages: count acknowledged items lost.
    Powerloss {
        #[arg(long, default_value_t = 100)]
        cycles: usize,
        #[arg(long, default_value_t = 600)]
        max_delay_ms: u64,
        /// Count sync_file_range as durable as fsync (what sled assumed; its man page says not).
        #[arg(long)]
        trust_sync_file_range: bool,
        /// No full frames among the reads.
        #[arg(long)]
        no_frames: bool,
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Kill -9 a writing child many times and count acknowledged reads, holds, audit entries and outbox
    /// messages lost.
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
    /// Render the start-up check scene (src/recognize/smoke/scene.jpg) and print its plate box.
    RenderSmoke {
        #[arg(long)]
        out: PathBuf,
    },
    /// Render a plate image.
    RenderPlate {
        text: String,
        #[arg(long, default_value = "us")]
        style: String,
        #[arg(long, default_value_t = 64)]
        height: i32,
        #[arg(long)]
        out: PathBuf,
    },
    /// Serve a video file over RTSP on 127.0.0.1:PORT/cam (for `bench alerts`), printing `START <ms>`
    /// each time a client's media starts playing.
    RtspServe {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        file: PathBuf,
    },
    /// The box of `bench outage`: store, sink, hotlists and uplink fed synthetic reads until killed.
    Produce {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        port: u16,
        #[arg(long)]
        rate: f64,
        #[arg(long, default_value_t = 4)]
        cameras: usize,
        #[arg(long, default_value_t = 20)]
        alert_every: u64,
        #[arg(long, default_value_t = 0)]
        seq_start: u64,
    },
    /// Write synthetic reads (and holds, audit entries, outbox messages) until killed, printing a line for
    /// each durable one.
    WriteReads {
        #[arg(long)]
        store: PathBuf,
        #[arg(long, default_value_t = 4)]
        threads: usize,
        #[arg(long, default_value_t = 0)]
        seq_start: u64,
        /// No full frames.
        #[arg(long)]
        no_frames: bool,
    },
}

fn write_schemas(out: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for (name, text) in polewatch::uplink::schemas::generated() {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Bench { what } => bench_cmd(what, &cli.config),
        Cmd::Schemas { out } => write_schemas(&out),
        Cmd::Debug { what: DebugCmd::WriteReads { store, threads, seq_start, no_frames } } => {
            bench::crash::write_forever(&store, threads, seq_start, !no_frames)
        }
        Cmd::Debug { what: DebugCmd::Produce { dir, port, rate, cameras, alert_every, seq_start } } => {
            bench::outage::produce(&dir, port, rate, cameras, alert_every, seq_start)
        }
        Cmd::Debug { what: DebugCmd::RenderSmoke { out } } => render_smoke(&out),
        Cmd::Debug { what: DebugCmd::RtspServe { port, file } } => bench::alerts::serve_rtsp(port, &file),
        Cmd::DemoVideo { out, width, height, fps, seconds } => {
            polewatch_dev::demo::write_video(&out, width, height, fps, seconds).map_err(anyhow::Error::from).map(|n| {
                println!("{} frames written to {}", n, out.display());
            })
        }
        Cmd::Debug { what: DebugCmd::RenderPlate { text, style, height, out } } => {
            render_plate(&text, &style, height, &out)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("polewatch-dev: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The model set named by `--models`, or the configuration's `[recognizer]` models.
fn model_set(models: Option<&std::path::Path>, config_path: &std::path::Path) -> anyhow::Result<config::ModelSet> {
    if let Some(m) = models {
        return config::load_model_set(m).map_err(|e| anyhow::anyhow!("model set invalid:\n{e}"));
    }
    let loaded =
        config::load(config_path).map_err(|e| anyhow::anyhow!("configuration invalid (or pass --models):\n{e}"))?;
    let r = loaded.config.recognizer;
    Ok(config::ModelSet { name: "config".into(), detector: r.detector, ocr: r.ocr })
}

fn render_smoke(out: &std::path::Path) -> anyhow::Result<()> {
    let (scene, r) = polewatch_dev::recognize::render::smoke_scene()?;
    opencv::imgcodecs::imwrite(out, &scene, &opencv::core::Vector::new())?;
    println!("SMOKE_BOX = [{}, {}, {}, {}]", r.x, r.y, r.width, r.height);
    Ok(())
}

fn render_plate(text: &str, style: &str, height: i32, out: &std::path::Path) -> anyhow::Result<()> {
    use polewatch_dev::recognize::render::PlateStyle;
    let style = match style {
        "us" => PlateStyle::Us,
        "eu" => PlateStyle::Eu,
        "br" => PlateStyle::Br,
        other => anyhow::bail!("unknown plate style {other}: us, eu or br"),
    };
    let img = polewatch_dev::recognize::render::plate(text, style, height)?;
    opencv::imgcodecs::imwrite(out, &img, &opencv::core::Vector::new())?;
    Ok(())
}

fn bench_cmd(what: BenchCmd, config_path: &std::path::Path) -> anyhow::Result<()> {
    match what {
        BenchCmd::Accuracy {
            dataset,
            models,
            against,
            threads,
            formats,
            region_from_name,
            min_read_confidence,
            limit,
            json,
        } => {
            let formats = match formats {
                None => Vec::new(),
                Some(f) => config::load_formats(&f).map_err(|e| anyhow::anyhow!("--formats invalid:\n{e}"))?,
            };
            let ours = model_set(models.as_deref(), config_path)?;
            let theirs = against
                .map(|a| config::load_model_set(&a).map_err(|e| anyhow::anyhow!("--against model set invalid:\n{e}")))
                .transpose()?;
            bench::accuracy::run(bench::accuracy::Options {
                dataset: &dataset,
                models: &ours,
                against: theirs.as_ref(),
                threads,
                formats,
                region_from_name,
                min_read_confidence,
                limit,
                json,
            })
        }
        BenchCmd::Pipeline { models, against, cameras, source_fps, seconds, analysis_fps, json } => {
            bench::pipeline::run(bench::pipeline::Options {
                models: model_set(models.as_deref(), config_path)?,
                against: against
                    .map(|a| {
                        config::load_model_set(&a).map_err(|e| anyhow::anyhow!("--against model set invalid:\n{e}"))
                    })
                    .transpose()?,
                cameras,
                source_fps,
                seconds,
                analysis_fps,
                json,
            })
        }
        BenchCmd::Recognize { models, frames, json } => {
            bench::recognize::run(&model_set(models.as_deref(), config_path)?, frames, json)
        }
        BenchCmd::Store { insert_reads, purge_sizes, dir, encrypted, search_reads, scale, scale_crop_bytes, json } => {
            bench::store::run(&bench::store::Options {
                insert_reads,
                purge_sizes,
                dir,
                json,
                encrypted,
                search_reads,
                scale,
                scale_crop_bytes,
            })
        }
        BenchCmd::Alerts { models, kills, analysis_fps, frame_reads } => {
            bench::alerts::run(&bench::alerts::Options { models, kills, analysis_fps, frame_reads })
        }
        BenchCmd::Uplink { alerts, backlog, json } => {
            bench::uplink::run(&bench::uplink::Options { alerts, backlog, json })
        }
        BenchCmd::Hotlist { entries, reads, json } => {
            bench::print_figures(&polewatch_dev::hotlist::bench::bench(entries, reads), json);
            Ok(())
        }
        BenchCmd::Login { rounds, json } => {
            bench::print_figures(&bench::login::bench(rounds), json);
            Ok(())
        }
        BenchCmd::Audit { entries, json } => {
            bench::audit::run(&bench::audit::Options { entries, json, ..Default::default() })
        }
        BenchCmd::Crash { cycles, max_delay_ms, dir, json } => {
            let opts = bench::crash::Options {
                cycles,
                max_delay: std::time::Duration::from_millis(max_delay_ms),
                ..Default::default()
            };
            crash_bench(&opts, dir.as_deref(), json)
        }
        BenchCmd::Powerloss { cycles, max_delay_ms, trust_sync_file_range, no_frames, dir, json } => {
            use polewatch_dev::bench::powercut::SyncFileRange;
            let srange = if trust_sync_file_range { SyncFileRange::Durable } else { SyncFileRange::NotDurable };
            let opts = bench::crash::Options {
                cycles,
                max_delay: std::time::Duration::from_millis(max_delay_ms),
                cut: bench::crash::Cut::PowerLoss(srange),
                frames: !no_frames,
                ..Default::default()
            };
            crash_bench(&opts, dir.as_deref(), json)
        }
        BenchCmd::Outage { cameras, reads_per_s_per_camera, alert_every, outage_s, before_s, json } => {
            bench::outage::run(&bench::outage::Options {
                cameras,
                reads_per_s_per_camera,
                alert_every,
                before: std::time::Duration::from_secs(before_s),
                outage: std::time::Duration::from_secs(outage_s),
                json,
            })
        }
    }
}

fn crash_bench(opts: &bench::crash::Options, dir: Option<&std::path::Path>, json: bool) -> anyhow::Result<()> {
    let scratch = bench::ScratchDir::new(dir, "bench-crash")?;
    let exe = std::env::current_exe().context("cannot find my own executable")?;
    let t = std::time::Instant::now();
    let r = bench::crash::run(&exe, &scratch.0, opts)?;
    for p in &r.problems {
        eprintln!("{p}");
    }
    bench::print_figures(
        &[
            ("cycles".into(), r.cycles as f64, ""),
            ("acknowledged_reads".into(), r.acknowledged as f64, ""),
            ("acknowledged_holds".into(), r.acknowledged_holds as f64, ""),
            ("acknowledged_audit_entries".into(), r.acknowledged_audit as f64, ""),
            ("acknowledged_outbox_messages".into(), r.acknowledged_outbox as f64, ""),
            ("acknowledged_reads_lost".into(), r.lost as f64, ""),
            ("acknowledged_reads_damaged".into(), r.damaged as f64, ""),
            ("acknowledged_holds_lost".into(), r.lost_holds as f64, ""),
            ("acknowledged_audit_entries_lost".into(), r.lost_audit as f64, ""),
            ("audit_log_refused_cycles".into(), r.audit_failures as f64, ""),
            ("acknowledged_outbox_lost".into(), r.lost_outbox as f64, ""),
            ("store_failed_to_open".into(), r.failed_opens as f64, ""),
            ("acknowledged_items_in_stores_that_did_not_open".into(), r.lost_with_store as f64, ""),
            ("store_found_corrupt".into(), r.corrupt_recoveries as f64, ""),
            ("simulated_writes_dropped".into(), r.dropped_writes as f64, ""),
            ("simulated_writes_torn".into(), r.torn_writes as f64, ""),
            ("violations".into(), r.violations() as f64, ""),
            ("elapsed_s".into(), t.elapsed().as_secs_f64(), "s"),
        ],
        json,
    );
    Ok(())
}
