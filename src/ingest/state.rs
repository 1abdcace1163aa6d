//! What a camera is doing, for STATUS=, metrics and the log; and how GStreamer errors map onto it.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CameraState {
    Connecting,
    Streaming,
    /// Waiting before the next attempt; `reason` is the last failure.
    Backoff {
        attempt: u32,
        reason: Failure,
    },
    Disabled,
}

/// Why a camera is not streaming. Each kind gets its own rate-limited log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failure {
    FailedAuth,
    NotFound,
    Unreachable,
    UnsupportedCodec,
    /// Connected (the camera answered), then no frame within the stall or connect timeout.
    Stalled,
    /// The source sent end-of-stream: for a live camera a fault (its server closed the session, it
    /// rebooted); for a file its end, after which it replays.
    EndOfStream,
    Other,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Failure::FailedAuth => "failed-auth",
            Failure::NotFound => "not-found",
            Failure::Unreachable => "unreachable",
            Failure::UnsupportedCodec => "unsupported-codec",
            Failure::Stalled => "stalled",
            Failure::EndOfStream => "ended",
            Failure::Other => "error",
        })
    }
}

impl fmt::Display for CameraState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CameraState::Connecting => f.write_str("connecting"),
            CameraState::Streaming => f.write_str("streaming"),
            CameraState::Backoff { attempt, reason } => write!(f, "backoff({reason}, attempt {attempt})"),
            CameraState::Disabled => f.write_str("disabled"),
        }
    }
}

impl Failure {
    /// What an operator should look at, for the (rate-limited) log line.
    pub fn advice(&self) -> &'static str {
        match self {
            Failure::FailedAuth => {
                "the camera refused the credentials (401): check username/password or credentials_file"
            }
            Failure::NotFound => "no stream at this URL (404 or no such file): check the path",
            Failure::Unreachable => {
                "cannot reach the camera (refused or no answer): check its address, port, power and network"
            }
            Failure::UnsupportedCodec => {
                "the stream's codec cannot be decoded here: check the camera's codec and the decoder setting"
            }
            Failure::Stalled => "the camera is connected but sends no frames",
            Failure::EndOfStream => "the camera ended the stream (server closed the session or restarted)",
            Failure::Other => "pipeline error (details at debug level)",
        }
    }
}

/// One log line per kind of failure per period: a camera down for a week, retrying every minute, must not
/// flood the journal, while a new kind of failure is logged at once.
pub struct LogLimit {
    period: Duration,
    last: HashMap<Failure, Instant>,
}

impl LogLimit {
    pub fn new(period: Duration) -> LogLimit {
        LogLimit { period, last: HashMap::new() }
    }

    /// Whether a line for `f` at `now` may be logged (and if so, counts it as logged).
    pub fn allow(&mut self, f: Failure, now: Instant) -> bool {
        let ok = self.last.get(&f).is_none_or(|t| now.duration_since(*t) >= self.period);
        if ok {
            self.last.insert(f, now);
        }
        ok
    }
}

/// Classifies a GStreamer error: by its error code where the element sets a telling one (rtspsrc posts
/// 401 as NOT_AUTHORIZED, 404 as NOT_FOUND, a refused connection as OPEN_READ_WRITE), else by its text.
pub fn classify_error(err: &gstreamer::glib::Error, debug: &str) -> Failure {
    use gstreamer::{CoreError, ResourceError, StreamError};
    match (err.kind::<ResourceError>(), err.kind::<CoreError>(), err.kind::<StreamError>()) {
        (Some(ResourceError::NotAuthorized), ..) => Failure::FailedAuth,
        (Some(ResourceError::NotFound), ..) => Failure::NotFound,
        (_, Some(CoreError::MissingPlugin), _)
        | (.., Some(StreamError::CodecNotFound | StreamError::WrongType | StreamError::TypeNotFound)) => {
            Failure::UnsupportedCodec
        }
        _ => classify(err.message(), debug),
    }
}

/// Classifies a GStreamer error from its message and debug text (rtspsrc reports RTSP status codes and
/// socket errors there, not as distinct error codes).
pub fn classify(message: &str, debug: &str) -> Failure {
    let t = format!("{message} {debug}").to_ascii_lowercase();
    if t.contains("401") || t.contains("unauthorized") || t.contains("authentication") {
        Failure::FailedAuth
    } else if t.contains("404") || t.contains("not found") || t.contains("no such file") || t.contains("does not exist")
    {
        Failure::NotFound
    } else if t.contains("could not connect")
        || t.contains("connection refused")
        || t.contains("timeout")
        || t.contains("timed out")
        || t.contains("unreachable")
        || t.contains("could not open resource")
    {
        Failure::Unreachable
    } else if t.contains("missing")
        && (t.contains("plugin") || t.contains("plug-in") || t.contains("decoder") || t.contains("element"))
        || t.contains("not-negotiated")
        || t.contains("no suitable")
    {
        Failure::UnsupportedCodec
    } else {
        Failure::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_failure_logs_once_per_period() {
        let mut l = LogLimit::new(Duration::from_secs(60));
        let t = Instant::now();
        assert!(l.allow(Failure::FailedAuth, t));
        assert!(!l.allow(Failure::FailedAuth, t + Duration::from_secs(59)));
        assert!(l.allow(Failure::NotFound, t + Duration::from_secs(59)), "another kind is logged at once");
        assert!(l.allow(Failure::FailedAuth, t + Duration::from_secs(60)));
        assert!(!l.allow(Failure::FailedAuth, t + Duration::from_secs(61)));
    }

    #[test]
    fn rtsp_errors_map_to_states() {
        assert_eq!(classify("Unauthorized", "gstrtspsrc.c(6795): Unauthorized (401)"), Failure::FailedAuth);
        assert_eq!(classify("Not found", "Not Found (404)"), Failure::NotFound);
        assert_eq!(
            classify("Could not open resource for reading and writing.", "Failed to connect. (Generic error)"),
            Failure::Unreachable
        );
        assert_eq!(classify("Could not connect to server.", ""), Failure::Unreachable);
        assert_eq!(classify("Your GStreamer installation is missing a plug-in.", ""), Failure::UnsupportedCodec);
        assert_eq!(
            classify("Internal data stream error.", "streaming stopped, reason not-negotiated (-4)"),
            Failure::UnsupportedCodec
        );
        assert_eq!(classify("Internal data stream error.", "reason error (-5)"), Failure::Other);
        let auth =
            gstreamer::glib::Error::new(gstreamer::ResourceError::NotAuthorized, "Not authorized to access resource.");
        assert_eq!(classify_error(&auth, ""), Failure::FailedAuth);
        let codec = gstreamer::glib::Error::new(gstreamer::CoreError::MissingPlugin, "no decoder");
        assert_eq!(classify_error(&codec, ""), Failure::UnsupportedCodec);
        let refused = gstreamer::glib::Error::new(
            gstreamer::ResourceError::OpenReadWrite,
            "Could not open resource for reading and writing.",
        );
        assert_eq!(classify_error(&refused, ""), Failure::Unreachable);
        assert_eq!(
            CameraState::Backoff { attempt: 3, reason: Failure::NotFound }.to_string(),
            "backoff(not-found, attempt 3)"
        );
        assert_eq!(
            CameraState::Backoff { attempt: 0, reason: Failure::EndOfStream }.to_string(),
            "backoff(ended, attempt 0)"
        );
        assert_eq!(Failure::Stalled.to_string(), "stalled");
        assert_eq!(Failure::Unreachable.to_string(), "unreachable");
    }
}
