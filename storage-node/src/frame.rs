//! Framing of a shard upload body.
//!
//! `[kind: u8][len: u32 BE][payload]` repeated: one `H` frame (JSON [`ShardHeader`]), any
//! number of `D` frames (shard bytes), one `E` frame (JSON [`EndFrame`]). The explicit end
//! frame is what makes a shard complete: a body that stops early, for any reason, is never
//! committed. Data payloads are passed on as slices of the received buffers, without copying.

use crate::error::StoreError;
use crate::types::ShardHeader;
use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};

/// The closing frame: the final header (the object length is known only at the end of a
/// streamed upload) and the shard length the sender sent.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EndFrame {
    /// Final header, stored with the shard.
    pub header: ShardHeader,
    /// Shard bytes sent; the node checks it received exactly this many.
    pub length: u64,
}

/// A decoded frame.
#[derive(Debug)]
pub enum Frame {
    /// Opening header.
    Header(ShardHeader),
    /// Shard bytes.
    Data(Bytes),
    /// Closing frame.
    End(EndFrame),
}

/// Largest header or end frame accepted.
const MAX_META: usize = 64 << 10;

/// Encodes the 5-byte prefix of a data frame of `len` bytes.
pub fn data_prefix(len: usize) -> Bytes {
    let mut b = Vec::with_capacity(5);
    b.push(b'D');
    b.extend_from_slice(&(len as u32).to_be_bytes());
    Bytes::from(b)
}

fn meta_frame(kind: u8, json: Vec<u8>) -> Bytes {
    let mut b = Vec::with_capacity(5 + json.len());
    b.push(kind);
    b.extend_from_slice(&(json.len() as u32).to_be_bytes());
    b.extend_from_slice(&json);
    Bytes::from(b)
}

/// Encodes a header frame.
pub fn header_frame(h: &ShardHeader) -> Bytes {
    meta_frame(b'H', serde_json::to_vec(h).expect("header serialises"))
}

/// Encodes an end frame.
pub fn end_frame(e: &EndFrame) -> Bytes {
    meta_frame(b'E', serde_json::to_vec(e).expect("end frame serialises"))
}

/// The complete upload of a shard held in memory: header, data and end frame, with
/// `header` as both the opening and the final header.
pub fn whole_shard(header: &ShardHeader, data: Bytes) -> [Bytes; 4] {
    let end = EndFrame {
        header: header.clone(),
        length: data.len() as u64,
    };
    [
        header_frame(header),
        data_prefix(data.len()),
        data,
        end_frame(&end),
    ]
}

/// Incremental decoder over received buffers.
#[derive(Default)]
pub struct FrameParser {
    pending: BytesMut,
    data_left: usize,
}

impl FrameParser {
    /// Feeds one received buffer; returns the frames (or frame parts, for data) it completes.
    pub fn push(&mut self, mut b: Bytes) -> Result<Vec<Frame>, StoreError> {
        let bad = |m: &str| StoreError::InvalidArgument(format!("shard upload framing: {m}"));
        let mut out = Vec::new();
        while !b.is_empty() {
            if self.data_left > 0 {
                let n = self.data_left.min(b.len());
                out.push(Frame::Data(b.split_to(n)));
                self.data_left -= n;
                continue;
            }
            if self.pending.len() < 5 {
                let n = (5 - self.pending.len()).min(b.len());
                self.pending.extend_from_slice(&b.split_to(n));
                if self.pending.len() < 5 {
                    break;
                }
            }
            let kind = self.pending[0];
            let len = u32::from_be_bytes(self.pending[1..5].try_into().unwrap()) as usize;
            if kind == b'D' {
                self.pending.clear();
                self.data_left = len;
                continue;
            }
            if len > MAX_META {
                return Err(bad("metadata frame too long"));
            }
            let n = (5 + len - self.pending.len()).min(b.len());
            self.pending.extend_from_slice(&b.split_to(n));
            if self.pending.len() < 5 + len {
                break;
            }
            let payload = &self.pending[5..];
            let frame = match kind {
                b'H' => {
                    Frame::Header(serde_json::from_slice(payload).map_err(|e| bad(&e.to_string()))?)
                }
                b'E' => {
                    Frame::End(serde_json::from_slice(payload).map_err(|e| bad(&e.to_string()))?)
                }
                _ => return Err(bad("unknown frame kind")),
            };
            self.pending.clear();
            out.push(frame);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_survive_any_split() {
        let h = crate::conformance::header(0, 1024);
        let mut wire = Vec::new();
        wire.extend_from_slice(&header_frame(&h));
        wire.extend_from_slice(&data_prefix(3));
        wire.extend_from_slice(b"abc");
        wire.extend_from_slice(&data_prefix(2));
        wire.extend_from_slice(b"de");
        wire.extend_from_slice(&end_frame(&EndFrame {
            header: h.clone(),
            length: 5,
        }));
        for step in [1, 2, 3, 7, 64, wire.len()] {
            let mut p = FrameParser::default();
            let mut data = Vec::new();
            let (mut headers, mut ends) = (0, 0);
            for part in wire.chunks(step) {
                for f in p.push(Bytes::copy_from_slice(part)).unwrap() {
                    match f {
                        Frame::Header(x) => {
                            assert_eq!(x, h);
                            headers += 1
                        }
                        Frame::Data(d) => data.extend_from_slice(&d),
                        Frame::End(e) => {
                            assert_eq!(e.length, 5);
                            ends += 1
                        }
                    }
                }
            }
            assert_eq!(
                (headers, ends, &data[..]),
                (1, 1, &b"abcde"[..]),
                "step {step}"
            );
        }
    }

    #[test]
    fn garbage_is_rejected() {
        let mut p = FrameParser::default();
        assert!(p.push(Bytes::from_static(b"X\0\0\0\x01a")).is_err());
        let mut p = FrameParser::default();
        assert!(p.push(Bytes::from_static(b"H\0\0\0\x02{]")).is_err());
    }
}
