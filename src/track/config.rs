//! Tracker settings: the `[tracker]` TOML table is deserialised straight into [`TrackerConfig`] (a missing
//! key keeps its default; an unknown key is an error); the defaults ([`TrackerConfig::default`]) are tuned for 8–15 analysed frames per second (one frame every
//! 67–125 ms).
//!
//! Distances are in plate widths (the box width of the read), so the same settings hold for near and far
//! cameras: a plate is about 0.5 m wide, so a car in the next lane is some 6–8 widths away.

/// See the module documentation of [`crate::track`] for how each setting is used.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackerConfig {
    /// A track not seen for longer than this closes. 1500: 12–22 frames without a read rides out
    /// a missed detection or a short occlusion, and is short enough to report a pass promptly.
    pub gap_ms: i64,
    /// A track whose box, carried on at its last velocity, has left the camera's view (the frame, or its
    /// region of interest) closes once not seen for this long, instead of waiting `gap_ms`: the car has
    /// driven out, so its read is stored at once rather than 1.5 s later. 0: off (only `gap_ms`). 300:
    /// two to four analysed frames, enough that one missed detection at the edge does not split a pass.
    pub exit_gap_ms: i64,
    /// How far (plate widths between centres) a read may land from the predicted box, right after the
    /// track was seen. 1.0.
    pub position_gate_widths: f32,
    /// How fast that gate widens per second since the track was last seen, for a track whose velocity
    /// is known (slack for braking and turning). 2.0.
    pub gate_growth_widths_per_s: f32,
    /// The fastest a plate crosses the image, in widths per second; the gate of a track with one frame
    /// (no velocity yet) widens at this rate. 25: up to ~3 widths per frame at 8 fps.
    pub max_speed_widths_per_s: f32,
    /// The gate never exceeds this. 6.0: below the spacing of cars in neighbouring lanes at plate height.
    pub max_gate_widths: f32,
    /// A read's width may differ from the predicted width by at most this factor. 2.0.
    pub max_size_ratio: f32,
    /// A read joins a track only if its text is at least this similar (1 − distance / longer length)
    /// to the track's leading or last text. 0.5: up to three misread characters of seven still join
    /// (1 − 3/7 ≥ 0.5); different plates (most characters different) do not.
    pub min_text_similarity: f32,
    /// Cost of substituting characters of one confusion group (`0 O D Q`, `1 I 7`, `8 B`, `5 S`, `2 Z`,
    /// `6 G`); other substitutions, insertions and deletions cost 1. 0.25.
    pub confusable_cost: f32,
    /// Open tracks per camera; beyond it the least recently seen closes early. 32.
    pub max_tracks_per_camera: usize,
    /// Fewer frames than this: no vehicle read (a lone frame is often a sign, a reflection, a partial
    /// plate). 2.
    pub min_frames: u32,
    /// A lower voted confidence: no vehicle read. 0.5.
    pub min_confidence: f32,
    /// Candidates per vehicle read, the voted text first. 5.
    pub max_candidates: usize,
    /// Voted confidence that raises an early read. 0.9: high enough that the vehicle read rarely
    /// differs from it.
    pub early_confidence: f32,
    /// Frames needed before an early read. 3 (0.2–0.4 s).
    pub early_min_frames: u32,
    /// An early read also goes out, before any frame or the vote is confident, once this many frames
    /// read exactly the voted text, they are most of the track's frames, and the vote reaches
    /// `min_confidence` (the bar the pass's vehicle read must clear anyway). Dusk, night, small and dirty
    /// plates are read this way while still in view. 0: only confident early reads. 3 (with 2, `bench
    /// alerts` gave a lower median but missed the dusk plate in 6 of 22 plays; with 3, none of 11).
    pub early_agree_frames: u32,
    /// A track whose box stays put this long counts as parked and reports without waiting to close.
    /// 15000: longer than most stops in traffic.
    pub parked_after_ms: i64,
    /// "Stays put": the box centre moves less than this, in plate widths. 0.5.
    pub parked_motion_widths: f32,
    /// A parked car is reported again at most this often; a track that reported and stood still
    /// when last seen is remembered this long after its last frame so that it can resume. 300000 (5 minutes).
    pub parked_repeat_ms: i64,
    /// Direction: a box that grows (shrinks) by this fraction over the pass is approaching (receding).
    /// 0.15.
    pub approach_growth: f32,
    /// Direction: a centre that moves at least this many widths is moving left, right, up or down. 0.75.
    pub min_travel_widths: f32,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            gap_ms: 1500,
            exit_gap_ms: 300,
            position_gate_widths: 1.0,
            gate_growth_widths_per_s: 2.0,
            max_speed_widths_per_s: 25.0,
            max_gate_widths: 6.0,
            max_size_ratio: 2.0,
            min_text_similarity: 0.5,
            confusable_cost: 0.25,
            max_tracks_per_camera: 32,
            min_frames: 2,
            min_confidence: 0.5,
            max_candidates: 5,
            early_confidence: 0.9,
            early_min_frames: 3,
            early_agree_frames: 3,
            parked_after_ms: 15_000,
            parked_motion_widths: 0.5,
            parked_repeat_ms: 300_000,
            approach_growth: 0.15,
            min_travel_widths: 0.75,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("tracker setting {key} = {value} is out of range {range}")]
    OutOfRange { key: &'static str, value: String, range: &'static str },
    #[error("tracker setting max_gate_widths ({max}) is below position_gate_widths ({gate})")]
    GateBelowBase { max: f32, gate: f32 },
}

impl ConfigError {
    /// The setting at fault, for a `tracker.<key>` path in configuration errors.
    pub fn key(&self) -> &'static str {
        match self {
            ConfigError::OutOfRange { key, .. } => key,
            ConfigError::GateBelowBase { .. } => "max_gate_widths",
        }
    }
}

impl TrackerConfig {
    /// Every problem is a setting that would make the tracker silently misbehave (NaN gates never
    /// match, a zero gap closes every track at once).
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn pos_ms(key: &'static str, v: i64) -> Result<(), ConfigError> {
            check(key, v > 0, v, "1..")
        }
        fn pos_f(key: &'static str, v: f32) -> Result<(), ConfigError> {
            check(key, v.is_finite() && v > 0.0, v, "(0, inf)")
        }
        fn unit(key: &'static str, v: f32) -> Result<(), ConfigError> {
            check(key, (0.0..=1.0).contains(&v), v, "0..=1")
        }
        fn check(key: &'static str, ok: bool, v: impl ToString, range: &'static str) -> Result<(), ConfigError> {
            if ok { Ok(()) } else { Err(ConfigError::OutOfRange { key, value: v.to_string(), range }) }
        }
        pos_ms("gap_ms", self.gap_ms)?;
        check("exit_gap_ms", (0..=self.gap_ms).contains(&self.exit_gap_ms), self.exit_gap_ms, "0..=gap_ms")?;
        pos_f("position_gate_widths", self.position_gate_widths)?;
        check(
            "gate_growth_widths_per_s",
            self.gate_growth_widths_per_s.is_finite() && self.gate_growth_widths_per_s >= 0.0,
            self.gate_growth_widths_per_s,
            "[0, inf)",
        )?;
        pos_f("max_speed_widths_per_s", self.max_speed_widths_per_s)?;
        pos_f("max_gate_widths", self.max_gate_widths)?;
        if self.max_gate_widths < self.position_gate_widths {
            return Err(ConfigError::GateBelowBase { max: self.max_gate_widths, gate: self.position_gate_widths });
        }
        check(
            "max_size_ratio",
            self.max_size_ratio.is_finite() && self.max_size_ratio >= 1.0,
            self.max_size_ratio,
            "[1, inf)",
        )?;
        unit("min_text_similarity", self.min_text_similarity)?;
        unit("confusable_cost", self.confusable_cost)?;
        check("max_tracks_per_camera", self.max_tracks_per_camera >= 1, self.max_tracks_per_camera, "1..")?;
        check("min_frames", self.min_frames >= 1, self.min_frames, "1..")?;
        unit("min_confidence", self.min_confidence)?;
        check("max_candidates", self.max_candidates >= 1, self.max_candidates, "1..")?;
        unit("early_confidence", self.early_confidence)?;
        check("early_min_frames", self.early_min_frames >= 1, self.early_min_frames, "1..")?;
        check("parked_after_ms", self.parked_after_ms >= 0, self.parked_after_ms, "0..")?;
        pos_f("parked_motion_widths", self.parked_motion_widths)?;
        pos_ms("parked_repeat_ms", self.parked_repeat_ms)?;
        pos_f("approach_growth", self.approach_growth)?;
        pos_f("min_travel_widths", self.min_travel_widths)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        assert_eq!(TrackerConfig::default().validate(), Ok(()));
        let bad = TrackerConfig { gap_ms: 0, ..Default::default() };
        assert_eq!(bad.validate(), Err(ConfigError::OutOfRange { key: "gap_ms", value: "0".into(), range: "1.." }));
        let bad = TrackerConfig { min_text_similarity: f32::NAN, ..Default::default() };
        assert!(matches!(bad.validate(), Err(ConfigError::OutOfRange { key: "min_text_similarity", .. })));
        let bad = TrackerConfig { max_gate_widths: 0.5, ..Default::default() };
        assert_eq!(bad.validate(), Err(ConfigError::GateBelowBase { max: 0.5, gate: 1.0 }));
        let bad = TrackerConfig { min_frames: 0, ..Default::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("min_frames = 0"));
        let bad = TrackerConfig { exit_gap_ms: 2000, ..Default::default() };
        assert!(matches!(bad.validate(), Err(ConfigError::OutOfRange { key: "exit_gap_ms", .. })));
        let bad = TrackerConfig { exit_gap_ms: -1, ..Default::default() };
        assert!(matches!(bad.validate(), Err(ConfigError::OutOfRange { key: "exit_gap_ms", .. })));
    }
}
