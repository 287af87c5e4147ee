//! Primitive field encoding shared by every frame: big-endian integers, booleans, optional
//! integers, length-prefixed UTF-8 strings and counted lists. The [`Reader`] checks every
//! length against the bytes actually present before copying anything, so a peer can never make
//! us allocate more than the frame it already sent (which is itself bounded by the maximum
//! frame size).

use super::FrameError;

/// Longest string any field may carry (ids, addresses, reasons).
pub(crate) const MAX_STRING: usize = 1024;
/// Most entries any list may carry (members of a pool: 4 active + 4 standby, with headroom).
pub(crate) const MAX_LIST: usize = 64;

/// Reads fields from one frame payload.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], FrameError> {
        if self.buf.len() < n {
            return Err(FrameError::Truncated(what));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], FrameError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, FrameError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub fn u16(&mut self, what: &'static str) -> Result<u16, FrameError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, FrameError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    pub fn u64(&mut self, what: &'static str) -> Result<u64, FrameError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    pub fn bool(&mut self, what: &'static str) -> Result<bool, FrameError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(FrameError::BadValue {
                field: what,
                value: u64::from(v),
            }),
        }
    }

    /// A flag byte (0 absent, 1 present) followed, when present, by a `u64`.
    pub fn opt_u64(&mut self, what: &'static str) -> Result<Option<u64>, FrameError> {
        if self.bool(what)? {
            Ok(Some(self.u64(what)?))
        } else {
            Ok(None)
        }
    }

    /// A `u16` byte length followed by that many bytes of UTF-8.
    pub fn string(&mut self, what: &'static str) -> Result<String, FrameError> {
        let len = usize::from(self.u16(what)?);
        if len > MAX_STRING {
            return Err(FrameError::StringTooLong {
                field: what,
                len,
                max: MAX_STRING,
            });
        }
        let bytes = self.take(len, what)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| FrameError::BadUtf8(what))
    }

    /// A `u16` entry count, checked against [`MAX_LIST`] and against the bytes left (every
    /// entry takes at least `min_entry` bytes), so the caller may reserve that many entries.
    pub fn count(&mut self, what: &'static str, min_entry: usize) -> Result<usize, FrameError> {
        let count = usize::from(self.u16(what)?);
        if count > MAX_LIST {
            return Err(FrameError::TooMany {
                field: what,
                count,
                max: MAX_LIST,
            });
        }
        if count.saturating_mul(min_entry.max(1)) > self.buf.len() {
            return Err(FrameError::Truncated(what));
        }
        Ok(count)
    }

    /// A `u32` entry count for lists that may be long (recipients of a room event), bounded
    /// only by the bytes left: every entry takes at least `min_entry` bytes.
    pub fn count32(&mut self, what: &'static str, min_entry: usize) -> Result<usize, FrameError> {
        let count = usize::try_from(self.u32(what)?).map_err(|_| FrameError::Truncated(what))?;
        if count.saturating_mul(min_entry.max(1)) > self.buf.len() {
            return Err(FrameError::Truncated(what));
        }
        Ok(count)
    }

    /// A `u32` byte length followed by that many opaque bytes (copied once into `Bytes`).
    pub fn bytes(&mut self, what: &'static str) -> Result<bytes::Bytes, FrameError> {
        let len = usize::try_from(self.u32(what)?).map_err(|_| FrameError::Truncated(what))?;
        Ok(bytes::Bytes::copy_from_slice(self.take(len, what)?))
    }

    /// Fails unless every byte was consumed.
    pub fn finish(self) -> Result<(), FrameError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(FrameError::Trailing(self.buf.len()))
        }
    }
}

/// Appends fields to a frame being encoded.
pub(crate) struct Writer<'a> {
    pub out: &'a mut Vec<u8>,
}

impl Writer<'_> {
    pub fn u8(&mut self, v: u8) {
        self.out.push(v);
    }

    pub fn u16(&mut self, v: u16) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    pub fn u32(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    pub fn bool(&mut self, v: bool) {
        self.out.push(u8::from(v));
    }

    pub fn opt_u64(&mut self, v: Option<u64>) {
        self.bool(v.is_some());
        if let Some(v) = v {
            self.u64(v);
        }
    }

    pub fn string(&mut self, what: &'static str, s: &str) -> Result<(), FrameError> {
        if s.len() > MAX_STRING {
            return Err(FrameError::StringTooLong {
                field: what,
                len: s.len(),
                max: MAX_STRING,
            });
        }
        // MAX_STRING < u16::MAX, so the cast is lossless.
        self.u16(s.len() as u16);
        self.out.extend_from_slice(s.as_bytes());
        Ok(())
    }

    pub fn count(&mut self, what: &'static str, n: usize) -> Result<(), FrameError> {
        if n > MAX_LIST {
            return Err(FrameError::TooMany {
                field: what,
                count: n,
                max: MAX_LIST,
            });
        }
        self.u16(n as u16);
        Ok(())
    }

    pub fn count32(&mut self, what: &'static str, n: usize) -> Result<(), FrameError> {
        let n = u32::try_from(n).map_err(|_| FrameError::TooMany {
            field: what,
            count: n,
            max: u32::MAX as usize,
        })?;
        self.u32(n);
        Ok(())
    }

    pub fn bytes(&mut self, what: &'static str, b: &[u8]) -> Result<(), FrameError> {
        let len = u32::try_from(b.len()).map_err(|_| FrameError::Oversized {
            len: b.len(),
            max: u32::MAX as usize,
        })?;
        let _ = what;
        self.u32(len);
        self.out.extend_from_slice(b);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_check_length_before_copying() {
        // Claims 1000 bytes, holds 3.
        let mut r = Reader::new(&[0x03, 0xe8, b'a', b'b', b'c']);
        assert_eq!(r.string("s"), Err(FrameError::Truncated("s")));
        let mut r = Reader::new(&[0xff, 0xff]);
        assert!(matches!(
            r.string("s"),
            Err(FrameError::StringTooLong { len: 65535, .. })
        ));
        let mut r = Reader::new(&[0x00, 0x02, 0xff, 0xfe]);
        assert_eq!(r.string("s"), Err(FrameError::BadUtf8("s")));
    }

    #[test]
    fn counts_are_bounded_by_remaining_bytes() {
        let mut r = Reader::new(&[0x00, 0x40, 0, 0]);
        assert_eq!(r.count("l", 8), Err(FrameError::Truncated("l")));
        let mut r = Reader::new(&[0x10, 0x00]);
        assert!(matches!(r.count("l", 1), Err(FrameError::TooMany { .. })));
    }

    #[test]
    fn round_trip_primitives() {
        let mut out = Vec::new();
        let mut w = Writer { out: &mut out };
        w.u8(7);
        w.u16(513);
        w.u32(70000);
        w.u64(u64::MAX - 1);
        w.bool(true);
        w.opt_u64(None);
        w.opt_u64(Some(9));
        w.string("s", "héllo").expect("short");
        let mut r = Reader::new(&out);
        assert_eq!(r.u8("a"), Ok(7));
        assert_eq!(r.u16("a"), Ok(513));
        assert_eq!(r.u32("a"), Ok(70000));
        assert_eq!(r.u64("a"), Ok(u64::MAX - 1));
        assert_eq!(r.bool("a"), Ok(true));
        assert_eq!(r.opt_u64("a"), Ok(None));
        assert_eq!(r.opt_u64("a"), Ok(Some(9)));
        assert_eq!(r.string("a").as_deref(), Ok("héllo"));
        assert_eq!(r.finish(), Ok(()));
    }
}
