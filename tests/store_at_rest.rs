//! Issue 16 §2 and §3 on a real store: encryption at rest (nothing readable on disk, search and
//! retroactive matching still work, wrong keys refused, rotation interrupted and resumed) and disk
//! watermarks (each step, a full disk refusing reads, recovery) on a fake free-space source and on a
//! real small tmpfs.

use polewatch::access::{AuditError, AuditSink, NewAuditEntry};
use polewatch::store::crypt::{Key, Keyring};
use polewatch::store::disk::{DiskLevel, DiskSpace, SpaceSource, Statvfs, Watermarks};
use polewatch::store::*;
use polewatch_dev::bench::synthetic_read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

const T0: i64 = 1_790_000_000_000;
const MIB: u64 = 1024 * 1024;

fn key(b: u8) -> Key {
    Key::from_bytes(&[b; 32], PathBuf::from(format!("test-key-{b}")))
}

fn opts(dir: &Path, keys: Option<Keyring>) -> StoreOptions {
    let mut o = StoreOptions::at(dir.join("store"));
    o.commit_batch = 64;
    o.keys = keys.map(Arc::new);
    o
}

fn plate(i: usize) -> String {
    format!("PWX{i:04}")
}

/// A read with a crop and a frame that start with the JPEG magic and carry the plate text inside.
fn read(i: usize) -> NewRead {
    let p = plate(i);
    let mut r = synthetic_read(i as u64, T0 + i as i64, 0);
    r.plate = Plate::new(&p).unwrap();
    r.candidates = vec![Candidate { text: p.clone(), confidence: 0.8 }];
    let mut crop = vec![0xFF, 0xD8, 0xFF, 0xE0];
    crop.extend_from_slice(p.as_bytes());
    crop.extend(std::iter::repeat_n(0x11, 100));
    let mut frame = vec![0xFF, 0xD8, 0xFF, 0xDB];
    frame.extend_from_slice(p.as_bytes());
    frame.extend(std::iter::repeat_n(0x22, 300));
    r.crop_jpeg = Some(crop);
    r.frame_jpeg = Some(frame);
    r
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Files under `dir` that contain `needle`.
fn grep(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|f| std::fs::read(f).unwrap().windows(needle.len()).any(|w| w == needle))
        .collect()
}

fn store_reads(s: &Store, n: usize) -> Vec<ReadId> {
    let mut ids = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(50) {
        ids.extend(s.put_reads(chunk.iter().map(|&i| read(i)).collect()).unwrap());
    }
    ids
}

fn search(s: &Store, p: &str) -> Vec<String> {
    let mut v: Vec<String> = s
        .search(&PlatePattern::parse(p).unwrap(), usize::MAX)
        .unwrap()
        .into_iter()
        .map(|r| r.plate.expose().to_string())
        .collect();
    v.sort();
    v
}

/// Every read readable, with its images, and findable by exact and wildcard search.
fn assert_all_readable(s: &Store, ids: &[ReadId]) {
    for (i, id) in ids.iter().enumerate() {
        let r = s.get_read(*id).unwrap().expect("read is there");
        assert_eq!(r.plate.expose(), plate(i));
        assert_eq!(s.image(*id, ImageKind::Crop).unwrap(), read(i).crop_jpeg);
        assert_eq!(s.image(*id, ImageKind::Frame).unwrap(), read(i).frame_jpeg);
    }
    let n = ids.len();
    for i in [0, n / 2, n - 1] {
        assert_eq!(search(s, &plate(i)), vec![plate(i)], "exact search");
    }
    assert_eq!(search(s, "PWX00*").len(), n.min(100), "prefix wildcard");
    let j = n - 3;
    assert_eq!(search(s, &format!("*{}", &plate(j)[3..])), vec![plate(j)], "suffix wildcard");
    assert_eq!(search(s, &format!("?{}", &plate(j)[1..])), vec![plate(j)]);
    assert_eq!(search(s, "*").len(), n);
    assert!(search(s, "QQQ*").is_empty());
}

#[test]
fn encrypted_store_holds_no_plate_text_and_no_jpeg_magic_on_disk() {
    let n = 150;
    // Control: the same reads in a clear store are found by the same grep (so the grep can fail).
    let clear = tempfile::tempdir().unwrap();
    let (s, _) = Store::open(&opts(clear.path(), None)).unwrap();
    store_reads(&s, n);
    s.close().unwrap();
    assert!(!grep(clear.path(), plate(7).as_bytes()).is_empty(), "clear store shows its plates");
    assert!(!grep(clear.path(), &[0xFF, 0xD8, 0xFF, 0xE0]).is_empty(), "clear store shows its JPEGs");

    let d = tempfile::tempdir().unwrap();
    let (s, _) = Store::open(&opts(d.path(), Some(Keyring::single(key(1))))).unwrap();
    assert!(s.encrypted());
    let ids = store_reads(&s, n);
    s.place_hold(
        ids[3],
        HoldRequest { placed_by: "det".into(), case_number: "C-1".into(), reason: "case".into(), expires_at_ms: None },
        T0,
    )
    .unwrap();
    assert_all_readable(&s, &ids);
    // Retroactive hotlist matching walks reads by time: it sees every plate.
    let mut seen = Vec::new();
    s.for_each_read_since(T0, |r| {
        seen.push(r.plate.expose().to_string());
        true
    })
    .unwrap();
    assert_eq!(seen.len(), n);
    assert_eq!(seen[42], plate(42));
    s.close().unwrap();

    let files = files_under(d.path());
    assert!(!files.is_empty());
    for i in 0..n {
        assert_eq!(grep(d.path(), plate(i).as_bytes()), Vec::<PathBuf>::new(), "plate {i} in clear text on disk");
    }
    // The JPEG start (SOI FF D8, then a marker FF E0/FF DB). Three bytes alone would turn up by chance in
    // random ciphertext about once per 16 MB; the four-byte starts the images have cannot.
    assert_eq!(grep(d.path(), &[0xFF, 0xD8, 0xFF, 0xE0]), Vec::<PathBuf>::new(), "JPEG crop magic on disk");
    assert_eq!(grep(d.path(), &[0xFF, 0xD8, 0xFF, 0xDB]), Vec::<PathBuf>::new(), "JPEG frame magic on disk");
    // Camera ids and other metadata are sealed too.
    assert_eq!(grep(d.path(), b"cam1"), Vec::<PathBuf>::new());

    // Reopened with the key: everything is there.
    let (s, outcome) = Store::open(&opts(d.path(), Some(Keyring::single(key(1))))).unwrap();
    assert_eq!(outcome, OpenOutcome::Opened);
    assert_all_readable(&s, &ids);
}

#[test]
fn a_wrong_or_missing_key_refuses_to_open_and_a_clear_store_is_not_mixed() {
    let d = tempfile::tempdir().unwrap();
    let (s, _) = Store::open(&opts(d.path(), Some(Keyring::single(key(1))))).unwrap();
    let ids = store_reads(&s, 20);
    s.close().unwrap();

    let err = Store::open(&opts(d.path(), Some(Keyring::single(key(2))))).err().expect("wrong key refused");
    assert!(matches!(err, StoreError::Encryption { .. }), "{err}");
    assert!(err.to_string().contains("not this store's key"), "{err}");
    let err = Store::open(&opts(d.path(), None)).err().expect("no key refused");
    assert!(err.to_string().contains("is encrypted"), "{err}");
    // Refusals changed nothing.
    let (s, _) = Store::open(&opts(d.path(), Some(Keyring::single(key(1))))).unwrap();
    assert_all_readable(&s, &ids);
    s.close().unwrap();

    // A store with clear reads is not opened with a key (it would mix); rotate-key encrypts it.
    let c = tempfile::tempdir().unwrap();
    let (s, _) = Store::open(&opts(c.path(), None)).unwrap();
    store_reads(&s, 5);
    s.close().unwrap();
    let err = Store::open(&opts(c.path(), Some(Keyring::single(key(1))))).err().expect("clear store refused");
    assert!(err.to_string().contains("clear text"), "{err}");
}

#[test]
fn rotation_interrupted_and_resumed_ends_with_everything_under_the_new_key() {
    let d = tempfile::tempdir().unwrap();
    let (s, _) = Store::open(&opts(d.path(), Some(Keyring::single(key(1))))).unwrap();
    let ids = store_reads(&s, 450);
    s.close().unwrap();

    let rotating = |dir: &Path, old: Vec<Key>| {
        let mut o = opts(dir, Some(Keyring { current: key(2), old, accept_plain: true }));
        o.rotating = true;
        Store::open(&o).unwrap().0
    };
    // Interrupted after two batches of 100.
    let s = rotating(d.path(), vec![key(1)]);
    let rep = s.rotate_keys(100, Some(2)).unwrap();
    assert!(!rep.finished);
    assert_eq!(rep.reads, 200);
    // Mid-rotation both keys read everything.
    assert_all_readable(&s, &ids);
    s.close().unwrap();

    // Neither key alone starts the store while the rotation is unfinished.
    for k in [1, 2] {
        let err =
            Store::open(&opts(d.path(), Some(Keyring::single(key(k))))).err().expect("interrupted rotation refused");
        assert!(err.to_string().contains("interrupted"), "{err}");
    }
    // Resuming with another new key is refused.
    let mut o = opts(d.path(), Some(Keyring { current: key(3), old: vec![key(1)], accept_plain: true }));
    o.rotating = true;
    assert!(Store::open(&o).err().expect("other key refused").to_string().contains("unfinished key rotation"));

    // Resumed: only the rest is re-sealed.
    let s = rotating(d.path(), vec![key(1)]);
    let rep = s.rotate_keys(100, None).unwrap();
    assert!(rep.finished);
    assert_eq!(rep.reads, 250);
    s.close().unwrap();

    // The new key alone reads every value (a value left under the old key would not open).
    let (s, _) = Store::open(&opts(d.path(), Some(Keyring::single(key(2))))).unwrap();
    assert_all_readable(&s, &ids);
    s.close().unwrap();
    let err = Store::open(&opts(d.path(), Some(Keyring::single(key(1))))).err().expect("old key no longer opens it");
    assert!(err.to_string().contains("not this store's key"), "{err}");
}

#[test]
fn rotate_key_encrypts_a_clear_store() {
    let d = tempfile::tempdir().unwrap();
    let (s, _) = Store::open(&opts(d.path(), None)).unwrap();
    let ids = store_reads(&s, 120);
    s.close().unwrap();
    let mut o = opts(d.path(), Some(Keyring { current: key(5), old: vec![], accept_plain: true }));
    o.rotating = true;
    let (s, _) = Store::open(&o).unwrap();
    let rep = s.rotate_keys(50, None).unwrap();
    assert!(rep.finished && rep.reads == 120 && rep.images == 240, "{rep:?}");
    // Each read's clear forward and reversed index entries went in its own transaction: none left over.
    assert_eq!(rep.index_removed, 0);
    s.close().unwrap();
    let (s, _) = Store::open(&opts(d.path(), Some(Keyring::single(key(5))))).unwrap();
    assert_all_readable(&s, &ids);
}

// ---- Disk watermarks ----

#[derive(Default)]
struct MemorySink(Mutex<Vec<NewAuditEntry>>);

impl AuditSink for MemorySink {
    fn record(&self, entry: NewAuditEntry) -> std::result::Result<u64, AuditError> {
        let mut v = self.0.lock().unwrap();
        v.push(entry);
        Ok(v.len() as u64)
    }
}

#[derive(Debug)]
struct FakeSpace {
    total: u64,
    avail: AtomicU64,
}

impl FakeSpace {
    fn set_used_pct(&self, pct: f64) {
        self.avail.store((self.total as f64 * (100.0 - pct) / 100.0) as u64, Ordering::SeqCst);
    }
}

impl SpaceSource for FakeSpace {
    fn space(&self, _: &Path) -> std::io::Result<DiskSpace> {
        Ok(DiskSpace::unreserved(self.total, self.avail.load(Ordering::SeqCst)))
    }
}

fn marks() -> Watermarks {
    Watermarks { warn_pct: 85.0, frames_pct: 90.0, crops_pct: 95.0, reserve_bytes: 64 * MIB }
}

fn kept(s: &Store, id: ReadId) -> (bool, bool) {
    let r = s.get_read(id).unwrap().expect("acknowledged read is there");
    assert_eq!(r.has_crop, s.image(id, ImageKind::Crop).unwrap().is_some());
    assert_eq!(r.has_frame, s.image(id, ImageKind::Frame).unwrap().is_some());
    (r.has_crop, r.has_frame)
}

#[test]
fn watermark_steps_drop_frames_then_crops_refuse_when_full_and_recover() {
    let d = tempfile::tempdir().unwrap();
    let space = Arc::new(FakeSpace { total: 10_000 * MIB, avail: AtomicU64::new(0) });
    space.set_used_pct(50.0);
    let mut o = opts(d.path(), Some(Keyring::single(key(1))));
    o.disk = Some((marks(), space.clone()));
    let (s, _) = Store::open(&o).unwrap();
    let sink = Arc::new(MemorySink::default());
    s.set_audit_sink(sink.clone());
    let mut acked = Vec::new();
    let mut put = |i: usize| -> polewatch::store::Result<ReadId> {
        let r = s.put_read(read(i));
        if let Ok(id) = &r {
            acked.push(*id);
        }
        r
    };
    assert_eq!(kept(&s, put(0).unwrap()), (true, true));
    space.set_used_pct(86.0);
    assert_eq!(kept(&s, put(1).unwrap()), (true, true), "warn keeps everything");
    assert_eq!(s.disk_state().unwrap().level, DiskLevel::Warn);
    space.set_used_pct(91.0);
    assert_eq!(kept(&s, put(2).unwrap()), (true, false), "no frames");
    space.set_used_pct(96.0);
    assert_eq!(kept(&s, put(3).unwrap()), (false, false), "no crops, metadata kept");
    space.avail.store(10 * MIB, Ordering::SeqCst);
    let err = put(4).expect_err("full disk refuses");
    assert!(matches!(err, StoreError::DiskFull { .. }), "{err}");
    assert!(err.to_string().contains("disk full"), "{err}");
    assert!(s.put_reads(vec![read(5), read(6)]).is_err());
    assert_eq!(s.count_reads(), 4, "nothing of a refused read was written");
    assert_eq!(s.disk_state().unwrap().level, DiskLevel::Full);
    // Space returns: reads are taken again, with their images.
    space.set_used_pct(40.0);
    assert_eq!(kept(&s, put(7).unwrap()), (true, true));
    let steps: Vec<String> =
        sink.0.lock().unwrap().iter().map(|e| e.detail.split(':').next().unwrap().to_string()).collect();
    assert_eq!(
        steps,
        [
            "disk watermark ok → warn",
            "disk watermark warn → no_frames",
            "disk watermark no_frames → no_crops",
            "disk watermark no_crops → full",
            "disk watermark full → ok"
        ]
    );
    assert!(sink.0.lock().unwrap().iter().all(|e| e.action == Some(polewatch::access::Action::DiskWatermark)));
    s.close().unwrap();
    let (s, _) = Store::open(&opts(d.path(), Some(Keyring::single(key(1))))).unwrap();
    for id in &acked {
        assert!(s.get_read(*id).unwrap().is_some());
    }
    assert_eq!(s.count_reads(), acked.len());
}

#[test]
fn a_store_opened_above_a_watermark_records_the_step_it_found() {
    let d = tempfile::tempdir().unwrap();
    let space = Arc::new(FakeSpace { total: 10_000 * MIB, avail: AtomicU64::new(0) });
    space.set_used_pct(92.0);
    let mut o = opts(d.path(), None);
    o.disk = Some((marks(), space.clone()));
    let (s, _) = Store::open(&o).unwrap();
    let sink = Arc::new(MemorySink::default());
    s.set_audit_sink(sink.clone());
    let got: Vec<String> =
        sink.0.lock().unwrap().iter().map(|e| e.detail.split(':').next().unwrap().to_string()).collect();
    assert_eq!(got, ["disk watermark ok → no_frames"]);
    assert_eq!(s.disk_state().unwrap().level, DiskLevel::NoFrames);
}

/// Unmounts on drop, failure included.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

fn fill_to(filler: &Path, mount: &Path, used_pct: f64) -> std::io::Result<()> {
    use std::io::Write;
    let sp = Statvfs.space(mount)?;
    // Past 100 %: asks for more than there is, to meet ENOSPC.
    let want = (sp.total_bytes as f64 * used_pct / 100.0) as u64;
    let used = sp.total_bytes - sp.avail_bytes;
    if want <= used {
        return Ok(());
    }
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(filler)?;
    let chunk = vec![0x5Au8; 64 * 1024];
    let mut left = want - used;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        f.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    f.sync_all()
}

/// Fills a real 48 MiB tmpfs through each step with a filler file, then to ENOSPC: new reads are refused
/// with a clear error, nothing acknowledged is lost, and reads are taken again when space returns.
/// Needs root to mount; elsewhere it says so and returns (the fake-source test above covers the logic).
#[test]
fn a_real_small_filesystem_filled_through_every_step_to_enospc() {
    let d = tempfile::tempdir().unwrap();
    let mnt = d.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=48m,mode=0700", "tmpfs"])
        .arg(&mnt)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("SKIPPED: cannot mount a tmpfs here (not root?); the fake free-space test covers the steps");
        return;
    }
    let _m = Mount(mnt.clone());
    let filler = mnt.join("filler");
    // The database and the reserve must fit: thresholds low enough for a 48 MiB disk.
    let wm = Watermarks { warn_pct: 55.0, frames_pct: 65.0, crops_pct: 75.0, reserve_bytes: 4 * MIB };
    let mut o = StoreOptions::at(mnt.join("store"));
    o.keys = Some(Arc::new(Keyring::single(key(9))));
    o.disk = Some((wm, Arc::new(Statvfs)));
    let (s, _) = Store::open(&o).unwrap();
    let sink = Arc::new(MemorySink::default());
    s.set_audit_sink(sink.clone());
    let mut acked: Vec<ReadId> = Vec::new();
    let mut i = 0;
    let mut step = |s: &Store, expect: (bool, bool), acked: &mut Vec<ReadId>| {
        for _ in 0..5 {
            let id = s.put_read(read(i)).expect("read taken");
            i += 1;
            acked.push(id);
            assert_eq!(kept(s, id), expect);
        }
    };
    step(&s, (true, true), &mut acked);
    fill_to(&filler, &mnt, 58.0).unwrap();
    step(&s, (true, true), &mut acked);
    assert_eq!(s.disk_state().unwrap().level, DiskLevel::Warn);
    fill_to(&filler, &mnt, 68.0).unwrap();
    step(&s, (true, false), &mut acked);
    fill_to(&filler, &mnt, 78.0).unwrap();
    step(&s, (false, false), &mut acked);
    // To ENOSPC: the filler takes every free byte the kernel gives.
    let e = fill_to(&filler, &mnt, 110.0).expect_err("the tmpfs fills up");
    assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
    assert!(Statvfs.space(&mnt).unwrap().avail_bytes < 4 * MIB);
    let err = s.put_read(read(999)).expect_err("full disk refuses new reads");
    assert!(matches!(err, StoreError::DiskFull { .. }), "{err}");
    assert_eq!(s.disk_state().unwrap().level, DiskLevel::Full);
    for id in &acked {
        assert!(s.get_read(*id).unwrap().is_some(), "acknowledged read lost");
    }
    // Space returns.
    std::fs::remove_file(&filler).unwrap();
    step(&s, (true, true), &mut acked);
    let levels: Vec<String> =
        sink.0.lock().unwrap().iter().map(|e| e.detail.split(':').next().unwrap().to_string()).collect();
    assert_eq!(
        levels,
        [
            "disk watermark ok → warn",
            "disk watermark warn → no_frames",
            "disk watermark no_frames → no_crops",
            "disk watermark no_crops → full",
            "disk watermark full → ok"
        ]
    );
    s.close().unwrap();
    let (s, _) = Store::open(&o).unwrap();
    for id in &acked {
        assert!(s.get_read(*id).unwrap().is_some(), "acknowledged read lost after reopen");
    }
    assert_eq!(s.count_reads(), acked.len());
    s.close().unwrap();
    // Key files on this disk are checked as anywhere: a 0644 key is refused.
    let kf = mnt.join("k");
    Key::generate_file(&kf).unwrap();
    std::fs::set_permissions(&kf, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(Key::load_file(&kf).is_err());
}

// ---- The binary: configuration errors, `store rotate-key`, the daemon refusing a wrong key ----

fn polewatch(cfg: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_polewatch"))
        .args(args)
        .arg("--config")
        .arg(cfg)
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .unwrap()
}

fn write_config(dir: &Path, key_file: Option<&Path>) -> PathBuf {
    let cfg = dir.join("polewatch.toml");
    let key = key_file.map(|k| format!("encryption = true\nkey_file = \"{}\"\n", k.display())).unwrap_or_default();
    std::fs::write(
        &cfg,
        format!(
            "[site]\nsite_id = \"s1\"\ndevice_id = \"d1\"\n[store]\npath = \"{}\"\n{key}[store.retention]\nrequire_clock_sync = false\n\
             [access]\naudit_key_file = \"{}\"\ndevice_key_file = \"{}\"\n[logging]\ntarget = \"stderr\"\n",
            dir.join("state/store").display(),
            dir.join("keys/audit.key").display(),
            dir.join("keys/device.key").display()
        ),
    )
    .unwrap();
    cfg
}

fn text(o: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn the_binary_checks_the_key_rotates_resumably_with_audit_and_refuses_a_wrong_key() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("keys")).unwrap();
    let (ka, kb) = (d.path().join("keys/a.key"), d.path().join("keys/b.key"));
    for k in [&ka, &kb] {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_polewatch"))
            .args(["store", "gen-key"])
            .arg(k)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
    }
    // Encryption on without a key, and with a key others can read: errors naming file, line and key.
    let cfg = d.path().join("polewatch.toml");
    std::fs::write(&cfg, "[site]\nsite_id = \"s1\"\ndevice_id = \"d1\"\n[store]\nencryption = true\n").unwrap();
    let o = polewatch(&cfg, &["check-config"]);
    assert!(!o.status.success());
    assert!(text(&o).contains(&format!("{}:5: store.encryption", cfg.display())), "{}", text(&o));
    std::fs::write(&cfg, "[site]\nsite_id = \"s1\"\ndevice_id = \"d1\"\n[store]\ndisk_frames_watermark_pct = 97\n")
        .unwrap();
    let o = polewatch(&cfg, &["check-config"]);
    assert!(!o.status.success());
    assert!(text(&o).contains(&format!("{}:5: store.disk_frames_watermark_pct", cfg.display())), "{}", text(&o));
    let cfg = write_config(d.path(), Some(&ka));
    std::fs::set_permissions(&ka, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = polewatch(&cfg, &["check-config"]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains(&format!("{}:7: store.key_file", cfg.display())) && text(&o).contains("mode 644"),
        "{}",
        text(&o)
    );
    std::fs::set_permissions(&ka, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(polewatch(&cfg, &["check-config"]).status.success());

    // A store under key A, with reads and an audit log (made by the tools the daemon uses).
    let store_opts = || StoreOptions::for_config(&polewatch::config::load(&cfg).unwrap().config.store).unwrap();
    let (s, _) = Store::open(&store_opts()).unwrap();
    let ids = store_reads(&s, 120);
    s.close().unwrap();

    // Rotation to B, stopped after one batch, then resumed.
    let kb_s = kb.to_str().unwrap();
    let o = polewatch(&cfg, &["store", "rotate-key", "--new-key", kb_s, "--batch", "50", "--max-batches", "1"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("paused"), "{}", text(&o));
    // The daemon does not start mid-rotation.
    let o = polewatch(&cfg, &["run"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("interrupted"), "{}", text(&o));
    let o = polewatch(&cfg, &["store", "rotate-key", "--new-key", kb_s, "--batch", "50"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("70 reads and 140 images re-encrypted"), "{}", text(&o));

    // Still configured with key A: the daemon refuses to start, naming the key file.
    let o = polewatch(&cfg, &["run"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("not this store's key") && text(&o).contains("a.key"), "{}", text(&o));
    // With key B everything is there and the rotation is in the audit log, which verifies.
    let cfg = write_config(d.path(), Some(&kb));
    let (s, _) = Store::open(&store_opts()).unwrap();
    assert_all_readable(&s, &ids);
    s.close().unwrap();
    let o = polewatch(&cfg, &["audit", "verify"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = polewatch(&cfg, &["audit", "show", "--action", "store_key_rotated"]);
    let shown = text(&o);
    assert_eq!(shown.lines().filter(|l| l.contains("store_key_rotated")).count(), 4, "{shown}");
    assert!(shown.contains("paused") && shown.contains("completed"), "{shown}");
}

/// Past the reserve: a disk filled by something else until the database itself meets ENOSPC. The write is
/// refused as `DiskFull`, nothing of it is acknowledged, every acknowledged read is there, and once space
/// returns the store (reopened, as the daemon's restart does) takes reads again.
#[test]
fn the_database_meeting_enospc_acknowledges_nothing_and_the_store_recovers() {
    let d = tempfile::tempdir().unwrap();
    let mnt = d.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs"])
        .arg(&mnt)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("SKIPPED: cannot mount a tmpfs here (not root?)");
        return;
    }
    let _m = Mount(mnt.clone());
    let filler = mnt.join("filler");
    // No reserve: nothing stops the write before the database does (as when something else eats the reserve
    // between the check and the write).
    let wm = Watermarks { warn_pct: 99.0, frames_pct: 99.0, crops_pct: 99.0, reserve_bytes: 0 };
    let mut o = StoreOptions::at(mnt.join("store"));
    o.keys = Some(Arc::new(Keyring::single(key(4))));
    o.disk = Some((wm, Arc::new(Statvfs)));
    let (s, _) = Store::open(&o).unwrap();
    let mut acked = Vec::new();
    for i in 0..20 {
        acked.push(s.put_read(read(i)).unwrap());
    }
    let _ = fill_to(&filler, &mnt, 110.0).expect_err("the tmpfs fills up");
    let mut refused = 0;
    let mut i = 100;
    // Big reads so the database must write soon; stop at the first refusal after a few tries.
    while refused == 0 && i < 400 {
        let mut r = read(i);
        r.crop_jpeg = Some(vec![0x33; 200_000]);
        match s.put_read(r) {
            Ok(id) => acked.push(id),
            Err(e) => {
                assert!(matches!(e, StoreError::DiskFull { .. }), "{e}");
                assert!(e.to_string().contains("No space left on device"), "{e}");
                eprintln!("refused: {e}");
                refused += 1;
            }
        }
        i += 1;
    }
    assert_eq!(refused, 1, "the database met ENOSPC");
    assert_eq!(s.disk_state().unwrap().level, DiskLevel::Full);
    std::fs::remove_file(&filler).unwrap();
    // redb refuses every write after ENOSPC until reopened; the store says so once space is back, and the
    // daemon restarts on it.
    assert!(s.put_read(read(998)).is_err());
    assert!(s.needs_reopen());
    drop(s);
    let (s, _) = Store::open(&o).expect("the store reopens once space is back");
    for id in &acked {
        assert!(s.get_read(*id).unwrap().is_some(), "acknowledged read lost");
    }
    s.put_read(read(999)).expect("reads are taken again");
    s.close().unwrap();
}
