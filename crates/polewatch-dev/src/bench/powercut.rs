//! Power-cut simulation for `polewatch bench powerloss`: what a disk holds after the power goes, as opposed
//! to after a `kill -9` (where the kernel's page cache still writes out everything the process wrote).
//!
//! A child runs under the LD_PRELOAD shim `powercut_shim.c`, which journals every write, truncation,
//! creation, rename, unlink, `fsync`/`fdatasync` and `sync_file_range` under one directory, in the order
//! they completed. After the child is killed, [`Model`] replays the journal over the directory's state from
//! before the child started and builds the disk after a power cut:
//! - a file's data is what its last `fsync`/`fdatasync` covered; writes after it are lost, all of them or a
//!   random subset in order, one of them possibly torn at a 512-byte sector;
//! - names (create, rename, unlink, mkdir) persist in the order they were made (a journalling file system
//!   such as ext4 commits them in order; the model does not lose them, so it is kinder than a real disk
//!   there);
//! - `sync_file_range` counts as durable only under [`SyncFileRange::Durable`]. Its man page says it
//!   writes no metadata and does not flush the disk's write cache, so "there are no guarantees that the
//!   data will be available after a crash"; [`SyncFileRange::NotDurable`] models that.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The shim's source, compiled with `cc` into the scratch directory by [`build_shim`].
pub const SHIM_SOURCE: &str = include_str!("powercut_shim.c");

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Write { path: PathBuf, off: u64, data: Vec<u8> },
    Truncate { path: PathBuf, len: u64 },
    Fsync { path: PathBuf },
    SyncRange { path: PathBuf },
    Create { path: PathBuf },
    Rename { from: PathBuf, to: PathBuf },
    Unlink { path: PathBuf },
    Mkdir { path: PathBuf },
}

/// Parses the shim's journal; a record cut off by the kill (the last one) is ignored.
pub fn parse_journal(b: &[u8]) -> Vec<Op> {
    use std::os::unix::ffi::OsStrExt;
    fn take<'a>(b: &'a [u8], at: &mut usize, n: usize) -> Option<&'a [u8]> {
        let s = b.get(*at..at.checked_add(n)?)?;
        *at += n;
        Some(s)
    }
    let u32_at = |s: &[u8]| u32::from_le_bytes(s.try_into().unwrap_or([0; 4])) as usize;
    let u64_at = |s: &[u8]| u64::from_le_bytes(s.try_into().unwrap_or([0; 8]));
    let mut out = Vec::new();
    let mut at = 0;
    loop {
        let rec = (|| {
            let kind = take(b, &mut at, 1)?[0];
            let plen = u32_at(take(b, &mut at, 4)?);
            let path = PathBuf::from(std::ffi::OsStr::from_bytes(take(b, &mut at, plen)?));
            let a = u64_at(take(b, &mut at, 8)?);
            let _b = u64_at(take(b, &mut at, 8)?);
            let dlen = u32_at(take(b, &mut at, 4)?);
            let data = take(b, &mut at, dlen)?.to_vec();
            Some(match kind {
                1 => Op::Write { path, off: a, data },
                2 => Op::Truncate { path, len: a },
                3 => Op::Fsync { path },
                4 => Op::Create { path },
                5 => Op::Rename { from: path, to: PathBuf::from(std::ffi::OsStr::from_bytes(&data)) },
                6 => Op::Unlink { path },
                7 => Op::Mkdir { path },
                8 => Op::SyncRange { path },
                _ => return None,
            })
        })();
        match rec {
            Some(op) => out.push(op),
            None => return out,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncFileRange {
    /// As durable as fsync (what sled assumed).
    Durable,
    /// No guarantee (what the man page says).
    NotDurable,
}

/// What becomes of the writes made after a file's last sync when the power goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// All lost.
    LoseAll,
    /// Each kept or lost at random, in order, one kept write possibly torn at a sector boundary.
    Random,
}

#[derive(Debug, Clone)]
enum Pending {
    Write { off: u64, data: Vec<u8> },
    Truncate { len: u64 },
}

#[derive(Debug, Clone)]
enum Node {
    Dir,
    File { durable: Vec<u8>, pending: Vec<Pending>, mode: u32 },
}

/// The files under one directory as the disk holds them (see the module's doc).
#[derive(Debug, Clone, Default)]
pub struct Model {
    nodes: BTreeMap<PathBuf, Node>,
    /// Writes lost or torn by the last [`Model::materialize`] (for the report).
    pub last_dropped_writes: usize,
    pub last_torn_writes: usize,
}

fn apply(content: &mut Vec<u8>, p: &Pending) {
    match p {
        Pending::Write { off, data } => {
            let off = *off as usize;
            if content.len() < off + data.len() {
                content.resize(off + data.len(), 0);
            }
            content[off..off + data.len()].copy_from_slice(data);
        }
        Pending::Truncate { len } => content.resize(*len as usize, 0),
    }
}

impl Model {
    /// Everything under `root` as it is now, all of it durable (taken while nothing has it open).
    pub fn load(root: &Path) -> std::io::Result<Model> {
        use std::os::unix::fs::PermissionsExt;
        let mut m = Model::default();
        m.nodes.insert(root.to_path_buf(), Node::Dir);
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir)? {
                let e = e?;
                let meta = e.metadata()?;
                if meta.is_dir() {
                    m.nodes.insert(e.path(), Node::Dir);
                    stack.push(e.path());
                } else if meta.is_file() {
                    let mode = meta.permissions().mode() & 0o777;
                    m.nodes
                        .insert(e.path(), Node::File { durable: std::fs::read(e.path())?, pending: Vec::new(), mode });
                }
            }
        }
        Ok(m)
    }

    fn file(&mut self, path: &Path) -> &mut Node {
        self.nodes.entry(path.to_path_buf()).or_insert_with(|| Node::File {
            durable: Vec::new(),
            pending: Vec::new(),
            mode: 0o600,
        })
    }

    fn sync(&mut self, path: &Path) {
        if let Some(Node::File { durable, pending, .. }) = self.nodes.get_mut(path) {
            for p in pending.drain(..) {
                apply(durable, &p);
            }
        }
    }

    /// Replays the journal's operations in order.
    pub fn replay(&mut self, ops: &[Op], srange: SyncFileRange) {
        for op in ops {
            match op {
                Op::Write { path, off, data } => {
                    if let Node::File { pending, .. } = self.file(path) {
                        pending.push(Pending::Write { off: *off, data: data.clone() });
                    }
                }
                Op::Truncate { path, len } => {
                    if let Node::File { pending, .. } = self.file(path) {
                        pending.push(Pending::Truncate { len: *len });
                    }
                }
                Op::Fsync { path } => self.sync(path),
                Op::SyncRange { path } => {
                    if srange == SyncFileRange::Durable {
                        self.sync(path)
                    }
                }
                Op::Create { path } => {
                    self.nodes
                        .insert(path.clone(), Node::File { durable: Vec::new(), pending: Vec::new(), mode: 0o600 });
                }
                Op::Mkdir { path } => {
                    self.nodes.insert(path.clone(), Node::Dir);
                }
                Op::Unlink { path } => {
                    let under: Vec<PathBuf> = self.nodes.keys().filter(|k| k.starts_with(path)).cloned().collect();
                    for k in under {
                        self.nodes.remove(&k);
                    }
                }
                Op::Rename { from, to } => {
                    let under: Vec<PathBuf> = self.nodes.keys().filter(|k| k.starts_with(from)).cloned().collect();
                    let old_to: Vec<PathBuf> = self.nodes.keys().filter(|k| k.starts_with(to)).cloned().collect();
                    for k in old_to {
                        self.nodes.remove(&k);
                    }
                    for k in under {
                        if let (Some(n), Ok(rest)) = (self.nodes.remove(&k), k.strip_prefix(from)) {
                            let dest = if rest.as_os_str().is_empty() { to.clone() } else { to.join(rest) };
                            self.nodes.insert(dest, n);
                        }
                    }
                }
            }
        }
    }

    /// Writes the disk after a power cut into `root` (emptied first): every file's synced data, and what
    /// `fate` leaves of the rest.
    pub fn materialize(&mut self, root: &Path, fate: Fate) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        if root.exists() {
            std::fs::remove_dir_all(root)?;
        }
        std::fs::create_dir_all(root)?;
        let (mut dropped, mut torn) = (0, 0);
        for (path, node) in &self.nodes {
            match node {
                Node::Dir => std::fs::create_dir_all(path)?,
                Node::File { durable, pending, mode } => {
                    let mut content = durable.clone();
                    let tear_at = match fate {
                        Fate::Random if !pending.is_empty() && fastrand::bool() => {
                            Some(fastrand::usize(..pending.len()))
                        }
                        _ => None,
                    };
                    for (i, p) in pending.iter().enumerate() {
                        let keep = fate == Fate::Random && fastrand::bool();
                        if !keep {
                            dropped += 1;
                            continue;
                        }
                        match (p, tear_at == Some(i)) {
                            (Pending::Write { off, data }, true) if data.len() > 512 => {
                                torn += 1;
                                let sectors = data.len().div_ceil(512);
                                let n = fastrand::usize(..sectors) * 512;
                                apply(&mut content, &Pending::Write { off: *off, data: data[..n].to_vec() });
                            }
                            _ => apply(&mut content, p),
                        }
                    }
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    let mut f = std::fs::File::create(path)?;
                    f.write_all(&content)?;
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(*mode))?;
                }
            }
        }
        self.last_dropped_writes = dropped;
        self.last_torn_writes = torn;
        Ok(())
    }
}

/// Compiles the shim with the system C compiler into `dir`; returns the library's path.
pub fn build_shim(dir: &Path) -> anyhow::Result<PathBuf> {
    let src = dir.join("powercut_shim.c");
    let lib = dir.join("powercut_shim.so");
    std::fs::write(&src, SHIM_SOURCE)?;
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = std::process::Command::new(&cc)
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&lib)
        .arg(&src)
        .arg("-ldl")
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run the C compiler `{cc}` to build the power-cut shim: {e}"))?;
    if !out.status.success() {
        anyhow::bail!("building the power-cut shim failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(lib)
}
