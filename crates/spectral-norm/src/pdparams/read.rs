//! Reading: a pickle machine for the opcodes numpy's and Paddle's pickles use, under a budget.

use std::collections::BTreeMap;

use super::{PdArray, PdparamsError};
use crate::format::FloatDtype;

fn fail<T>(why: impl Into<String>) -> Result<T, PdparamsError> {
    Err(PdparamsError(why.into()))
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Mark,
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(String),
    Object {
        callable: Box<Value>,
        args: Box<Value>,
        state: Option<Box<Value>>,
    },
}

/// Deepest nesting of containers accepted (Paddle's state dicts nest about 5 deep), so that no
/// recursion over a value (drop, clone) can overflow the stack.
const MAX_DEPTH: usize = 100;

/// The cost of `value`: its nodes plus its string and byte lengths; an error when its
/// containers nest more than `MAX_DEPTH - depth` deep.
fn cost(value: &Value, depth: usize) -> Result<usize, PdparamsError> {
    if depth > MAX_DEPTH {
        return fail(format!("containers nested more than {MAX_DEPTH} deep"));
    }
    let children: Vec<&Value> = match value {
        Value::Tuple(items) | Value::List(items) => items.iter().collect(),
        Value::Dict(entries) => entries.iter().flat_map(|(k, v)| [k, v]).collect(),
        Value::Object {
            callable,
            args,
            state,
        } => [&**callable, &**args]
            .into_iter()
            .chain(state.as_deref())
            .collect(),
        Value::Str(s) | Value::Global(s) => return Ok(1 + s.len()),
        Value::Bytes(b) => return Ok(1 + b.len()),
        _ => return Ok(1),
    };
    children
        .into_iter()
        .try_fold(1, |total, child| Ok(total + cost(child, depth + 1)?))
}

/// The only globals a Paddle state dict refers to: numpy's array rebuild (numpy 1 and 2 name its
/// module differently), the array type and the dtype type. Nothing is ever called, but a file
/// that names anything else (`os.system`, `builtins.eval`) is not a state dict and is refused
/// by name rather than read as one with the offending entry left out.
const ALLOWED_GLOBALS: [&str; 4] = [
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
    "numpy.ndarray",
    "numpy.dtype",
];

fn global(module: &str, name: &str) -> Result<Value, PdparamsError> {
    let global = format!("{module}.{name}");
    if ALLOWED_GLOBALS.contains(&global.as_str()) {
        Ok(Value::Global(global))
    } else {
        fail(format!(
            "refers to {global:?}, which is not numpy's array rebuild (a Paddle state dict \
             names only numpy.ndarray, numpy.dtype and _reconstruct)"
        ))
    }
}

/// A copy of `value` for or from the memo, paid for from `budget`.
fn copy(value: &Value, budget: &mut usize) -> Result<Value, PdparamsError> {
    let cost = cost(value, 0)?;
    if cost > *budget {
        return fail("memo references copy more than the file could hold");
    }
    *budget -= cost;
    Ok(value.clone())
}

struct Machine<'a> {
    data: &'a [u8],
    at: usize,
    stack: Vec<Value>,
    /// By index: a file can name any index, so a dense table would cost what the index says.
    memo: BTreeMap<usize, Value>,
    /// What copies into and out of the memo may still cost in all (see [`cost`]): a few times
    /// the file's size, so that a memo reference repeated to double a value at each step
    /// fails instead of exhausting memory.
    copy_budget: usize,
    /// Bytes that new values may still take (see [`footprint`]).
    memory_budget: usize,
}

/// Bytes of memory the values a file builds, and the vectors that hold them, may take: a fixed
/// multiple of the file's size plus a constant. Charges are for allocations made (nothing is
/// refunded), vectors' growth included. A Paddle state dict builds about 30 values per array
/// from ~200 bytes of pickle: Paddle's own 1.2 kB file of 3×4 to 4×3×2×2 arrays is charged
/// 16 bytes per byte, larger files less (their vectors' first growth steps weigh less and
/// their data is charged once). A file of one-byte opcodes that each push a value would
/// otherwise take 32 bytes per byte of input, and twice that while its stack grows.
fn memory_budget(file_len: usize) -> usize {
    file_len
        .saturating_mul(MEMORY_PER_BYTE)
        .saturating_add(1 << 20)
}

/// See [`memory_budget`].
const MEMORY_PER_BYTE: usize = 16;

/// The memory a new value takes: its own slot, and the bytes of a string or byte string.
fn footprint(value: &Value) -> usize {
    let payload = match value {
        Value::Str(s) | Value::Global(s) => s.len(),
        Value::Bytes(b) => b.len(),
        _ => 0,
    };
    core::mem::size_of::<Value>() + payload
}

impl<'a> Machine<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PdparamsError> {
        if n > self.data.len() - self.at {
            return fail(format!("truncated at byte {}", self.at));
        }
        let bytes = &self.data[self.at..self.at + n];
        self.at += n;
        Ok(bytes)
    }

    fn uint(&mut self, n: usize) -> Result<usize, PdparamsError> {
        let bytes = self.take(n)?;
        let mut value = 0u64;
        for (i, b) in bytes.iter().enumerate() {
            value |= u64::from(*b) << (8 * i);
        }
        usize::try_from(value).or_else(|_| fail("length out of range"))
    }

    /// Pays for a vector of `T` about to grow from `len` to `len + more` elements: the
    /// allocation it grows into, if it must (vectors double).
    fn charge_growth<T>(
        &mut self,
        len: usize,
        capacity: usize,
        more: usize,
    ) -> Result<(), PdparamsError> {
        let needed = len.saturating_add(more);
        if needed <= capacity {
            return Ok(());
        }
        let grown = needed.max(capacity.saturating_mul(2)).max(4);
        self.charge(grown.saturating_mul(core::mem::size_of::<T>()))
    }

    /// Pays `bytes` of new memory from the budget, or fails once it is spent.
    fn charge(&mut self, bytes: usize) -> Result<(), PdparamsError> {
        match self.memory_budget.checked_sub(bytes) {
            Some(left) => {
                self.memory_budget = left;
                Ok(())
            }
            None => fail(format!(
                "the pickle builds more than {MEMORY_PER_BYTE} bytes of values per byte of \
                 file (at byte {})",
                self.at
            )),
        }
    }

    fn pop(&mut self) -> Result<Value, PdparamsError> {
        self.stack
            .pop()
            .map_or_else(|| fail(format!("empty stack at byte {}", self.at)), Ok)
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, PdparamsError> {
        let Some(mark) = self.stack.iter().rposition(|v| *v == Value::Mark) else {
            return fail(format!("no mark at byte {}", self.at));
        };
        let count = self.stack.len() - mark - 1;
        self.charge(count.saturating_mul(core::mem::size_of::<Value>()))?;
        let items = self.stack.split_off(mark + 1);
        self.stack.pop();
        Ok(items)
    }

    fn text(&mut self, n: usize) -> Result<String, PdparamsError> {
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec()).or_else(|_| fail("string is not UTF-8"))
    }

    fn line(&mut self) -> Result<String, PdparamsError> {
        let rest = &self.data[self.at..];
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return fail("unterminated GLOBAL");
        };
        self.text(end).and_then(|s| self.take(1).map(|_| s))
    }

    fn run(mut self) -> Result<Value, PdparamsError> {
        loop {
            let offset = self.at;
            let op = self.take(1)?[0];
            let value = match op {
                0x80 => {
                    self.take(1)?;
                    continue;
                } // PROTO
                0x95 => {
                    self.take(8)?;
                    continue;
                } // FRAME
                b'.' => return self.pop(), // STOP
                b'(' => Value::Mark,
                b'}' => Value::Dict(Vec::new()),
                b']' => Value::List(Vec::new()),
                b')' => Value::Tuple(Vec::new()),
                b'N' => Value::None,
                0x88 => Value::Bool(true),
                0x89 => Value::Bool(false),
                b'K' => Value::Int(self.uint(1)? as i64),
                b'M' => Value::Int(self.uint(2)? as i64),
                b'J' => Value::Int(i64::from(i32::from_le_bytes(
                    self.take(4)?.try_into().expect("4 bytes"),
                ))),
                0x8a => {
                    let n = self.uint(1)?;
                    let bytes = self.take(n)?;
                    if n > 8 {
                        return fail("integer too long");
                    }
                    let mut value = 0i64;
                    for (i, b) in bytes.iter().enumerate() {
                        value |= i64::from(*b) << (8 * i);
                    }
                    if n > 0 && n < 8 && bytes[n - 1] & 0x80 != 0 {
                        value -= 1i64 << (8 * n);
                    }
                    Value::Int(value)
                }
                b'G' => Value::Float(f64::from_be_bytes(
                    self.take(8)?.try_into().expect("8 bytes"),
                )),
                0x8c => {
                    let n = self.uint(1)?;
                    Value::Str(self.text(n)?)
                }
                b'X' => {
                    let n = self.uint(4)?;
                    Value::Str(self.text(n)?)
                }
                0x8d => {
                    let n = self.uint(8)?;
                    Value::Str(self.text(n)?)
                }
                b'C' => {
                    let n = self.uint(1)?;
                    Value::Bytes(self.take(n)?.to_vec())
                }
                b'B' => {
                    let n = self.uint(4)?;
                    Value::Bytes(self.take(n)?.to_vec())
                }
                0x8e | 0x96 => {
                    let n = self.uint(8)?;
                    Value::Bytes(self.take(n)?.to_vec())
                }
                b't' => Value::Tuple(self.pop_mark()?),
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    if self.stack.len() < n {
                        return fail(format!("empty stack at byte {offset}"));
                    }
                    self.charge(n * core::mem::size_of::<Value>())?;
                    let items = self.stack.split_off(self.stack.len() - n);
                    Value::Tuple(items)
                }
                0x94 => {
                    let Some(top) = self.stack.last() else {
                        return fail("MEMOIZE on an empty stack");
                    };
                    let top = copy(top, &mut self.copy_budget)?;
                    let next = self.memo.len();
                    self.memo.insert(next, top);
                    continue;
                }
                b'q' | b'r' => {
                    let index = self.uint(if op == b'q' { 1 } else { 4 })?;
                    let Some(top) = self.stack.last() else {
                        return fail("PUT on an empty stack");
                    };
                    let top = copy(top, &mut self.copy_budget)?;
                    self.memo.insert(index, top);
                    continue;
                }
                b'h' | b'j' => {
                    let index = self.uint(if op == b'h' { 1 } else { 4 })?;
                    let Some(value) = self.memo.get(&index) else {
                        return fail(format!("memo {index} unset"));
                    };
                    copy(value, &mut self.copy_budget)?
                }
                0x93 => {
                    let (name, module) = (self.pop()?, self.pop()?);
                    match (module, name) {
                        (Value::Str(m), Value::Str(n)) => global(&m, &n)?,
                        _ => return fail("STACK_GLOBAL of non-strings"),
                    }
                }
                b'c' => {
                    let m = self.line()?;
                    let n = self.line()?;
                    global(&m, &n)?
                }
                b'R' | 0x81 => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    Value::Object {
                        callable: Box::new(callable),
                        args: Box::new(args),
                        state: None,
                    }
                }
                b'b' => {
                    let state = self.pop()?;
                    cost(&state, 1)?;
                    match self.stack.last_mut() {
                        Some(Value::Object { state: slot, .. }) => *slot = Some(Box::new(state)),
                        _ => return fail(format!("BUILD on a non-object at byte {offset}")),
                    }
                    continue;
                }
                b's' | b'u' => {
                    let items = if op == b's' {
                        let v = self.pop()?;
                        let k = self.pop()?;
                        vec![k, v]
                    } else {
                        self.pop_mark()?
                    };
                    if items.len() % 2 != 0 {
                        return fail("odd SETITEMS");
                    }
                    items.iter().try_for_each(|item| cost(item, 1).map(drop))?;
                    let Some(Value::Dict(entries)) = self.stack.last() else {
                        return fail(format!("SETITEMS on a non-dict at byte {offset}"));
                    };
                    let (len, capacity) = (entries.len(), entries.capacity());
                    self.charge_growth::<(Value, Value)>(len, capacity, items.len() / 2)?;
                    let Some(Value::Dict(entries)) = self.stack.last_mut() else {
                        return fail(format!("SETITEMS on a non-dict at byte {offset}"));
                    };
                    let mut items = items.into_iter();
                    while let (Some(k), Some(v)) = (items.next(), items.next()) {
                        entries.push((k, v));
                    }
                    continue;
                }
                b'a' | b'e' => {
                    let items = if op == b'a' {
                        vec![self.pop()?]
                    } else {
                        self.pop_mark()?
                    };
                    items.iter().try_for_each(|item| cost(item, 1).map(drop))?;
                    let Some(Value::List(list)) = self.stack.last() else {
                        return fail("APPENDS on a non-list");
                    };
                    let (len, capacity) = (list.len(), list.capacity());
                    self.charge_growth::<Value>(len, capacity, items.len())?;
                    let Some(Value::List(list)) = self.stack.last_mut() else {
                        return fail("APPENDS on a non-list");
                    };
                    list.extend(items);
                    continue;
                }
                other => {
                    return fail(format!(
                        "unsupported pickle opcode 0x{other:02x} at byte {offset}"
                    ));
                }
            };
            if matches!(value, Value::Tuple(_) | Value::Object { .. }) {
                cost(&value, 0)?;
            }
            self.charge(footprint(&value))?;
            let (len, capacity) = (self.stack.len(), self.stack.capacity());
            self.charge_growth::<Value>(len, capacity, 1)?;
            self.stack.push(value);
        }
    }
}

/// Reads every numpy array of a `.pdparams` pickle. Entries that are not float32/float64
/// arrays (Paddle's `StructuredToParameterName@@` name map) are skipped.
///
/// # Errors
///
/// [`PdparamsError`] for anything that is not a pickled dict of numpy arrays.
pub fn read(data: &[u8]) -> Result<Vec<PdArray>, PdparamsError> {
    let root = Machine {
        data,
        at: 0,
        stack: Vec::new(),
        memo: BTreeMap::new(),
        copy_budget: data.len().saturating_mul(8).saturating_add(4096),
        memory_budget: memory_budget(data.len()),
    }
    .run()?;
    let Value::Dict(entries) = root else {
        return fail("the pickle's root is not a dict");
    };
    let mut arrays = Vec::new();
    for (key, value) in entries {
        let (
            Value::Str(name),
            Value::Object {
                callable,
                state: Some(state),
                ..
            },
        ) = (key, value)
        else {
            continue;
        };
        if !matches!(&*callable, Value::Global(g) if g.ends_with("multiarray._reconstruct")) {
            continue;
        }
        arrays.push(array(name, *state)?);
    }
    Ok(arrays)
}

/// An array from numpy's `__setstate__` tuple `(version, shape, dtype, fortran, bytes)`.
fn array(name: String, state: Value) -> Result<PdArray, PdparamsError> {
    let Value::Tuple(parts) = state else {
        return fail(format!("{name}: array state is not a tuple"));
    };
    let [
        _,
        Value::Tuple(shape),
        Value::Object {
            args,
            state: dtype_state,
            ..
        },
        Value::Bool(fortran),
        Value::Bytes(bytes),
    ] = parts.as_slice()
    else {
        return fail(format!("{name}: unexpected array state"));
    };
    let shape = shape
        .iter()
        .map(|d| match d {
            Value::Int(n) if *n >= 0 => Ok(*n as usize),
            _ => fail(format!("{name}: bad shape")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let Value::Tuple(dtype_args) = &**args else {
        return fail(format!("{name}: bad dtype"));
    };
    let code = match dtype_args.first() {
        Some(Value::Str(s)) => s.clone(),
        _ => return fail(format!("{name}: bad dtype")),
    };
    let little_endian = match dtype_state.as_deref() {
        Some(Value::Tuple(s)) => !matches!(s.get(1), Some(Value::Str(order)) if order == ">"),
        _ => true,
    };
    let Some(dtype) = FloatDtype::from_numpy(&code) else {
        return fail(format!(
            "{name}: dtype {code} is not supported (f2, f4, f8)"
        ));
    };
    let width = dtype.size();
    if *fortran || !little_endian {
        return fail(format!(
            "{name}: Fortran-ordered or big-endian arrays are not supported"
        ));
    }
    let count = shape
        .iter()
        .try_fold(1usize, |n, d| n.checked_mul(*d))
        .ok_or_else(|| PdparamsError(format!("{name}: shape too large")))?;
    if count.checked_mul(width) != Some(bytes.len()) {
        return fail(format!(
            "{name}: {} bytes for shape {shape:?} of {code}",
            bytes.len()
        ));
    }
    Ok(PdArray {
        name,
        shape,
        dtype,
        bytes: bytes.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(data: &[u8], memory_budget: usize) -> Machine<'_> {
        Machine {
            data,
            at: 0,
            stack: Vec::new(),
            memo: BTreeMap::new(),
            copy_budget: data.len() * 8 + 4096,
            memory_budget,
        }
    }

    /// The budget leaves real files room: Paddle's own file, of small arrays (the worst case
    /// for values per byte) and so small that the vectors' first growth steps count, reads
    /// within the per-byte part alone, without the constant.
    #[test]
    fn a_real_paddle_file_reads_within_the_budget_without_its_constant() {
        let file = include_bytes!("../../tests/fixtures/paddle.pdparams");
        assert!(machine(file, file.len() * MEMORY_PER_BYTE).run().is_ok());
    }

    /// Memo indices near 2³² and a list of millions of items: refused, having built no more
    /// than the budget (the memo is a map, not a table as long as the largest index).
    #[test]
    fn hostile_sizes_are_refused_within_the_budget() {
        let memo = b"\x80\x02]r\xff\xff\xff\xff.";
        let error = read(memo).unwrap_err().to_string();
        assert!(error.contains("not a dict"), "{error}");

        let items = 4_000_000;
        let mut list = b"\x80\x02](".to_vec();
        list.extend(std::iter::repeat_n(b'N', items));
        list.extend(b"e.");
        let error = read(&list).unwrap_err().to_string();
        assert!(error.contains("bytes of values per byte"), "{error}");
    }

    /// A dict whose value is `os.system(...)` was read as "no arrays"; it is refused, naming the
    /// global, whichever opcode names it. Newlines and escapes in the name are shown escaped.
    #[test]
    fn globals_other_than_numpys_rebuild_are_refused_by_name() {
        let global = b"\x80\x02}X\x01\x00\x00\x00acos\nsystem\nX\x02\x00\x00\x00ls\x85Rs.";
        let error = read(global).unwrap_err().to_string();
        assert!(error.contains("\"os.system\""), "{error}");
        let stacked = b"\x80\x04}\x8c\x01a\x8c\x08builtins\x8c\x06e\nval\x1b\x93N\x85Rs.";
        let error = read(stacked).unwrap_err().to_string();
        assert!(
            error.contains(r#""builtins.e\nval\u{1b}""#) && !error.contains('\n'),
            "{error}"
        );
    }
}
