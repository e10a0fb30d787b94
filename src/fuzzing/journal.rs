//! Journal records, as recovery and `carbonx replay` read them.

use super::{byte, take};
use carbonx_engine::journal::{self, JournalError};

/// The first byte picks what the rest is: raw journal bytes, or command
/// bodies that this function frames with a length and a correct checksum
/// (so that the fuzzer reaches the command decoders behind the CRC).
/// Every record that decodes encodes to bytes that decode to it again.
pub fn journal_record(data: &[u8]) {
    let mut data = data;
    let bytes = if byte(&mut data) % 2 == 0 { data.to_vec() } else { frame_commands(data) };
    let mut rest = &bytes[..];
    loop {
        match journal::decode(rest) {
            Ok(Some((record, used))) => {
                let mut again = Vec::new();
                let len = journal::encode(&record, &mut again);
                assert_eq!(journal::decode(&again), Ok(Some((record, len))));
                // The older, shorter layouts of a new order, a replace and
                // a reject are read and written in today's layout.
                if len == used {
                    assert_eq!(again, rest[..used]);
                }
                rest = &rest[used..];
            }
            Ok(None) => break,
            Err(JournalError::BadLength(_) | JournalError::BadChecksum { .. }) => break,
            Err(JournalError::UnknownTag(_) | JournalError::Malformed(_)) => break,
        }
    }
}

/// Each command is a length byte and that many bytes: framed as one
/// record (length, sequence number, timestamp, command, CRC32C).
fn frame_commands(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut seq = 1u64;
    while !data.is_empty() {
        let len = usize::from(byte(&mut data) % 72);
        let command = take(&mut data, len);
        let mut body = Vec::with_capacity(16 + command.len() + 4);
        body.extend_from_slice(&seq.to_be_bytes());
        body.extend_from_slice(&(seq * 1_000).to_be_bytes());
        body.extend_from_slice(command);
        body.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        out.extend_from_slice(&u32::try_from(body.len()).expect("short").to_be_bytes());
        out.extend_from_slice(&body);
        seq += 1;
    }
    out
}
