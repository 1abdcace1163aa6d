//! Which OpenCV DNN backend runs the networks. `[recognizer] backend = "auto"` takes DNN's CUDA backend
//! when this OpenCV build has it and sees a CUDA device (a Jetson with JetPack's OpenCV built with CUDA,
//! or a box with an NVIDIA GPU), and the CPU otherwise, saying why in one log line; `cuda` insists on
//! CUDA and refuses to start without it; `cpu` and `openvino` are taken as they are.
//!
//! The choice ([`choose`]) is pure; [`Offer::probe`] asks OpenCV what it offers.

use super::settings::DnnBackend;

/// What this OpenCV build and machine offer for DNN on CUDA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer {
    /// `cv::getBuildInformation()` says `NVIDIA CUDA: YES`.
    pub built_with_cuda: bool,
    /// `cv::dnn::getAvailableTargets(DNN_BACKEND_CUDA)` holds `DNN_TARGET_CUDA`: OpenCV's DNN module
    /// was built with its CUDA backend (`OPENCV_DNN_CUDA`, cuDNN) and found a compatible CUDA device at
    /// run time (`modules/dnn/src/registry.cpp`). An error while asking (a CUDA runtime or cuDNN that
    /// does not match the build) counts as no.
    pub dnn_cuda_target: bool,
}

/// The backend the networks are placed on, and why `auto` did not take CUDA (for the log line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// Never [`DnnBackend::Auto`].
    pub backend: DnnBackend,
    pub cpu_because: Option<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[recognizer] backend = \"cuda\", but {0}; use \"auto\" to fall back to the CPU")]
pub struct CudaMissing(pub &'static str);

impl Offer {
    /// Asks this process's OpenCV.
    pub fn probe() -> Offer {
        use opencv::dnn;
        let info = opencv::core::get_build_information().unwrap_or_default();
        let dnn_cuda_target = dnn::get_available_targets(dnn::Backend::DNN_BACKEND_CUDA)
            .map(|v| v.iter().any(|t| t == dnn::Target::DNN_TARGET_CUDA))
            .unwrap_or(false);
        Offer { built_with_cuda: built_with_cuda(&info), dnn_cuda_target }
    }

    /// Why DNN cannot run on CUDA here; None when it can.
    fn cuda_missing(&self) -> Option<&'static str> {
        match (self.built_with_cuda, self.dnn_cuda_target) {
            (_, true) => None,
            (false, false) => Some("this OpenCV was built without CUDA"),
            (true, false) => Some(
                "this OpenCV was built with CUDA but its DNN module offers no CUDA target (built without OPENCV_DNN_CUDA/cuDNN, or no CUDA device is visible)",
            ),
        }
    }
}

/// Whether `cv::getBuildInformation()`'s text says OpenCV was built with CUDA: its line
/// `NVIDIA CUDA:                   YES (ver 11.4, CUFFT CUBLAS FAST_MATH)` (or `NO`).
pub fn built_with_cuda(build_information: &str) -> bool {
    build_information.lines().any(|l| {
        let l = l.trim();
        l.strip_prefix("NVIDIA CUDA:").is_some_and(|rest| rest.trim_start().starts_with("YES"))
    })
}

/// The backend for `setting` given what OpenCV offers.
pub fn choose(setting: DnnBackend, offer: Offer) -> Result<Choice, CudaMissing> {
    match (setting, offer.cuda_missing()) {
        (DnnBackend::Auto, None) | (DnnBackend::Cuda, None) => {
            Ok(Choice { backend: DnnBackend::Cuda, cpu_because: None })
        }
        (DnnBackend::Auto, Some(why)) => Ok(Choice { backend: DnnBackend::Cpu, cpu_because: Some(why) }),
        (DnnBackend::Cuda, Some(why)) => Err(CudaMissing(why)),
        (other, _) => Ok(Choice { backend: other, cpu_because: None }),
    }
}

/// [`choose`] on what this process's OpenCV offers, with the one log line that says what was taken.
pub fn resolve(setting: DnnBackend) -> Result<DnnBackend, CudaMissing> {
    if matches!(setting, DnnBackend::Cpu | DnnBackend::Openvino) {
        return Ok(setting);
    }
    let choice = choose(setting, Offer::probe())?;
    match choice.cpu_because {
        Some(why) => log::info!(backend = "cpu"; "recognizer on the CPU: {why}"),
        None => log::info!(backend = "cuda"; "recognizer on OpenCV DNN's CUDA backend"),
    }
    Ok(choice.backend)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: Offer = Offer { built_with_cuda: false, dnn_cuda_target: false };
    const BUILT_NO_DNN: Offer = Offer { built_with_cuda: true, dnn_cuda_target: false };
    const JETSON: Offer = Offer { built_with_cuda: true, dnn_cuda_target: true };

    #[test]
    fn auto_takes_cuda_only_when_dnn_offers_it_and_says_why_not() {
        assert_eq!(choose(DnnBackend::Auto, JETSON), Ok(Choice { backend: DnnBackend::Cuda, cpu_because: None }));
        let c = choose(DnnBackend::Auto, NONE).unwrap();
        assert_eq!((c.backend, c.cpu_because), (DnnBackend::Cpu, Some("this OpenCV was built without CUDA")));
        let c = choose(DnnBackend::Auto, BUILT_NO_DNN).unwrap();
        assert_eq!(c.backend, DnnBackend::Cpu);
        assert!(c.cpu_because.is_some_and(|w| w.contains("OPENCV_DNN_CUDA")), "{c:?}");
    }

    #[test]
    fn cuda_insists_and_cpu_and_openvino_are_taken_as_they_are() {
        assert_eq!(choose(DnnBackend::Cuda, JETSON).unwrap().backend, DnnBackend::Cuda);
        let e = choose(DnnBackend::Cuda, NONE).unwrap_err();
        assert_eq!(
            e.to_string(),
            "[recognizer] backend = \"cuda\", but this OpenCV was built without CUDA; use \"auto\" to fall back to the CPU"
        );
        assert!(choose(DnnBackend::Cuda, BUILT_NO_DNN).is_err());
        for offer in [NONE, BUILT_NO_DNN, JETSON] {
            assert_eq!(choose(DnnBackend::Cpu, offer), Ok(Choice { backend: DnnBackend::Cpu, cpu_because: None }));
            assert_eq!(choose(DnnBackend::Openvino, offer).unwrap().backend, DnnBackend::Openvino);
        }
    }

    #[test]
    fn build_information_is_read_for_cuda() {
        // As OpenCV 4.6 prints it (Debian's, then JetPack's OpenCV built with CUDA).
        assert!(!built_with_cuda(
            "  Other third-party libraries:\n    Lapack:                      NO\n\n  NVIDIA CUDA:                   NO\n"
        ));
        assert!(built_with_cuda(
            "  NVIDIA CUDA:                   YES (ver 11.4, CUFFT CUBLAS FAST_MATH)\n\n  cuDNN:                         YES (ver 8.6.0)\n"
        ));
        assert!(!built_with_cuda(""));
        assert!(!built_with_cuda("  NVIDIA GPU arch:               87\n"));
    }

    #[test]
    fn this_opencv_is_probed_consistently() {
        // DNN's CUDA target exists only in an OpenCV built with CUDA, whatever this machine has.
        let offer = Offer::probe();
        assert!(!offer.dnn_cuda_target || offer.built_with_cuda, "{offer:?}");
        assert_eq!(choose(DnnBackend::Auto, offer).unwrap().backend == DnnBackend::Cuda, offer.dnn_cuda_target);
    }
}
