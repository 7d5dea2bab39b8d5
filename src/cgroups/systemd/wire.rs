//! The D-Bus wire format ("Message Protocol" in the D-Bus specification), little-endian,
//! for the few signatures berth's systemd driver sends and reads. Every value is aligned
//! to its type's boundary counted from the start of the message; the body starts on an
//! 8-byte boundary, so body offsets align the same way.

/// A D-Bus value. Arrays carry their element signature so an empty one still has a type.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Byte(u8),
    Bool(bool),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    Str(String),
    Path(String),
    Sig(String),
    Array(String, Vec<Value>),
    Struct(Vec<Value>),
    /// A `{kv}` element of a dictionary.
    Entry(Box<Value>, Box<Value>),
    Variant(Box<Value>),
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WireError {
    #[error("D-Bus message truncated at byte {0}")]
    Short(usize),
    #[error("D-Bus signature {0:?} is not valid")]
    Signature(String),
    #[error("D-Bus string at byte {0} is not valid UTF-8")]
    Utf8(usize),
    #[error("D-Bus message in big-endian order (berth reads little-endian only)")]
    BigEndian,
    #[error("D-Bus message: {0}")]
    Header(&'static str),
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Str(s.to_string())
    }

    /// `(sv)`: one property of a unit, as systemd's StartTransientUnit takes them.
    pub fn prop(name: &str, v: Value) -> Value {
        Value::Struct(vec![Value::str(name), Value::Variant(Box::new(v))])
    }

    pub fn signature(&self) -> String {
        match self {
            Value::Byte(_) => "y".into(),
            Value::Bool(_) => "b".into(),
            Value::I32(_) => "i".into(),
            Value::U32(_) => "u".into(),
            Value::I64(_) => "x".into(),
            Value::U64(_) => "t".into(),
            Value::Str(_) => "s".into(),
            Value::Path(_) => "o".into(),
            Value::Sig(_) => "g".into(),
            Value::Array(elem, _) => format!("a{elem}"),
            Value::Struct(vs) => {
                format!("({})", vs.iter().map(Value::signature).collect::<String>())
            }
            Value::Entry(k, v) => format!("{{{}{}}}", k.signature(), v.signature()),
            Value::Variant(_) => "v".into(),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Path(s) | Value::Sig(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_u32(&self) -> Option<u32> {
        match self {
            Value::U32(n) => Some(*n),
            _ => None,
        }
    }
}

fn align_of(code: u8) -> usize {
    match code {
        b'n' | b'q' => 2,
        b'b' | b'i' | b'u' | b'a' | b's' | b'o' | b'h' => 4,
        b'x' | b't' | b'd' | b'(' | b'{' => 8,
        _ => 1,
    }
}

/// Appends values at offsets counted from the start of `buf`.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    fn pad(&mut self, align: usize) {
        while self.buf.len() % align != 0 {
            self.buf.push(0);
        }
    }

    fn u32_at(&mut self, n: u32) {
        self.pad(4);
        self.buf.extend_from_slice(&n.to_le_bytes());
    }

    fn text(&mut self, s: &str) {
        self.u32_at(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    pub fn put(&mut self, v: &Value) {
        match v {
            Value::Byte(b) => self.buf.push(*b),
            Value::Bool(b) => self.u32_at(u32::from(*b)),
            Value::I32(n) => {
                self.pad(4);
                self.buf.extend_from_slice(&n.to_le_bytes());
            }
            Value::U32(n) => self.u32_at(*n),
            Value::I64(n) => {
                self.pad(8);
                self.buf.extend_from_slice(&n.to_le_bytes());
            }
            Value::U64(n) => {
                self.pad(8);
                self.buf.extend_from_slice(&n.to_le_bytes());
            }
            Value::Str(s) | Value::Path(s) => self.text(s),
            Value::Sig(s) => {
                self.buf.push(s.len() as u8);
                self.buf.extend_from_slice(s.as_bytes());
                self.buf.push(0);
            }
            Value::Array(elem, items) => {
                self.u32_at(0);
                let len_at = self.buf.len() - 4;
                // The padding to the first element is not part of the length, even when
                // the array is empty.
                self.pad(align_of(elem.as_bytes().first().copied().unwrap_or(b'y')));
                let start = self.buf.len();
                for it in items {
                    self.put(it);
                }
                let len = (self.buf.len() - start) as u32;
                self.buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
            }
            Value::Struct(vs) => {
                self.pad(8);
                for v in vs {
                    self.put(v);
                }
            }
            Value::Entry(k, v) => {
                self.pad(8);
                self.put(k);
                self.put(v);
            }
            Value::Variant(inner) => {
                self.put(&Value::Sig(inner.signature()));
                self.put(inner);
            }
        }
    }
}

/// Splits the first complete type off a signature.
fn first_type(sig: &[u8]) -> Result<(&[u8], &[u8]), WireError> {
    let bad = || WireError::Signature(String::from_utf8_lossy(sig).into_owned());
    let end = match sig.first().ok_or_else(bad)? {
        b'a' => 1 + first_type(&sig[1..])?.0.len(),
        open @ (b'(' | b'{') => {
            let close = if *open == b'(' { b')' } else { b'}' };
            let mut rest = &sig[1..];
            let mut n = 1;
            while rest.first() != Some(&close) {
                let (t, r) = first_type(rest)?;
                n += t.len();
                rest = r;
            }
            n + 1
        }
        b'y' | b'b' | b'n' | b'q' | b'i' | b'u' | b'x' | b't' | b'd' | b's' | b'o' | b'g'
        | b'v' | b'h' => 1,
        _ => return Err(bad()),
    };
    Ok(sig.split_at(end))
}

/// Reads values from `buf`, whose byte 0 sits on an 8-byte boundary of the message.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn align(&mut self, a: usize) -> Result<(), WireError> {
        let p = self.pos.div_ceil(a) * a;
        if p > self.buf.len() {
            return Err(WireError::Short(self.pos));
        }
        self.pos = p;
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let s = self
            .buf
            .get(self.pos..self.pos + n)
            .ok_or(WireError::Short(self.pos))?;
        self.pos += n;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        self.align(4)?;
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, WireError> {
        self.align(8)?;
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn text(&mut self, len: usize) -> Result<String, WireError> {
        let at = self.pos;
        let s = self.take(len + 1)?;
        String::from_utf8(s[..len].to_vec()).map_err(|_| WireError::Utf8(at))
    }

    /// Reads every value of `sig` in sequence.
    pub fn all(&mut self, sig: &str) -> Result<Vec<Value>, WireError> {
        let mut rest = sig.as_bytes();
        let mut out = Vec::new();
        while !rest.is_empty() {
            let (t, r) = first_type(rest)?;
            out.push(self.get(t)?);
            rest = r;
        }
        Ok(out)
    }

    /// Reads one value of the single complete type `t`.
    fn get(&mut self, t: &[u8]) -> Result<Value, WireError> {
        Ok(match t[0] {
            b'y' => Value::Byte(self.take(1)?[0]),
            b'b' => Value::Bool(self.u32()? != 0),
            b'i' => Value::I32(self.u32()? as i32),
            b'u' | b'h' => Value::U32(self.u32()?),
            b'x' => Value::I64(self.u64()? as i64),
            b't' => Value::U64(self.u64()?),
            b'n' | b'q' => {
                self.align(2)?;
                let b = self.take(2)?;
                Value::U32(u32::from(u16::from_le_bytes([b[0], b[1]])))
            }
            b'd' => Value::U64(self.u64()?),
            b's' => {
                let n = self.u32()? as usize;
                Value::Str(self.text(n)?)
            }
            b'o' => {
                let n = self.u32()? as usize;
                Value::Path(self.text(n)?)
            }
            b'g' => {
                let n = self.take(1)?[0] as usize;
                Value::Sig(self.text(n)?)
            }
            b'v' => {
                let n = self.take(1)?[0] as usize;
                let sig = self.text(n)?;
                let (inner, rest) = first_type(sig.as_bytes())?;
                if !rest.is_empty() {
                    return Err(WireError::Signature(sig));
                }
                Value::Variant(Box::new(self.get(inner)?))
            }
            b'a' => {
                let len = self.u32()? as usize;
                let elem = &t[1..];
                self.align(align_of(elem[0]))?;
                let end = self.pos + len;
                let mut items = Vec::new();
                while self.pos < end {
                    items.push(self.get(elem)?);
                }
                Value::Array(String::from_utf8_lossy(elem).into_owned(), items)
            }
            b'(' | b'{' => {
                self.align(8)?;
                let inner = std::str::from_utf8(&t[1..t.len() - 1])
                    .map_err(|_| WireError::Signature(String::from_utf8_lossy(t).into()))?;
                let mut vs = self.all(inner)?;
                if t[0] == b'{' && vs.len() == 2 {
                    let v = vs.pop().map(Box::new);
                    let k = vs.pop().map(Box::new);
                    match (k, v) {
                        (Some(k), Some(v)) => Value::Entry(k, v),
                        _ => Value::Struct(vs),
                    }
                } else {
                    Value::Struct(vs)
                }
            }
            _ => return Err(WireError::Signature(String::from_utf8_lossy(t).into())),
        })
    }
}

pub const METHOD_CALL: u8 = 1;
pub const METHOD_RETURN: u8 = 2;
pub const ERROR: u8 = 3;
pub const SIGNAL: u8 = 4;

/// A message as read from the bus (header fields berth looks at, and the body).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Message {
    pub kind: u8,
    pub serial: u32,
    pub path: Option<String>,
    pub interface: Option<String>,
    pub member: Option<String>,
    pub error_name: Option<String>,
    pub reply_serial: Option<u32>,
    pub body: Vec<Value>,
}

/// A method call, its header fields in the order libdbus and jeepney write them.
pub fn method_call(
    serial: u32,
    destination: &str,
    path: &str,
    interface: &str,
    member: &str,
    body: &[Value],
) -> Vec<u8> {
    let mut b = Writer::default();
    for v in body {
        b.put(v);
    }
    let sig: String = body.iter().map(Value::signature).collect();
    let field =
        |code: u8, v: Value| Value::Struct(vec![Value::Byte(code), Value::Variant(Box::new(v))]);
    let mut fields = vec![
        field(1, Value::Path(path.into())),
        field(2, Value::str(interface)),
        field(3, Value::str(member)),
        field(6, Value::str(destination)),
    ];
    if !sig.is_empty() {
        fields.push(field(8, Value::Sig(sig)));
    }
    let mut h = Writer::default();
    h.buf.extend_from_slice(&[b'l', METHOD_CALL, 0, 1]);
    h.buf.extend_from_slice(&(b.buf.len() as u32).to_le_bytes());
    h.buf.extend_from_slice(&serial.to_le_bytes());
    h.put(&Value::Array("(yv)".into(), fields));
    h.pad(8);
    h.buf.extend_from_slice(&b.buf);
    h.buf
}

/// How many bytes the message starting at `buf` takes, once its first 16 bytes are in.
pub fn message_len(buf: &[u8]) -> Result<Option<usize>, WireError> {
    if buf.len() < 16 {
        return Ok(None);
    }
    if buf[0] != b'l' {
        return Err(WireError::BigEndian);
    }
    let u = |i: usize| u32::from_le_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]) as usize;
    let fields = 16 + u(12);
    Ok(Some(fields.div_ceil(8) * 8 + u(4)))
}

/// Parses one complete message.
pub fn parse(buf: &[u8]) -> Result<Message, WireError> {
    let total = message_len(buf)?.ok_or(WireError::Short(buf.len()))?;
    if buf.len() < total {
        return Err(WireError::Short(buf.len()));
    }
    let mut r = Reader::new(buf);
    let fixed = r.take(12)?;
    let kind = fixed[1];
    let body_len = u32::from_le_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]) as usize;
    let serial = u32::from_le_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]);
    let Some(Value::Array(_, fields)) = r.all("a(yv)")?.pop() else {
        return Err(WireError::Header("no header fields"));
    };
    let mut m = Message {
        kind,
        serial,
        ..Message::default()
    };
    let mut sig = String::new();
    for f in fields {
        let Value::Struct(mut kv) = f else { continue };
        let (Some(Value::Variant(v)), Some(Value::Byte(code))) = (kv.pop(), kv.pop()) else {
            continue;
        };
        let text = v.as_str().map(str::to_string);
        match code {
            1 => m.path = text,
            2 => m.interface = text,
            3 => m.member = text,
            4 => m.error_name = text,
            5 => m.reply_serial = v.as_u32(),
            8 => sig = text.unwrap_or_default(),
            _ => {}
        }
    }
    r.align(8)?;
    let start = r.pos;
    if start + body_len != total {
        return Err(WireError::Header("body length does not match"));
    }
    m.body = Reader::new(&buf[start..total]).all(&sig)?;
    Ok(m)
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
