//! Writing: arrays as `paddle.save` pickles them, refusing what the format's fields cannot hold.

use super::{PdArray, PdparamsError};

/// Writes arrays as `paddle.save` would: a protocol-2 pickle of a dict of numpy arrays, which
/// `paddle.load` (and `pickle.load` with numpy) reads back.
///
/// ```
/// use spectral_norm::format::FloatDtype;
/// use spectral_norm::pdparams::{PdArray, read, write};
///
/// let array = PdArray {
///     name: "fc.weight".into(),
///     shape: vec![2],
///     dtype: FloatDtype::F32,
///     bytes: [1f32, 2.0].iter().flat_map(|x| x.to_le_bytes()).collect(),
/// };
/// let bytes = write(std::slice::from_ref(&array)).unwrap();
/// assert_eq!(read(&bytes).unwrap(), vec![array]);
/// ```
///
/// # Errors
///
/// [`PdparamsError`] naming the array when a field does not fit the pickle's encoding: an array
/// of 4 GiB or more (protocol 2's `BINBYTES` length is 32 bits), an axis of 2³¹ or more
/// (`BININT`), a name of 4 GiB or more, or bytes that do not match the shape and dtype.
pub fn write(arrays: &[PdArray]) -> Result<Vec<u8>, PdparamsError> {
    let mut out = vec![0x80, 2, b'}', b'('];
    for array in arrays {
        write_array(&mut out, array)?;
    }
    out.extend(b"u.");
    Ok(out)
}

fn write_array(out: &mut Vec<u8>, array: &PdArray) -> Result<(), PdparamsError> {
    let name = &array.name;
    let refuse = |why: String| PdparamsError(format!("cannot write {name:?}: {why}"));
    let expected = array
        .shape
        .iter()
        .try_fold(array.dtype.size(), |n, &d| n.checked_mul(d))
        .ok_or_else(|| refuse(format!("shape {:?} overflows", array.shape)))?;
    let data_len = u32::try_from(expected).map_err(|_| {
        refuse(format!(
            "shape {:?} of {:?} is 4 GiB or more",
            array.shape, array.dtype
        ))
    })?;
    if expected != array.bytes.len() {
        return Err(refuse(format!(
            "{} bytes for shape {:?} of {:?}",
            array.bytes.len(),
            array.shape,
            array.dtype
        )));
    }
    text(out, name).map_err(|_| refuse("the name is 4 GiB or more".into()))?;
    out.extend(
        b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R(K\x01(",
    );
    for &d in &array.shape {
        let d = i32::try_from(d).map_err(|_| refuse(format!("axis of {d} is 2^31 or more")))?;
        out.push(b'J');
        out.extend(d.to_le_bytes());
    }
    out.extend(b"tcnumpy\ndtype\n");
    let code = (array.dtype.numpy())
        .ok_or_else(|| refuse(format!("numpy has no {:?} dtype", array.dtype)))?;
    text(out, code).map_err(|_| refuse("dtype".into()))?;
    out.extend(b"\x89\x88\x87R(K\x03");
    text(out, "<").map_err(|_| refuse("byte order".into()))?;
    out.extend(b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89B");
    out.extend(data_len.to_le_bytes());
    out.extend(&array.bytes);
    out.extend(b"tb");
    Ok(())
}

/// `BINUNICODE`: a string with a 32-bit length.
fn text(out: &mut Vec<u8>, s: &str) -> Result<(), core::num::TryFromIntError> {
    let len = u32::try_from(s.len())?;
    out.push(b'X');
    out.extend(len.to_le_bytes());
    out.extend(s.as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::FloatDtype;

    fn array(shape: Vec<usize>, bytes: Vec<u8>) -> PdArray {
        PdArray {
            name: "w".into(),
            shape,
            dtype: FloatDtype::F32,
            bytes,
        }
    }

    #[test]
    fn what_the_encoding_cannot_hold_is_refused_not_truncated() {
        // An axis beyond i32 (the bytes would not fit in memory; the check comes first).
        let wide = array(vec![1 << 31, 0], Vec::new());
        let error = write(&[wide]).unwrap_err().to_string();
        assert!(error.contains("2^31"), "{error}");
        // 4 GiB of data (checked from the shape, before any bytes are looked at).
        let huge = array(vec![1 << 30, 1], Vec::new());
        let error = write(&[huge]).unwrap_err().to_string();
        assert!(error.contains("4 GiB"), "{error}");
        // Bytes that disagree with the shape.
        let short = array(vec![3], vec![0; 8]);
        assert!(write(&[short]).unwrap_err().to_string().contains("8 bytes"));
        // A well-formed array is written.
        assert!(write(&[array(vec![2], vec![0; 8])]).is_ok());
    }
}
