//! Loading model files: the checksum named in the configuration is checked before OpenCV sees a byte,
//! and the network is placed on the configured DNN backend.

use super::settings::DnnBackend;
use opencv::core::Vector;
use opencv::dnn;
use opencv::prelude::*;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// A network's output tensor does not have the shape its kind promises.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    #[error("detector output shape {0:?} is not [1, 4+classes, N]")]
    NotAnchorFree(Vec<usize>),
    #[error("detector output shape {0:?} has no class scores")]
    NoClassScores(Vec<usize>),
    #[error("detector output shape {0:?} is not [1, N, 5+classes]")]
    NotYolo(Vec<usize>),
    #[error("detector output shape {0:?} is too small for YOLO rows")]
    TooSmallForYolo(Vec<usize>),
    #[error("OCR output shape {shape:?} does not fit {classes} classes per row")]
    OcrRows { shape: Vec<usize>, classes: usize },
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model file {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("model file {}: sha256 is {actual}, the configuration expects {expected}", path.display())]
    Checksum { path: PathBuf, expected: String, actual: String },
    #[error("model file {}: OpenCV cannot load it: {message}", path.display())]
    Load { path: PathBuf, message: String },
    #[error("model file {}: OpenCV cannot run it: {message}", path.display())]
    Run { path: PathBuf, message: String },
    #[error("model file {}: {source}", path.display())]
    Shape { path: PathBuf, source: ShapeError },
    #[error("model file {}: start-up check failed: {message}", path.display())]
    Smoke { path: PathBuf, message: String },
    #[error("the DNN backend {0:?} is not in this OpenCV build")]
    Backend(DnnBackend),
}

/// The file's bytes, after checking that their sha256 is `expected` (hex, either case).
pub fn read_verified(path: &Path, expected: &str) -> Result<Vec<u8>, ModelError> {
    let bytes = std::fs::read(path).map_err(|source| ModelError::Read { path: path.to_path_buf(), source })?;
    let actual = hex(&Sha256::digest(&bytes));
    if !actual.eq_ignore_ascii_case(expected) {
        return Err(ModelError::Checksum { path: path.to_path_buf(), expected: expected.to_ascii_lowercase(), actual });
    }
    Ok(bytes)
}

pub fn hex(bytes: &[u8]) -> String {
    ::hex::encode(bytes)
}

/// An ONNX network from checked bytes, on the configured backend.
pub fn load_onnx(path: &Path, bytes: &[u8], backend: DnnBackend) -> Result<dnn::Net, ModelError> {
    let buf = Vector::<u8>::from_slice(bytes);
    let mut net = dnn::read_net_from_onnx_buffer(&buf)
        .map_err(|e| ModelError::Load { path: path.to_path_buf(), message: e.message.clone() })?;
    if net.empty().unwrap_or(true) {
        return Err(ModelError::Load { path: path.to_path_buf(), message: "the network is empty".into() });
    }
    let (b, t) = match backend {
        // `auto` is resolved before (`backend::resolve`); left unresolved it means the CPU.
        DnnBackend::Cpu | DnnBackend::Auto => (dnn::Backend::DNN_BACKEND_OPENCV, dnn::Target::DNN_TARGET_CPU),
        DnnBackend::Cuda => (dnn::Backend::DNN_BACKEND_CUDA, dnn::Target::DNN_TARGET_CUDA),
        DnnBackend::Openvino => (dnn::Backend::DNN_BACKEND_INFERENCE_ENGINE, dnn::Target::DNN_TARGET_CPU),
    };
    if !matches!(backend, DnnBackend::Cpu | DnnBackend::Auto) {
        let available = dnn::get_available_targets(b).map(|v| v.iter().any(|x| x == t)).unwrap_or(false);
        if !available {
            return Err(ModelError::Backend(backend));
        }
    }
    net.set_preferable_backend(b as i32)
        .map_err(|e| ModelError::Load { path: path.to_path_buf(), message: e.message.clone() })?;
    net.set_preferable_target(t as i32)
        .map_err(|e| ModelError::Load { path: path.to_path_buf(), message: e.message.clone() })?;
    Ok(net)
}

/// Runs the network on `blob` and returns its single output as a flat f32 vector with its shape.
pub fn forward(
    net: &mut dnn::Net,
    path: &Path,
    blob: &opencv::core::Mat,
) -> Result<(Vec<f32>, Vec<usize>), ModelError> {
    let run = |message: String| ModelError::Run { path: path.to_path_buf(), message };
    net.set_input(blob, "", 1.0, opencv::core::Scalar::default()).map_err(|e| run(e.message.clone()))?;
    let out = net.forward_single("").map_err(|e| run(e.message.clone()))?;
    let shape: Vec<usize> = out.mat_size().iter().map(|&d| d.max(0) as usize).collect();
    let out = if out.is_continuous() { out } else { out.try_clone().map_err(|e| run(e.message.clone()))? };
    let data = out.data_typed::<f32>().map_err(|e| run(format!("output is not float32: {}", e.message)))?;
    if data.iter().any(|v| !v.is_finite()) {
        return Err(run("the output holds NaN or infinity".into()));
    }
    Ok((data.to_vec(), shape))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_mismatch_and_missing_file_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.onnx");
        std::fs::write(&p, b"abc").unwrap();
        let good = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(read_verified(&p, good).unwrap(), b"abc");
        assert_eq!(read_verified(&p, &good.to_ascii_uppercase()).unwrap(), b"abc");
        let e = read_verified(&p, &"0".repeat(64)).unwrap_err().to_string();
        assert!(e.contains("m.onnx") && e.contains(good), "{e}");
        let e = read_verified(&dir.path().join("none.onnx"), good).unwrap_err().to_string();
        assert!(e.contains("none.onnx"), "{e}");
    }

    #[test]
    fn garbage_bytes_are_a_load_error_not_a_crash() {
        let e = load_onnx(Path::new("x.onnx"), b"not a model", DnnBackend::Cpu).unwrap_err();
        assert!(matches!(e, ModelError::Load { .. }), "{e}");
    }
}
