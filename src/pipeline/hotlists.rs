//! The hotlists in force: files named in the configuration plus lists pushed over MQTT (kept in the
//! store), matched against every vehicle read. A list with any problem is rejected whole and the
//! lists already in force stay; entries added by a push are checked against the reads of the last
//! `retroactive_days` days.

use crate::clock::now_ms;
use crate::hotlist::{self, Hit, Hotlist, HotlistError, MatchKind, MatchedText, Matcher};
use crate::store::{AlertRecord, PushedList, Store, StoreError, StoredRead};
use crate::uplink::payload::{AlertStage, CertaintyV1, HitV1};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

/// Pushed lists are named apart from files so a push can never replace a file's list.
const PUSHED_PREFIX: &str = "mqtt:";

/// The list of entries added and removed in the console, kept in the store beside the pushed lists
/// under a name no push can take (a push's name has no `:`), and in force under this name.
pub const LOCAL: &str = "console:local";

const HEADER: [&str; 7] = ["plate", "region", "category", "priority", "source", "expiry", "notes"];

/// One entry added in the console (checked by the list parser like any file's line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalEntry {
    pub plate: String,
    pub region: String,
    pub category: String,
    pub priority: u8,
    /// RFC 3339 or `YYYY-MM-DD`; empty: none.
    pub expiry: String,
    pub notes: String,
    /// Who added it: the list's `source` column.
    pub source: String,
}

fn records(csv_text: &str) -> Result<Vec<csv::StringRecord>, HotlistsError> {
    let mut r = csv::ReaderBuilder::new().has_headers(true).from_reader(csv_text.as_bytes());
    let headers = r.headers().map_err(|e| HotlistsError::Local(e.to_string()))?.clone();
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    let mut out = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| HotlistsError::Local(e.to_string()))?;
        // Back to the standard column order whatever order the stored text had.
        out.push(HEADER.iter().map(|h| col(h).and_then(|i| rec.get(i)).unwrap_or("")).collect());
    }
    Ok(out)
}

fn write_records(rows: &[csv::StringRecord]) -> Result<String, HotlistsError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(HEADER).map_err(|e| HotlistsError::Local(e.to_string()))?;
    for r in rows {
        w.write_record(r).map_err(|e| HotlistsError::Local(e.to_string()))?;
    }
    let bytes = w.into_inner().map_err(|e| HotlistsError::Local(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| HotlistsError::Local(e.to_string()))
}

/// The local list's text with `e` added (replacing an entry with the same plate and region), checked
/// whole by the list parser; the plate is normalised to upper case.
pub fn local_with(current: Option<&str>, e: &LocalEntry, now_ms: i64) -> Result<String, HotlistsError> {
    let plate = e.plate.trim().to_uppercase();
    let region = e.region.trim().to_uppercase();
    let mut rows: Vec<csv::StringRecord> = current
        .map(records)
        .transpose()?
        .unwrap_or_default()
        .into_iter()
        .filter(|r| !(r.get(0) == Some(plate.as_str()) && r.get(1) == Some(region.as_str())))
        .collect();
    let priority = e.priority.to_string();
    rows.push(csv::StringRecord::from(vec![
        plate.as_str(),
        region.as_str(),
        e.category.trim(),
        priority.as_str(),
        e.source.as_str(),
        e.expiry.trim(),
        e.notes.trim(),
    ]));
    let text = write_records(&rows)?;
    hotlist::parse_csv(LOCAL, &text, now_ms)?;
    Ok(text)
}

/// The local list's text without the entries for `plate` (any region), and how many went.
pub fn local_without(current: &str, plate: &str) -> Result<(String, usize), HotlistsError> {
    let plate = plate.trim().to_uppercase();
    let rows = records(current)?;
    let before = rows.len();
    let kept: Vec<_> = rows.into_iter().filter(|r| r.get(0) != Some(plate.as_str())).collect();
    let gone = before - kept.len();
    Ok((write_records(&kept)?, gone))
}

#[derive(Debug, thiserror::Error)]
pub enum HotlistsError {
    #[error(transparent)]
    List(#[from] HotlistError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a pushed hotlist needs a name of 1-64 characters of A-Z a-z 0-9 - _ .")]
    BadName,
    #[error("the console's local list: {0}")]
    Local(String),
}

/// Where alerts go and how big they may be.
#[derive(Debug, Clone)]
pub struct AlertTarget {
    pub site: String,
    pub device: String,
    pub max_packet_bytes: usize,
}

pub struct Hotlists {
    store: Arc<Store>,
    matcher: RwLock<Arc<Matcher>>,
    files: RwLock<Vec<Hotlist>>,
    retro_days: u32,
    /// Retroactive alerts raised per push at most; the rest go in one summary message.
    max_retro_alerts: usize,
    target: AlertTarget,
}

fn load_files(paths: &[PathBuf]) -> Result<Vec<Hotlist>, HotlistError> {
    let now = now_ms();
    paths.iter().map(|p| hotlist::load_file(p, now)).collect()
}

fn hit_payload(hit: &Hit<'_>, read: &StoredRead) -> HitV1 {
    let candidates: Vec<&str> = read.candidates.iter().map(|c| c.text.as_str()).collect();
    text_hit_payload(hit, read.plate.expose(), &candidates)
}

/// The hit as sent up; `best` and `candidates` are the texts the hit was matched on.
fn text_hit_payload(hit: &Hit<'_>, best: &str, candidates: &[&str]) -> HitV1 {
    let matched_text = match hit.matched {
        MatchedText::Best => best.to_string(),
        MatchedText::Candidate(i) => candidates.get(i).map(|c| c.to_string()).unwrap_or_default(),
    };
    HitV1 {
        list: hit.list.to_string(),
        entry: hit.entry.pattern.expose().to_string(),
        category: hit.entry.category.clone(),
        priority: hit.entry.priority,
        source: hit.entry.source.clone(),
        match_kind: match hit.kind {
            MatchKind::Exact => "exact",
            MatchKind::Wildcard => "wildcard",
            MatchKind::Candidate => "candidate",
            MatchKind::Confusion => "confusion",
        }
        .to_string(),
        score: hit.score,
        matched_text,
    }
}

fn matches<'m>(m: &'m Matcher, read: &StoredRead, now: i64) -> Vec<Hit<'m>> {
    let candidates: Vec<(String, f32)> = read.candidates.iter().map(|c| (c.text.clone(), c.confidence)).collect();
    m.match_read(read.plate.expose(), &candidates, read.region.as_deref(), now)
}

impl Hotlists {
    /// Loads the files and the pushed lists; a bad file is an error (as in `check-config`).
    pub fn load(
        store: Arc<Store>,
        files: &[PathBuf],
        retro_days: u32,
        target: AlertTarget,
    ) -> Result<Hotlists, HotlistsError> {
        let files = load_files(files)?;
        let h = Hotlists {
            store,
            matcher: RwLock::new(Arc::new(Matcher::new(Vec::new()))),
            files: RwLock::new(files),
            retro_days,
            max_retro_alerts: usize::MAX,
            target,
        };
        h.rebuild()?;
        Ok(h)
    }

    fn rebuild(&self) -> Result<(), HotlistsError> {
        let mut lists = self.files.read().unwrap_or_else(|p| p.into_inner()).clone();
        let now = now_ms();
        for p in self.store.pushed_lists()? {
            // Stored lists were valid when pushed; one that no longer parses (a newer polewatch's rules)
            // is logged and left out rather than taking every list down.
            let name = if p.name == LOCAL { LOCAL.to_string() } else { format!("{PUSHED_PREFIX}{}", p.name) };
            match hotlist::parse_csv(&name, &p.csv, p.pushed_at_ms) {
                Ok(l) => lists.push(l),
                Err(e) => log::error!("stored hotlist no longer parses, left out: {e}"),
            }
        }
        let m = Matcher::new(lists);
        log::info!(lists = m.lists().len() as u64, entries = m.len() as u64, at_ms = now; "hotlists in force");
        *self.matcher.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(m);
        Ok(())
    }

    /// Caps the retroactive alerts of one push (`hotlists.max_retroactive_alerts`).
    pub fn with_max_retroactive_alerts(mut self, max: u32) -> Hotlists {
        self.max_retro_alerts = max as usize;
        self
    }

    pub fn matcher(&self) -> Arc<Matcher> {
        self.matcher.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// SIGHUP: re-reads the files; on any error the lists in force stay.
    pub fn reload_files(&self, paths: &[PathBuf]) -> Result<(), HotlistsError> {
        let files = load_files(paths)?;
        *self.files.write().unwrap_or_else(|p| p.into_inner()) = files;
        self.rebuild()
    }

    /// Matches a stored read and raises an alert for every entry hit (its strongest kind only).
    pub fn check_read(&self, read: &StoredRead, retroactive: bool) -> Result<Vec<AlertRecord>, StoreError> {
        let m = self.matcher();
        self.raise(&m, read, retroactive)
    }

    /// Matches a stored read of a vehicle still in view (or just voted) and raises its alerts at `stage`
    /// with the given certainty.
    pub fn check_read_as(
        &self,
        read: &StoredRead,
        stage: AlertStage,
        certainty: &CertaintyV1,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        let m = self.matcher();
        let t = &self.target;
        matches(&m, read, now_ms())
            .iter()
            .map(|h| {
                crate::alert::raise_as(
                    &self.store,
                    &t.site,
                    &t.device,
                    read,
                    hit_payload(h, read),
                    false,
                    t.max_packet_bytes,
                    stage,
                    certainty.clone(),
                )
            })
            .collect()
    }

    /// The hits a text with these candidates would raise now, without storing or raising anything:
    /// whether an early read is worth an alert, and which entries a pass's vote still hits.
    pub fn hits(&self, plate: &str, candidates: &[(String, f32)], region: Option<&str>) -> Vec<HitV1> {
        let m = self.matcher();
        let texts: Vec<&str> = candidates.iter().map(|(t, _)| t.as_str()).collect();
        m.match_read(plate, candidates, region, now_ms()).iter().map(|h| text_hit_payload(h, plate, &texts)).collect()
    }

    /// Raises one alert for `hit` on a stored read (a hit found on a text other than the read's own: a
    /// pass's vote that hits an entry its early read did not).
    pub fn raise_hit(
        &self,
        read: &StoredRead,
        hit: HitV1,
        stage: AlertStage,
        certainty: &CertaintyV1,
    ) -> Result<AlertRecord, StoreError> {
        let t = &self.target;
        crate::alert::raise_as(
            &self.store,
            &t.site,
            &t.device,
            read,
            hit,
            false,
            t.max_packet_bytes,
            stage,
            certainty.clone(),
        )
    }

    /// Where the alerts go.
    pub fn target(&self) -> &AlertTarget {
        &self.target
    }

    fn raise(&self, m: &Matcher, read: &StoredRead, retroactive: bool) -> Result<Vec<AlertRecord>, StoreError> {
        let t = &self.target;
        matches(m, read, now_ms())
            .iter()
            .map(|h| {
                crate::alert::raise(
                    &self.store,
                    &t.site,
                    &t.device,
                    read,
                    hit_payload(h, read),
                    retroactive,
                    t.max_packet_bytes,
                )
            })
            .collect()
    }

    /// A list pushed by the central server: rejected whole on any problem; else stored, put in force,
    /// and its new entries checked against recent reads. Returns (entries, retroactive alerts).
    pub fn push(&self, name: &str, csv: &str, by: &str) -> Result<(usize, usize), HotlistsError> {
        if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(HotlistsError::BadName);
        }
        self.install(&format!("{PUSHED_PREFIX}{name}"), name, csv, by)
    }

    /// Removes a pushed list; returns whether it existed. The console's local list is not the central
    /// server's to remove.
    pub fn remove(&self, name: &str) -> Result<bool, HotlistsError> {
        if name == LOCAL {
            return Ok(false);
        }
        let existed = self.store.remove_pushed_list(name)?;
        self.rebuild()?;
        Ok(existed)
    }

    /// The console's local list as stored (None: never used).
    pub fn local_text(&self) -> Result<Option<String>, HotlistsError> {
        Ok(self.store.pushed_lists()?.into_iter().find(|l| l.name == LOCAL).map(|l| l.csv))
    }

    /// Puts a new local list in force (checked by [`local_with`] / [`local_without`]) and checks its new
    /// entries against recent reads; returns the retroactive alerts raised.
    pub fn put_local(&self, csv: &str, by: &str) -> Result<usize, HotlistsError> {
        self.install(LOCAL, LOCAL, csv, by).map(|(_, retro)| retro)
    }

    /// Parses `csv` as the list `full` (rejected whole on any problem), stores it under `stored` and puts
    /// it in force, then checks its entries that the list in force did not have against recent reads.
    /// Returns (entries, retroactive alerts).
    fn install(&self, full: &str, stored: &str, csv: &str, by: &str) -> Result<(usize, usize), HotlistsError> {
        let now = now_ms();
        let list = hotlist::parse_csv(full, csv, now)?;
        let old: HashSet<(String, Option<String>)> = self
            .matcher()
            .lists()
            .iter()
            .filter(|l| l.name == full)
            .flat_map(|l| l.entries.iter().map(|e| (e.pattern.expose().to_string(), e.region.clone())))
            .collect();
        let added: Vec<_> = list
            .entries
            .iter()
            .filter(|e| !old.contains(&(e.pattern.expose().to_string(), e.region.clone())))
            .cloned()
            .collect();
        let entries = list.entries.len();
        self.store.put_pushed_list(&PushedList {
            name: stored.to_string(),
            csv: csv.to_string(),
            pushed_by: by.to_string(),
            pushed_at_ms: now,
        })?;
        self.rebuild()?;
        let retro = self.retroactive(Hotlist { name: full.to_string(), entries: added, loaded_at_ms: now }, now)?;
        Ok((entries, retro))
    }

    /// Checks reads of the last `retroactive_days` days against just these (new) entries. At most
    /// `max_retroactive_alerts` alerts are raised; hits past that are counted and reported in one
    /// summary message on `…/alerts/summary` (counts and the list, no plates), so that a broad entry
    /// (`7*`) cannot send the server hundreds of alerts at once.
    fn retroactive(&self, added: Hotlist, now: i64) -> Result<usize, HotlistsError> {
        if added.entries.is_empty() || self.retro_days == 0 {
            return Ok(0);
        }
        let list = added.name.clone();
        let m = Matcher::new(vec![added]);
        let mut raised = 0;
        let (mut held_back, mut reads_held_back) = (0usize, 0usize);
        let mut failure = None;
        self.store.for_each_read_since(now - self.retro_days as i64 * crate::retention::DAY_MS, |read| {
            if raised >= self.max_retro_alerts {
                let hits = matches(&m, &read, now).len();
                held_back += hits;
                reads_held_back += usize::from(hits > 0);
                return true;
            }
            match self.raise(&m, &read, true) {
                Ok(a) => {
                    raised += a.len();
                    true
                }
                Err(e) => {
                    failure = Some(e);
                    false
                }
            }
        })?;
        if let Some(e) = failure {
            return Err(e.into());
        }
        if held_back > 0 {
            let t = &self.target;
            let summary = serde_json::json!({
                "v": 1,
                "type": "retroactive_summary",
                "site": t.site,
                "device": t.device,
                "list": list,
                "raised_at": jiff::Timestamp::from_millisecond(now).map(|t| format!("{t:.3}")).unwrap_or_default(),
                "alerts_sent": raised,
                "hits_not_sent": held_back,
                "reads_not_sent": reads_held_back,
                "days": self.retro_days,
                "note": "more retroactive hits than hotlists.max_retroactive_alerts; search the box for the rest",
            });
            self.store.enqueue(
                crate::store::Lane::Alerts,
                "alerts/summary",
                serde_json::to_vec(&summary).unwrap_or_default(),
            )?;
            log::warn!(list = list.as_str(), sent = raised as u64, held_back = held_back as u64; "retroactive hotlist hits over the limit: one summary sent for the rest");
        }
        log::info!(alerts = raised as u64, days = self.retro_days; "retroactive hotlist check done");
        Ok(raised)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(plate: &str, priority: u8) -> LocalEntry {
        LocalEntry {
            plate: plate.into(),
            region: String::new(),
            category: "stolen".into(),
            priority,
            expiry: String::new(),
            notes: "a, \"quoted\" note".into(),
            source: "console:sam".into(),
        }
    }

    #[test]
    fn the_local_list_adds_replaces_and_removes_entries_checked_whole() {
        let one = local_with(None, &entry("7abc123", 2), 0).unwrap();
        let two = local_with(Some(&one), &entry("8XY*", 3), 0).unwrap();
        let replaced = local_with(Some(&two), &entry("7ABC123", 1), 0).unwrap();
        let list = hotlist::parse_csv(LOCAL, &replaced, 0).unwrap();
        let got: Vec<(String, u8)> =
            list.entries.iter().map(|e| (e.pattern.expose().to_string(), e.priority)).collect();
        assert_eq!(got, vec![("8XY*".to_string(), 3), ("7ABC123".to_string(), 1)]);
        assert_eq!(list.entries[0].notes, "a, \"quoted\" note", "notes survive CSV quoting");
        assert!(
            matches!(local_with(Some(&two), &entry("7ABC123", 0), 0), Err(HotlistsError::List(_))),
            "priority 0 is refused"
        );
        let (left, gone) = local_without(&replaced, "7abc123").unwrap();
        assert_eq!(gone, 1);
        assert_eq!(hotlist::parse_csv(LOCAL, &left, 0).unwrap().entries.len(), 1);
        assert_eq!(local_without(&left, "NOPE").unwrap().1, 0);
    }
}
