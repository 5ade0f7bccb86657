//! Paddle's `.pdparams` arrays to and from a safetensors buffer, the form burn-store reads and
//! writes.

use safetensors::SafeTensors;
use safetensors::tensor::TensorView;

use crate::format::FloatDtype;
use crate::pdparams::PdArray;

/// The arrays of a `.pdparams` file as a safetensors buffer, for burn-store to load.
pub(super) fn arrays_to_safetensors(arrays: &[PdArray]) -> Result<Vec<u8>, String> {
    let views = arrays
        .iter()
        .map(|a| {
            TensorView::new(a.dtype.safetensors(), a.shape.clone(), &a.bytes)
                .map(|view| (a.name.clone(), view))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    safetensors::serialize(views, None).map_err(|e| e.to_string())
}

/// The tensors of a safetensors buffer as `.pdparams` arrays.
pub(super) fn safetensors_to_arrays(bytes: &[u8]) -> Result<Vec<PdArray>, String> {
    let file = SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
    let mut tensors = file.tensors();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    tensors
        .into_iter()
        .map(|(name, view)| {
            let dtype = FloatDtype::from_safetensors(view.dtype()).ok_or_else(|| {
                format!(
                    "{name:?}: dtype {:?} cannot be written to .pdparams",
                    view.dtype()
                )
            })?;
            Ok(PdArray {
                name,
                shape: view.shape().to_vec(),
                dtype,
                bytes: view.data().to_vec(),
            })
        })
        .collect()
}
