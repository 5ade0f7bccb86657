//! The globals a PyTorch checkpoint's pickle names, checked before the file is read: a state
//! dict names only tensor-rebuild functions, storage types and `OrderedDict`, and a file that
//! names anything else (`os.system`, `builtins.eval`) is not a checkpoint. Nothing is ever
//! called either way (the reader only rebuilds tensors); the check is so that such a file is
//! refused by name instead of being read as one with no tensors.

use std::io::Read;

/// The globals `torch.save(state_dict)` writes, across PyTorch versions.
const ALLOWED: [&str; 15] = [
    "collections.OrderedDict",
    "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state",
    "torch.FloatStorage",
    "torch.DoubleStorage",
    "torch.HalfStorage",
    "torch.BFloat16Storage",
    "torch.LongStorage",
    "torch.IntStorage",
    "torch.ShortStorage",
    "torch.CharStorage",
    "torch.ByteStorage",
    "torch.BoolStorage",
];

/// The first global of the zip's `*/data.pkl` that a state dict would not name, if any.
/// `None` also for a file that is not a zip, has no pickle or stores it compressed
/// (`torch.save` stores it as is; this crate reads no deflate): the reader refuses those or
/// reads them itself. The pickle is read only up to `limit` bytes.
pub fn foreign_global(file: &std::path::Path, limit: usize) -> Option<String> {
    // The archive is read from the file, so that only its pickle is loaded, not the tensors.
    let mut archive = zip::ZipArchive::new(std::fs::File::open(file).ok()?).ok()?;
    let name = archive
        .file_names()
        .filter_map(Result::ok)
        .find(|name| name.ends_with("data.pkl"))?
        .into_owned();
    let mut pickle = Vec::new();
    archive
        .by_name(&name)
        .ok()?
        .take(limit as u64)
        .read_to_end(&mut pickle)
        .ok()?;
    globals(&pickle)
        .into_iter()
        .find(|global| !ALLOWED.contains(&global.as_str()))
}

/// What a pushing opcode left on the stack, as far as naming a global goes.
#[derive(Clone)]
enum Pushed {
    Text(String),
    Other,
}

/// Every global a pickle names (`GLOBAL`, `INST`, `STACK_GLOBAL`), in order, by walking its
/// opcodes without building anything. A `STACK_GLOBAL` whose two names were not the two
/// strings pushed just before it is reported as `"?"`. The walk stops at `STOP`, at an opcode
/// it does not know, or where the data ends.
fn globals(pickle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut at = 0usize;
    let mut recent: [Pushed; 2] = [Pushed::Other, Pushed::Other];
    // Every memo entry, with the string it holds where it holds one.
    let mut memo: std::collections::HashMap<u64, Option<String>> = Default::default();
    let take = |at: &mut usize, n: usize| -> Option<&[u8]> {
        let bytes = pickle.get(*at..at.checked_add(n)?)?;
        *at += n;
        Some(bytes)
    };
    let uint = |bytes: &[u8]| bytes.iter().rev().fold(0u64, |n, &b| n << 8 | u64::from(b));
    let line = |at: &mut usize| -> Option<String> {
        let end = pickle.get(*at..)?.iter().position(|&b| b == b'\n')?;
        let text = String::from_utf8_lossy(&pickle[*at..*at + end]).into_owned();
        *at += end + 1;
        Some(text)
    };
    while let Some(&op) = pickle.get(at) {
        at += 1;
        let mut pushed = None;
        let step: Option<()> = (|| {
            match op {
                b'.' => return None,
                // Length-prefixed text.
                0x8c | b'U' => {
                    let n = uint(take(&mut at, 1)?) as usize;
                    pushed = Some(Pushed::Text(
                        String::from_utf8_lossy(take(&mut at, n)?).into(),
                    ));
                }
                b'X' | b'T' => {
                    let n = uint(take(&mut at, 4)?) as usize;
                    pushed = Some(Pushed::Text(
                        String::from_utf8_lossy(take(&mut at, n)?).into(),
                    ));
                }
                0x8d => {
                    let n = usize::try_from(uint(take(&mut at, 8)?)).ok()?;
                    pushed = Some(Pushed::Text(
                        String::from_utf8_lossy(take(&mut at, n)?).into(),
                    ));
                }
                // Length-prefixed bytes and long integers.
                b'C' | 0x8a => {
                    let n = uint(take(&mut at, 1)?) as usize;
                    take(&mut at, n)?;
                    pushed = Some(Pushed::Other);
                }
                b'B' | 0x8b => {
                    let n = uint(take(&mut at, 4)?) as usize;
                    take(&mut at, n)?;
                    pushed = Some(Pushed::Other);
                }
                0x8e | 0x96 => {
                    let n = usize::try_from(uint(take(&mut at, 8)?)).ok()?;
                    take(&mut at, n)?;
                    pushed = Some(Pushed::Other);
                }
                // Fixed-size arguments.
                0x80 | 0x82 => {
                    take(&mut at, 1)?;
                }
                0x83 => {
                    take(&mut at, 2)?;
                }
                0x84 => {
                    take(&mut at, 4)?;
                }
                0x95 => {
                    take(&mut at, 8)?;
                }
                b'K' => {
                    take(&mut at, 1)?;
                    pushed = Some(Pushed::Other);
                }
                b'M' => {
                    take(&mut at, 2)?;
                    pushed = Some(Pushed::Other);
                }
                b'J' => {
                    take(&mut at, 4)?;
                    pushed = Some(Pushed::Other);
                }
                b'G' => {
                    take(&mut at, 8)?;
                    pushed = Some(Pushed::Other);
                }
                // The memo: remember strings, so that a later GET of one can name a global.
                b'q' | b'r' | 0x94 => {
                    let index = match op {
                        b'q' => uint(take(&mut at, 1)?),
                        b'r' => uint(take(&mut at, 4)?),
                        _ => memo.len() as u64,
                    };
                    let text = match &recent[1] {
                        Pushed::Text(text) => Some(text.clone()),
                        Pushed::Other => None,
                    };
                    memo.insert(index, text);
                }
                b'h' | b'j' => {
                    let index = uint(take(&mut at, if op == b'h' { 1 } else { 4 })?);
                    pushed = Some(match memo.get(&index) {
                        Some(Some(text)) => Pushed::Text(text.clone()),
                        _ => Pushed::Other,
                    });
                }
                // Newline-terminated arguments (protocol 0).
                b'c' | b'i' => {
                    let (module, name) = (line(&mut at)?, line(&mut at)?);
                    found.push(format!("{module}.{name}"));
                    pushed = Some(Pushed::Other);
                }
                b'I' | b'L' | b'F' | b'S' | b'V' | b'P' | b'g' | b'p' => {
                    line(&mut at)?;
                    pushed = (op != b'p').then_some(Pushed::Other);
                }
                0x93 => {
                    let global = match &recent {
                        [Pushed::Text(module), Pushed::Text(name)] => format!("{module}.{name}"),
                        _ => "?".to_string(),
                    };
                    found.push(global);
                    pushed = Some(Pushed::Other);
                }
                // No argument.
                b'(' | b')' | b']' | b'}' | b'N' | 0x88 | 0x89 | b'0' | b'1' | b'2' | b'a'
                | b'e' | b's' | b'u' | b't' | b'R' | b'b' | b'l' | b'd' | b'o' | b'Q' | 0x81
                | 0x85 | 0x86 | 0x87 | 0x8f | 0x90 | 0x91 | 0x92 | 0x97 | 0x98 => {
                    pushed = Some(Pushed::Other);
                }
                _ => return None,
            }
            Some(())
        })();
        if step.is_none() {
            break;
        }
        if let Some(pushed) = pushed {
            recent = [recent[1].clone(), pushed];
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::globals;

    #[test]
    fn globals_are_found_whichever_opcode_names_them() {
        let protocol2 = b"\x80\x02}X\x01\x00\x00\x00acos\nsystem\nX\x02\x00\x00\x00ls\x85Rs.";
        assert_eq!(globals(protocol2), ["os.system"]);
        let stacked = b"\x80\x04K\x07\x94\x8c\x08builtins\x94\x8c\x04eval\x94\x93h\x01h\x02\x93.";
        assert_eq!(globals(stacked), ["builtins.eval", "builtins.eval"]);
        let not_strings = b"\x80\x04K\x01K\x02\x93.";
        assert_eq!(globals(not_strings), ["?"]);
    }
}
