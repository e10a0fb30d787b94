//! One user's sequenced stream for one trading day: what a reconnecting
//! client is replayed from. The stream is stored as ready-to-send
//! SoupBinTCP Sequenced Data packets, appended to a file in batches (one
//! write per batch), with only a bounded tail kept in memory; older
//! messages are read back from the file. A sparse index (one file offset
//! every [`INDEX_EVERY`] messages) finds a requested sequence number
//! without an entry per message.
//!
//! The file's content is not synced: it is rebuilt from the journal at
//! start-up (the journal, not this file, is what makes the stream
//! durable). Its name is, once, when it is created (its directory is
//! synced, [`crate::files::create_file`]).

use crate::files::{FileModes, StorageOp};
use bytes::{Bytes, BytesMut};
use std::fs::{File, OpenOptions};
use std::io::{IoSlice, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bytes of the newest packets kept in memory.
pub const TAIL_BYTES_MAX: usize = 1 << 20;
/// One index entry per this many messages.
pub const INDEX_EVERY: u64 = 256;
/// Packets per vectored write at most (Linux's `IOV_MAX`).
pub const IOV_MAX: usize = 1024;

const _: () = assert!(TAIL_BYTES_MAX >= 4 * 1024, "the tail must hold many packets");

/// A day log.
#[derive(Debug)]
pub struct DayLog {
    path: PathBuf,
    file: File,
    /// Sequence number of the next message appended.
    next_seq: u64,
    /// File length: the offset the next packet is written at.
    end: u64,
    /// File offset of message `1 + k * INDEX_EVERY` at index `k`.
    index: Vec<u64>,
    /// The newest packets, starting at file offset `tail_offset`.
    tail: Vec<u8>,
    tail_offset: u64,
    tail_seq: u64,
}

/// A reader's position in a log: the next message's number and file offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// Sequence number of the next message to send.
    pub seq: u64,
    /// Its packet's file offset.
    pub offset: u64,
}

impl DayLog {
    /// A new, empty log at `path` (an existing file is truncated: the
    /// stream is rebuilt from the journal); missing directories are
    /// created, and the directory of each new entry synced; new files and
    /// directories get `modes`.
    ///
    /// # Errors
    /// The file cannot be created.
    pub fn create(path: &Path, modes: FileModes) -> std::io::Result<DayLog> {
        let file = crate::files::create_file(
            path,
            OpenOptions::new().create(true).truncate(true).read(true).write(true),
            modes,
        )?;
        Ok(DayLog {
            path: path.to_path_buf(),
            file,
            next_seq: 1,
            end: 0,
            index: Vec::new(),
            tail: Vec::with_capacity(TAIL_BYTES_MAX),
            tail_offset: 0,
            tail_seq: 1,
        })
    }

    /// Where the log lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The sequence number the next message will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The cursor just past the last message: where a live reader starts.
    pub fn end(&self) -> Cursor {
        Cursor { seq: self.next_seq, offset: self.end }
    }

    /// Appends `count` packets (already framed, concatenated in `packets`)
    /// with one write.
    ///
    /// # Errors
    /// The write failed; the log is unchanged in memory.
    pub fn append(&mut self, packets: &[u8], count: u64) -> std::io::Result<()> {
        if count == 0 {
            return Ok(());
        }
        crate::files::check(StorageOp::Write, &self.path)
            .and_then(|()| self.file.write_all_at(packets, self.end))
            .map_err(|e| crate::files::named(&self.path, &e))?;
        self.index_and_keep(packets, count);
        Ok(())
    }

    /// Appends packets (one framed packet per [`Bytes`], shared with the
    /// other streams that carry the same message) with one vectored write
    /// per [`IOV_MAX`] packets at most.
    ///
    /// # Errors
    /// The write failed; the log is unchanged in memory.
    pub fn append_shared(&mut self, packets: &[Bytes]) -> std::io::Result<()> {
        self.write_shared(packets).map_err(|e| crate::files::named(&self.path, &e))
    }

    /// Writes every packet at the end, then indexes them all: a failure
    /// part-way leaves the log unchanged in memory (its next append writes
    /// over the bytes that did get out).
    fn write_shared(&mut self, packets: &[Bytes]) -> std::io::Result<()> {
        crate::files::check(StorageOp::Write, &self.path)?;
        let mut at = (&self.file).seek(SeekFrom::Start(self.end))?;
        for batch in packets.chunks(IOV_MAX) {
            let mut slices: Vec<IoSlice<'_>> = batch.iter().map(|p| IoSlice::new(p)).collect();
            let mut rest = &mut slices[..];
            while !rest.is_empty() {
                let written = (&self.file).write_vectored(rest)?;
                if written == 0 {
                    return Err(std::io::ErrorKind::WriteZero.into());
                }
                at += written as u64;
                IoSlice::advance_slices(&mut rest, written);
            }
        }
        debug_assert_eq!(at, self.end + packets.iter().map(|p| p.len() as u64).sum::<u64>());
        for packet in packets {
            self.index_and_keep(packet, 1);
        }
        Ok(())
    }

    /// Indexes `count` packets just written at the end and keeps them in the tail.
    fn index_and_keep(&mut self, packets: &[u8], count: u64) {
        let mut at = 0;
        for _ in 0..count {
            if (self.next_seq - 1) % INDEX_EVERY == 0 {
                self.index.push(self.end + at as u64);
            }
            at += packet_len(&packets[at..]);
            self.next_seq += 1;
        }
        debug_assert_eq!(at, packets.len(), "count does not match the packets");
        self.end += packets.len() as u64;
        self.push_tail(packets);
    }

    fn push_tail(&mut self, packets: &[u8]) {
        self.tail.extend_from_slice(packets);
        if self.tail.len() <= TAIL_BYTES_MAX {
            return;
        }
        // Drop whole packets from the front until half the limit remains.
        let mut cut = 0;
        while self.tail.len() - cut > TAIL_BYTES_MAX / 2 {
            cut += packet_len(&self.tail[cut..]);
            self.tail_seq += 1;
        }
        self.tail.drain(..cut);
        self.tail_offset += cut as u64;
    }

    /// The cursor for message `seq` (clamped to 1 ..= next).
    ///
    /// # Errors
    /// Reading the file failed.
    pub fn seek(&self, seq: u64) -> std::io::Result<Cursor> {
        let seq = seq.clamp(1, self.next_seq);
        if seq == self.next_seq {
            return Ok(self.end());
        }
        let k = ((seq - 1) / INDEX_EVERY) as usize;
        let mut cursor = Cursor { seq: 1 + k as u64 * INDEX_EVERY, offset: self.index[k] };
        let mut header = [0u8; 2];
        while cursor.seq < seq {
            self.read_at(&mut header, cursor.offset)?;
            cursor.offset += 2 + u64::from(u16::from_be_bytes(header));
            cursor.seq += 1;
        }
        Ok(cursor)
    }

    /// Copies whole packets from `cursor` into `out` (at most about
    /// `max_bytes`, at least one packet if any) and advances the cursor.
    ///
    /// # Errors
    /// Reading the file failed.
    pub fn read(&self, cursor: &mut Cursor, max_bytes: usize, out: &mut BytesMut) -> std::io::Result<()> {
        if cursor.seq >= self.next_seq {
            return Ok(());
        }
        let available = (self.end - cursor.offset) as usize;
        let want = available.min(max_bytes.max(1));
        let start = out.len();
        if cursor.offset >= self.tail_offset {
            let from = (cursor.offset - self.tail_offset) as usize;
            out.extend_from_slice(&self.tail[from..from + want]);
        } else {
            out.resize(start + want, 0);
            self.read_at(&mut out[start..], cursor.offset)?;
        }
        // Keep whole packets only (always at least one).
        let mut whole = 0;
        let mut count = 0;
        while start + whole + 2 <= out.len() {
            let len = packet_len(&out[start + whole..]);
            if start + whole + len > out.len() {
                break;
            }
            whole += len;
            count += 1;
        }
        if count == 0 {
            out.truncate(start);
            let len = self.packet_len_at(cursor.offset)?;
            out.resize(start + len, 0);
            self.read_at(&mut out[start..], cursor.offset)?;
            (whole, count) = (len, 1);
        }
        out.truncate(start + whole);
        cursor.offset += whole as u64;
        cursor.seq += count;
        Ok(())
    }

    fn packet_len_at(&self, offset: u64) -> std::io::Result<usize> {
        let mut header = [0u8; 2];
        self.read_at(&mut header, offset)?;
        Ok(2 + usize::from(u16::from_be_bytes(header)))
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let tail_end = self.tail_offset + self.tail.len() as u64;
        if offset >= self.tail_offset && offset + buf.len() as u64 <= tail_end {
            let from = (offset - self.tail_offset) as usize;
            buf.copy_from_slice(&self.tail[from..from + buf.len()]);
            return Ok(());
        }
        self.file.read_exact_at(buf, offset)
    }
}

/// Length of the packet at the start of `bytes`, length field included.
fn packet_len(bytes: &[u8]) -> usize {
    2 + usize::from(u16::from_be_bytes([bytes[0], bytes[1]]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{self as soup, Packet};

    fn message(n: u64) -> Vec<u8> {
        let mut packet = Vec::new();
        let text = format!("message {n} {}", "x".repeat((n % 50) as usize));
        Packet::Sequenced(text.as_bytes()).encode(&mut packet);
        packet
    }

    #[test]
    fn every_message_reads_back_from_the_tail_or_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = DayLog::create(&tmp.path().join("u.log"), FileModes::default()).unwrap();
        let total = 60_000u64; // about 3 MiB: well past the in-memory tail
        for batch in (1..=total).collect::<Vec<_>>().chunks(97) {
            let bytes: Vec<u8> = batch.iter().flat_map(|&n| message(n)).collect();
            log.append(&bytes, batch.len() as u64).unwrap();
        }
        assert!(log.tail.len() <= TAIL_BYTES_MAX && log.tail_seq > 1, "the tail did not roll");
        for start in [1, 2, 255, 256, 257, 10_000, total - 3, total, total + 1, total + 50] {
            let mut cursor = log.seek(start).unwrap();
            let mut out = BytesMut::new();
            let mut expected = start.min(total + 1);
            while cursor.seq <= total && expected < start + 2_000 {
                out.clear();
                log.read(&mut cursor, 1_500, &mut out).unwrap();
                let mut rest = &out[..];
                while let Some((packet, used)) = soup::next_packet(rest).unwrap() {
                    assert_eq!(packet, Packet::Sequenced(&message(expected)[3..]), "from {start}");
                    expected += 1;
                    rest = &rest[used..];
                }
                assert!(rest.is_empty());
                assert_eq!(cursor.seq, expected);
            }
        }
        let end = log.end();
        let mut cursor = end;
        let mut out = BytesMut::new();
        log.read(&mut cursor, 1_000, &mut out).unwrap();
        assert!(out.is_empty() && cursor == end);
    }

    #[test]
    fn a_new_day_log_syncs_its_new_directory_and_its_name() {
        let tmp = tempfile::tempdir().unwrap();
        let before = crate::files::dir_syncs_on_this_thread();
        DayLog::create(&tmp.path().join("20261124").join("DEMO01.ouch"), FileModes::default()).unwrap();
        // `20261124` in the temp dir, the log in `20261124`.
        assert_eq!(crate::files::dir_syncs_on_this_thread() - before, 2);
    }
}
