//! Just enough of the protobuf wire format to read what log shippers post: OTLP/HTTP's
//! `ExportLogsServiceRequest` and Loki's `PushRequest`. Fields are read by number as the
//! schemas give them; unknown ones are skipped, as protobuf readers must.

/// Why a body is not the protobuf message it claims to be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("protobuf: truncated field")]
    Truncated,
    #[error("protobuf: varint longer than 10 bytes")]
    LongVarint,
    #[error("protobuf: unsupported wire type {0}")]
    WireType(u64),
    #[error("protobuf: messages nested deeper than {MAX_DEPTH}")]
    TooDeep,
}

/// Deepest nesting read (values inside values): a small body must not exhaust the stack.
pub const MAX_DEPTH: usize = 64;

/// One field's value as the wire carries it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

impl<'a> Wire<'a> {
    /// The value's bytes, for `bytes`, `string` and message fields.
    pub fn bytes(self) -> Option<&'a [u8]> {
        match self {
            Wire::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The value as a string field (invalid UTF-8 replaced).
    pub fn text(self) -> Option<String> {
        self.bytes().map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

/// The fields of one message, in wire order: `(field number, value)`.
pub struct Fields<'a> {
    rest: &'a [u8],
}

/// Reads the fields of the message in `bytes`.
pub fn fields(bytes: &[u8]) -> Fields<'_> {
    Fields { rest: bytes }
}

impl<'a> Fields<'a> {
    fn varint(&mut self) -> Result<u64, WireError> {
        let mut value = 0u64;
        for (i, &byte) in self.rest.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.rest = &self.rest[i + 1..];
                return Ok(value);
            }
        }
        Err(if self.rest.len() >= 10 {
            WireError::LongVarint
        } else {
            WireError::Truncated
        })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.rest.len() < n {
            return Err(WireError::Truncated);
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn field(&mut self) -> Result<(u32, Wire<'a>), WireError> {
        let key = self.varint()?;
        let number = (key >> 3) as u32;
        let value = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => Wire::Fixed64(u64::from_le_bytes(
                self.take(8)?.try_into().map_err(|_| WireError::Truncated)?,
            )),
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| WireError::Truncated)?;
                Wire::Bytes(self.take(len)?)
            }
            5 => Wire::Fixed32(u32::from_le_bytes(
                self.take(4)?.try_into().map_err(|_| WireError::Truncated)?,
            )),
            other => return Err(WireError::WireType(other)),
        };
        Ok((number, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Wire<'a>), WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let field = self.field();
        if field.is_err() {
            self.rest = &[];
        }
        Some(field)
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Writes a length-delimited field (`bytes`, `string`, a message).
pub fn put_bytes(out: &mut Vec<u8>, number: u32, value: &[u8]) {
    put_varint(out, u64::from(number) << 3 | 2);
    put_varint(out, value.len() as u64);
    out.extend_from_slice(value);
}

/// Writes a varint field.
pub fn put_uint(out: &mut Vec<u8>, number: u32, value: u64) {
    put_varint(out, u64::from(number) << 3);
    put_varint(out, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_wire_type_and_stops_at_bad_input() {
        let mut msg = Vec::new();
        put_uint(&mut msg, 1, 300);
        put_bytes(&mut msg, 2, b"hi");
        msg.push(3 << 3 | 1);
        msg.extend_from_slice(&7u64.to_le_bytes());
        msg.push(4 << 3 | 5);
        msg.extend_from_slice(&9u32.to_le_bytes());
        let got: Result<Vec<_>, _> = fields(&msg).collect();
        assert_eq!(
            got,
            Ok(vec![
                (1, Wire::Varint(300)),
                (2, Wire::Bytes(b"hi")),
                (3, Wire::Fixed64(7)),
                (4, Wire::Fixed32(9)),
            ])
        );
        // A length past the end, a group (wire type 3), a varint of 11 bytes.
        assert_eq!(
            fields(&[2 << 3 | 2, 5, b'a']).next(),
            Some(Err(WireError::Truncated))
        );
        assert_eq!(fields(&[3 << 3 | 3]).next(), Some(Err(WireError::WireType(3))));
        assert_eq!(
            fields(&[8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1]).next(),
            Some(Err(WireError::LongVarint))
        );
        let mut bad = fields(&[2 << 3 | 2, 5]);
        assert!(bad.next().is_some_and(|f| f.is_err()));
        assert!(bad.next().is_none(), "an error ends the fields");
    }
}
