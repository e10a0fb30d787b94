//! The frame format, `[u32 LE body length][u32 LE crc32c of the body][body:
//! postcard]`, and the one-frame files: `vote` and `purged`, replaced
//! atomically ([`write_small`]), and the `committed` hint ([`write_hint`]).

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use carbonx_soup::files::{self, FileModes, StorageOp};
use openraft::LogId;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cluster::NodeId;

/// A frame's header: body length and crc32c, both `u32` LE.
pub(super) const HEADER: u64 = 8;

/// Why a frame cannot be read: at the end of `log`, a torn tail.
#[derive(Debug, thiserror::Error)]
pub(super) enum FrameError {
    /// Fewer bytes left than a header.
    #[error("{left} bytes left, fewer than a frame header")]
    ShortHeader {
        /// Bytes left in the file.
        left: u64,
    },
    /// The header announces more bytes than are left.
    #[error("a {len}-byte body announced, {left} bytes left")]
    ShortBody {
        /// The announced body length.
        len: u64,
        /// Bytes left after the header.
        left: u64,
    },
    /// The body's checksum does not match the header's.
    #[error("body checksum {found:08x}, header says {expected:08x}")]
    Checksum {
        /// The header's.
        expected: u32,
        /// The body's.
        found: u32,
    },
    /// The body is not the postcard of what was expected.
    #[error("undecodable body: {0}")]
    Decode(#[from] postcard::Error),
    /// More than one frame where one was expected.
    #[error("{0} bytes after the frame")]
    Trailing(u64),
}

impl From<FrameError> for io::Error {
    fn from(err: FrameError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, err)
    }
}

/// Appends `value`'s frame to `out`.
///
/// # Errors
/// `value` cannot be encoded, or its body is over 4 GiB.
pub(super) fn encode_frame<T: Serialize>(value: &T, out: &mut Vec<u8>) -> io::Result<()> {
    let body = postcard::to_allocvec(value).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let len = u32::try_from(body.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a frame body over 4 GiB"))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(())
}

/// What [`read_frame`] found.
pub(super) enum Frame {
    /// The clean end of the file.
    End,
    /// A checked body.
    Body(Vec<u8>),
    /// A torn or corrupt frame: the log ends before it.
    Torn(FrameError),
}

/// Reads the next frame from `reader`, which has `left` bytes left.
///
/// # Errors
/// Reading failed (a torn frame is not an error: [`Frame::Torn`]).
pub(super) fn read_frame(reader: &mut impl Read, left: u64) -> io::Result<Frame> {
    if left == 0 {
        return Ok(Frame::End);
    }
    if left < HEADER {
        return Ok(Frame::Torn(FrameError::ShortHeader { left }));
    }
    let mut header = [0; HEADER as usize];
    reader.read_exact(&mut header)?;
    let [l0, l1, l2, l3, c0, c1, c2, c3] = header;
    let len = u64::from(u32::from_le_bytes([l0, l1, l2, l3]));
    let expected = u32::from_le_bytes([c0, c1, c2, c3]);
    if len > left - HEADER {
        return Ok(Frame::Torn(FrameError::ShortBody { len, left: left - HEADER }));
    }
    let mut body = vec![0; usize::try_from(len).map_err(io::Error::other)?];
    reader.read_exact(&mut body)?;
    let found = crc32c::crc32c(&body);
    if found != expected {
        return Ok(Frame::Torn(FrameError::Checksum { expected, found }));
    }
    Ok(Frame::Body(body))
}

/// Decodes `bytes`, which must be exactly one frame.
fn decode_single<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FrameError> {
    let left = bytes.len() as u64;
    let mut reader = bytes;
    let body = match read_frame(&mut reader, left) {
        Ok(Frame::Body(body)) => body,
        Ok(Frame::Torn(err)) => return Err(err),
        // A slice has its `left` bytes: the end or a short read cannot be.
        Ok(Frame::End) | Err(_) => return Err(FrameError::ShortHeader { left }),
    };
    if !reader.is_empty() {
        return Err(FrameError::Trailing(reader.len() as u64));
    }
    Ok(postcard::from_bytes(&body)?)
}

/// Reads a one-frame file: `None` if it does not exist.
///
/// # Errors
/// It cannot be read, or is not one good frame (the error names it).
pub(in crate::cluster) fn read_small<T: DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(files::named(path, &err)),
    };
    decode_single(&bytes).map(Some).map_err(|e| files::named(path, &e.into()))
}

/// Replaces `path` with `value`'s frame ([`files::write_atomically`]).
///
/// # Errors
/// Encoding, writing or syncing failed.
pub(in crate::cluster) fn write_small<T: Serialize>(path: &Path, value: &T, modes: FileModes) -> io::Result<()> {
    let mut bytes = Vec::new();
    encode_frame(value, &mut bytes)?;
    files::write_atomically(path, &bytes, modes)
}

/// Replaces `path` with `value`'s frame by a rename, without syncing:
/// after a power cut it holds the old value, the new one, or nothing.
pub(super) fn write_hint<T: Serialize>(path: &Path, value: &T, modes: FileModes) -> io::Result<()> {
    let mut bytes = Vec::new();
    encode_frame(value, &mut bytes)?;
    let tmp = files::temporary_path(path);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(modes.file)
        .open(&tmp)
        .map_err(|e| files::named(&tmp, &e))?;
    files::check(StorageOp::Write, &tmp).and_then(|()| file.write_all(&bytes)).map_err(|e| files::named(&tmp, &e))?;
    std::fs::rename(&tmp, path).map_err(|e| files::named(path, &e))
}

/// The committed hint ([`write_hint`]); unreadable or torn, none: Raft
/// then learns the commit index from the leader again.
pub(super) fn read_hint(path: &Path) -> Option<LogId<NodeId>> {
    read_small::<Option<LogId<NodeId>>>(path)
        .unwrap_or_else(|err| {
            tracing::warn!(%err, "committed index hint not read; learned from the leader again");
            None
        })
        .flatten()
}
