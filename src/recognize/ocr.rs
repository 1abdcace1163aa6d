//! Plate OCR networks run by OpenCV DNN: fixed-slot (one softmax per character position) and CTC
//! (one distribution per time step). The network's tensor is decoded by [`super::decode`].

use super::decode::{self, Reading};
use super::geometry::BoxF;
use super::model::{self, ModelError, ShapeError};
use super::prepare;
use super::settings::{DnnBackend, OcrKind, OcrModel};
use opencv::core::Mat;
use opencv::dnn;

pub struct OcrNet {
    net: dnn::Net,
    spec: OcrModel,
    alphabet: Vec<char>,
}

// The network is only used from the thread that owns the OCR.
unsafe impl Send for OcrNet {}

impl OcrNet {
    pub fn load(spec: &OcrModel, backend: DnnBackend) -> Result<OcrNet, ModelError> {
        let bytes = model::read_verified(&spec.path, &spec.sha256)?;
        let net = model::load_onnx(&spec.path, &bytes, backend)?;
        Ok(OcrNet { net, spec: spec.clone(), alphabet: spec.alphabet.chars().collect() })
    }

    pub fn spec(&self) -> &OcrModel {
        &self.spec
    }

    /// Readings of the plate in `bbox` of a BGR frame, best first (empty when the network reads
    /// nothing); the crop takes the model's margins.
    pub fn read_box(&mut self, frame: &Mat, bbox: BoxF, top_n: usize) -> Result<Vec<Reading>, ModelError> {
        let err = |e: opencv::Error| ModelError::Run { path: self.spec.path.clone(), message: e.message };
        let Some(c) = prepare::crop(frame, bbox, self.spec.margin_x as f32, self.spec.margin_y as f32).map_err(err)?
        else {
            return Ok(Vec::new());
        };
        self.read_crop(&c, top_n)
    }

    /// Readings of an image that is already the plate with its margin.
    pub fn read_crop(&mut self, crop: &Mat, top_n: usize) -> Result<Vec<Reading>, ModelError> {
        let path = self.spec.path.clone();
        let blob = prepare::to_input(crop, &self.spec)
            .map_err(|e| ModelError::Run { path: path.clone(), message: e.message })?;
        let (mut data, shape) = model::forward(&mut self.net, &path, &blob)?;
        let classes = match self.spec.kind {
            OcrKind::Slots => self.alphabet.len(),
            OcrKind::Ctc => self.alphabet.len() + 1,
        };
        let rows =
            rows_of(&mut data, &shape, classes).map_err(|source| ModelError::Shape { path: path.clone(), source })?;
        softmax_if_logits(&mut data, classes);
        Ok(match self.spec.kind {
            OcrKind::Slots => {
                let pad = self.spec.pad_char.chars().next().unwrap_or('_');
                decode::decode_slots(&data, rows, &self.alphabet, pad, top_n)
            }
            OcrKind::Ctc => {
                let blank = self.spec.blank as usize;
                if self.spec.beam_width <= 1 && top_n <= 1 {
                    decode::decode_ctc_greedy(&data, rows, classes, blank, &self.alphabet).into_iter().collect()
                } else {
                    let width = (self.spec.beam_width as usize).max(top_n * 2);
                    decode::decode_ctc_beam(&data, rows, classes, blank, &self.alphabet, width, top_n)
                }
            }
        })
    }
}

/// Number of rows (slots or time steps) of `classes` probabilities, putting the data row-major when
/// the network emits classes first (`[1, classes, T]`).
pub fn rows_of(data: &mut Vec<f32>, shape: &[usize], classes: usize) -> Result<usize, ShapeError> {
    let dims: Vec<usize> = shape.iter().copied().filter(|&d| d != 1).collect();
    match dims.as_slice() {
        [r, c] if *c == classes => Ok(*r),
        [c, r] if *c == classes => {
            let mut t = vec![0.0; data.len()];
            for i in 0..*c {
                for j in 0..*r {
                    t[j * c + i] = data[i * r + j];
                }
            }
            *data = t;
            Ok(*r)
        }
        [n] if classes > 0 && n % classes == 0 => Ok(n / classes),
        _ => Err(ShapeError::OcrRows { shape: shape.to_vec(), classes }),
    }
}

/// Softmax over each row unless the rows already sum to one: confidences must be probabilities.
pub fn softmax_if_logits(data: &mut [f32], classes: usize) {
    for row in data.chunks_exact_mut(classes) {
        let sum: f32 = row.iter().sum();
        if row.iter().all(|&v| v >= 0.0) && (sum - 1.0).abs() < 1e-2 {
            continue;
        }
        let max = row.iter().copied().fold(f32::MIN, f32::max);
        let mut s = 0.0;
        for v in row.iter_mut() {
            *v = (*v - max).exp();
            s += *v;
        }
        for v in row.iter_mut() {
            *v /= s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_in_either_order() {
        let mut d = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // [1, 3 classes, 2 steps]
        assert_eq!(rows_of(&mut d, &[1, 3, 2], 3), Ok(2));
        assert_eq!(d, vec![1.0, 3.0, 5.0, 2.0, 4.0, 6.0]);
        let mut d = vec![0.0; 6];
        assert_eq!(rows_of(&mut d, &[1, 2, 3], 3), Ok(2));
        assert!(rows_of(&mut d, &[1, 2, 4], 3).is_err());
    }

    #[test]
    fn logits_become_probabilities_and_probabilities_stay() {
        let mut d = vec![2.0, 0.0, -1.0, 0.7, 0.2, 0.1];
        softmax_if_logits(&mut d, 3);
        assert!((d[..3].iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert!(d[0] > d[1] && d[1] > d[2]);
        assert_eq!(&d[3..], &[0.7, 0.2, 0.1]);
    }
}
