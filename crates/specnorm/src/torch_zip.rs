//! PyTorch's `.pt` format as `torch.save(state_dict, path)` writes it (PyTorch ≥ 1.6): an
//! uncompressed zip whose `archive/data.pkl` is a protocol-2 pickle of a dict from key to
//! `torch._utils._rebuild_tensor_v2(storage, 0, shape, stride, False, OrderedDict())`, each
//! storage a persistent id `('storage', torch.FloatStorage, '<n>', 'cpu', numel)` whose
//! little-endian bytes are the entry `archive/data/<n>`, aligned to 64 bytes as PyTorch aligns
//! them. `torch.load(path, weights_only=True)` accepts every global used here.

use std::io::{Cursor, Write};

use spectral_norm::format::FloatDtype;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

/// One tensor to write.
pub struct TorchTensor<'a> {
    /// The state-dict key.
    pub key: &'a str,
    /// Row-major shape.
    pub shape: &'a [usize],
    /// The element type, which names the storage class.
    pub dtype: FloatDtype,
    /// The little-endian element bytes, row-major.
    pub bytes: Vec<u8>,
}

fn text(out: &mut Vec<u8>, s: &str) {
    out.push(b'X'); // BINUNICODE
    out.extend((s.len() as u32).to_le_bytes());
    out.extend(s.as_bytes());
}

fn int(out: &mut Vec<u8>, n: usize) {
    if let Ok(byte) = u8::try_from(n) {
        out.extend([b'K', byte]); // BININT1
    } else if let Ok(short) = u16::try_from(n) {
        out.push(b'M'); // BININT2
        out.extend(short.to_le_bytes());
    } else if let Ok(long) = i32::try_from(n) {
        out.push(b'J'); // BININT
        out.extend(long.to_le_bytes());
    } else {
        out.extend([0x8a, 8]); // LONG1, 8 bytes; a usize below 2⁶³ keeps the sign bit clear
        out.extend((n as i64).to_le_bytes());
    }
}

/// A tuple of integers as pickle writes it: `)`, TUPLE1 to TUPLE3, or MARK … TUPLE.
fn tuple(out: &mut Vec<u8>, items: &[usize]) {
    match items.len() {
        0 => out.push(b')'), // EMPTY_TUPLE
        n @ 1..=3 => {
            items.iter().for_each(|&item| int(out, item));
            out.push(0x84 + n as u8); // TUPLE1, TUPLE2, TUPLE3
        }
        _ => {
            out.push(b'('); // MARK
            items.iter().for_each(|&item| int(out, item));
            out.push(b't'); // TUPLE
        }
    }
}

/// The pickle of the state dict, storage `n` holding tensor `n`: what `torch.save` writes,
/// less the memo opcodes (it is `pickletools.optimize` of PyTorch's for a single tensor).
pub fn pickle(tensors: &[TorchTensor]) -> Vec<u8> {
    let mut out = vec![0x80, 2, b'}']; // PROTO 2, EMPTY_DICT
    let several = tensors.len() > 1;
    if several {
        out.push(b'('); // MARK
    }
    for (n, tensor) in tensors.iter().enumerate() {
        text(&mut out, tensor.key);
        out.extend(b"ctorch._utils\n_rebuild_tensor_v2\n(");
        out.push(b'('); // the persistent id
        text(&mut out, "storage");
        out.extend(b"ctorch\n");
        out.extend(tensor.dtype.torch_storage().as_bytes());
        out.push(b'\n');
        text(&mut out, &n.to_string());
        text(&mut out, "cpu");
        int(&mut out, tensor.shape.iter().product());
        out.extend(b"tQ"); // TUPLE, BINPERSID
        int(&mut out, 0); // storage offset
        tuple(&mut out, tensor.shape);
        let stride: Vec<usize> = (0..tensor.shape.len())
            .map(|d| tensor.shape[d + 1..].iter().product())
            .collect();
        tuple(&mut out, &stride);
        out.push(0x89); // requires_grad = False
        out.extend(b"ccollections\nOrderedDict\n)R"); // backward hooks: OrderedDict()
        out.extend(b"tR"); // TUPLE, REDUCE
    }
    match tensors.len() {
        0 => {}
        1 => out.push(b's'), // SETITEM
        _ => out.push(b'u'), // SETITEMS
    }
    out.push(b'.'); // STOP
    out
}

/// The whole `.pt` file.
///
/// # Errors
///
/// When the zip cannot be written (in memory, so only on a zip-format limit).
pub fn encode(tensors: &[TorchTensor]) -> zip::result::ZipResult<Vec<u8>> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let stored = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .with_alignment(64)
        .large_file(tensors.iter().any(|t| t.bytes.len() >= u32::MAX as usize));
    let mut entry = |name: &str, content: &[u8]| -> zip::result::ZipResult<()> {
        zip.start_file(format!("archive/{name}"), stored)?;
        zip.write_all(content)?;
        Ok(())
    };
    entry("data.pkl", &pickle(tensors))?;
    entry(".format_version", b"1")?;
    entry(".storage_alignment", b"64")?;
    entry("byteorder", b"little")?;
    for (n, tensor) in tensors.iter().enumerate() {
        entry(&format!("data/{n}"), &tensor.bytes)?;
    }
    entry("version", b"3\n")?;
    Ok(zip.finish()?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_use_the_shortest_pickle_opcode() {
        let encoded = |n| {
            let mut out = Vec::new();
            int(&mut out, n);
            out
        };
        assert_eq!(encoded(7), [b'K', 7]);
        assert_eq!(encoded(300), [b'M', 44, 1]);
        assert_eq!(encoded(70_000), [b'J', 0x70, 0x11, 1, 0]);
        assert_eq!(encoded(1 << 40), [0x8a, 8, 0, 0, 0, 0, 0, 1, 0, 0]);
    }

    #[test]
    fn a_tensor_pickles_as_torch_save_does() {
        // torch 2.15: pickletools.optimize of data.pkl of torch.save({"w": torch.zeros(2, 3)}).
        let tensors = [TorchTensor {
            key: "w",
            shape: &[2, 3],
            dtype: FloatDtype::F32,
            bytes: vec![0; 24],
        }];
        let want = b"\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x06tQK\x00K\x02K\x03\x86K\x03K\x01\x86\x89ccollections\nOrderedDict\n)RtRs.";
        assert_eq!(pickle(&tensors), want);
    }
}
