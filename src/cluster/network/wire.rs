//! The wire format: each message is a frame `[u32 LE length][postcard
//! body]`, a [`RaftRequest`] one way and a [`RaftReply`] the other.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};

use crate::cluster::{NodeId, TypeConfig};

/// The largest frame body either side accepts or sends. openraft sends
/// snapshots in chunks of 3 MiB by default and append-entries batches are
/// bounded by `max_payload_entries`, so 64 MiB is generous for a legitimate
/// peer while keeping a corrupt or hostile length from costing gigabytes.
pub const MAX_FRAME_LEN: u32 = 64 << 20;

/// The first read buffer for a frame body: the buffer grows only as bytes
/// arrive, so a peer's claimed length is never allocated up front.
const INITIAL_BODY_CAPACITY: usize = 64 << 10;

/// A request from a Raft node to a peer.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub enum RaftRequest {
    /// Replicate log entries (or heartbeat).
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    /// Ask for a vote.
    Vote(VoteRequest<NodeId>),
    /// One chunk of a snapshot.
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
}

/// The peer's answer to a [`RaftRequest`], of the same variant.
#[derive(Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RaftReply {
    /// Answer to [`RaftRequest::AppendEntries`].
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    /// Answer to [`RaftRequest::Vote`].
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    /// Answer to [`RaftRequest::InstallSnapshot`].
    InstallSnapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
}

/// Why a frame could not be read or written. Every variant ends the
/// connection: after any of them the byte stream's framing is unknown.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The length prefix (or the encoded message) is above [`MAX_FRAME_LEN`].
    #[error("frame of {0} bytes exceeds the bound of {MAX_FRAME_LEN} bytes")]
    TooLarge(u64),
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame: {got} of {expected} bytes")]
    Truncated {
        /// Bytes the frame needed (header or body).
        expected: usize,
        /// Bytes that arrived before the end.
        got: usize,
    },
    /// The body is not a valid postcard message of the expected type.
    #[error("frame does not decode: {0}")]
    Codec(#[from] postcard::Error),
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Encodes `msg` as one frame (header and body in one buffer, so that it
/// goes out in one write).
pub fn encode_frame<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let mut buf = postcard::to_extend(msg, vec![0u8; 4])?;
    let body_len = buf.len() - 4;
    let len =
        u32::try_from(body_len).ok().filter(|&n| n <= MAX_FRAME_LEN).ok_or(FrameError::TooLarge(body_len as u64))?;
    buf[..4].copy_from_slice(&len.to_le_bytes());
    Ok(buf)
}

/// Writes `msg` as one frame.
pub async fn write_frame<W, T>(writer: &mut W, msg: &T) -> Result<(), FrameError>
where
    W: AsyncWrite + Unpin,
    T: Serialize,
{
    let frame = encode_frame(msg)?;
    writer.write_all(&frame).await?;
    writer.flush().await?;
    Ok(())
}

/// Reads one frame and decodes it. `Ok(None)` is a clean end of stream
/// between frames (the peer closed); an end inside a frame is
/// [`FrameError::Truncated`].
pub async fn read_frame<R, T>(reader: &mut R) -> Result<Option<T>, FrameError>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    let mut header = [0u8; 4];
    let got = read_full(reader, &mut header).await?;
    if got == 0 {
        return Ok(None);
    }
    if got < header.len() {
        return Err(FrameError::Truncated { expected: header.len(), got });
    }
    let len = body_len(header)?;
    let mut body = Vec::with_capacity(len.min(INITIAL_BODY_CAPACITY));
    reader.take(len as u64).read_to_end(&mut body).await?;
    if body.len() < len {
        return Err(FrameError::Truncated { expected: len, got: body.len() });
    }
    Ok(Some(postcard::from_bytes(&body)?))
}

/// The body length a header announces, checked against [`MAX_FRAME_LEN`]
/// before anything is allocated for it.
fn body_len(header: [u8; 4]) -> Result<usize, FrameError> {
    let len = u32::from_le_bytes(header);
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(u64::from(len)));
    }
    // `MAX_FRAME_LEN` fits every supported target's `usize`.
    Ok(len as usize)
}

/// Reads until `buf` is full or the stream ends; returns the bytes read
/// (unlike `read_exact`, this tells a clean end from a truncated header).
async fn read_full<R: AsyncRead + Unpin>(reader: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        let n = reader.read(&mut buf[got..]).await?;
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    use openraft::Vote;
    use openraft::error::Fatal;

    use super::*;
    use crate::cluster::network::tests::{
        all_payloads, append_request, log_id, mismatch, snapshot_request, storage_fatal, vote_request,
    };

    fn roundtrip<T: Serialize + DeserializeOwned>(msg: &T) -> T {
        let frame = encode_frame(msg).expect("encodes");
        let mut reader: &[u8] = &frame;
        let decoded = block_on(read_frame(&mut reader)).expect("decodes").expect("one frame");
        assert!(reader.is_empty(), "the frame's length covers exactly its body");
        decoded
    }

    /// Runs a future on a throwaway current-thread runtime (the codec tests
    /// read from byte slices, which never wait).
    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(f)
    }

    #[test]
    fn append_entries_request_roundtrips_every_payload_kind() {
        let req = append_request(3, all_payloads());
        let RaftRequest::AppendEntries(back) = roundtrip(&RaftRequest::AppendEntries(req.clone())) else {
            panic!("variant changed");
        };
        assert_eq!(back.vote, req.vote);
        assert_eq!(back.prev_log_id, req.prev_log_id);
        assert_eq!(back.leader_commit, req.leader_commit);
        assert_eq!(back.entries, req.entries);
    }

    #[test]
    fn vote_request_roundtrips() {
        let RaftRequest::Vote(back) = roundtrip(&RaftRequest::Vote(vote_request())) else {
            panic!("variant changed");
        };
        assert_eq!(back, vote_request());
    }

    #[test]
    fn install_snapshot_request_roundtrips() {
        let RaftRequest::InstallSnapshot(back) = roundtrip(&RaftRequest::InstallSnapshot(snapshot_request(42))) else {
            panic!("variant changed");
        };
        assert_eq!(back, snapshot_request(42));
    }

    #[test]
    fn append_entries_replies_roundtrip_including_errors() {
        let replies = [
            Ok(AppendEntriesResponse::Success),
            Ok(AppendEntriesResponse::PartialSuccess(Some(log_id(3, 8)))),
            Ok(AppendEntriesResponse::PartialSuccess(None)),
            Ok(AppendEntriesResponse::Conflict),
            Ok(AppendEntriesResponse::HigherVote(Vote::new(5, 3))),
            Err(RaftError::Fatal(storage_fatal())),
            Err(RaftError::Fatal(Fatal::Stopped)),
            Err(RaftError::Fatal(Fatal::Panicked)),
        ];
        for r in replies {
            let reply = RaftReply::AppendEntries(r);
            assert_eq!(roundtrip(&reply), reply);
        }
    }

    #[test]
    fn vote_replies_roundtrip_including_errors() {
        let granted = VoteResponse { vote: Vote::new(4, 2), vote_granted: true, last_log_id: Some(log_id(3, 9)) };
        let refused = VoteResponse { vote: Vote::new_committed(5, 3), vote_granted: false, last_log_id: None };
        for r in [Ok(granted), Ok(refused), Err(RaftError::Fatal(storage_fatal()))] {
            let reply = RaftReply::Vote(r);
            assert_eq!(roundtrip(&reply), reply);
        }
    }

    #[test]
    fn install_snapshot_replies_roundtrip_including_errors() {
        let replies = [
            Ok(InstallSnapshotResponse { vote: Vote::new_committed(3, 1) }),
            Err(RaftError::APIError(mismatch("3-9-17", 4096))),
            Err(RaftError::Fatal(storage_fatal())),
        ];
        for r in replies {
            let reply = RaftReply::InstallSnapshot(r);
            assert_eq!(roundtrip(&reply), reply);
        }
    }

    #[test]
    fn frame_is_little_endian_length_then_postcard_body() {
        let req = RaftRequest::Vote(vote_request());
        let frame = encode_frame(&req).expect("encodes");
        let body = postcard::to_allocvec(&req).expect("encodes");
        assert_eq!(frame[..4], (body.len() as u32).to_le_bytes());
        assert_eq!(frame[4..], body[..]);
    }

    #[test]
    fn length_bound_is_inclusive() {
        assert_eq!(body_len(MAX_FRAME_LEN.to_le_bytes()).expect("at the bound"), MAX_FRAME_LEN as usize);
        let over = MAX_FRAME_LEN + 1;
        assert!(matches!(body_len(over.to_le_bytes()), Err(FrameError::TooLarge(n)) if n == u64::from(over)));
    }

    #[test]
    fn oversized_length_is_rejected_before_reading_the_body() {
        let mut bytes = u32::MAX.to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0; 8]);
        let mut reader: &[u8] = &bytes;
        let got = block_on(read_frame::<_, RaftRequest>(&mut reader));
        assert!(matches!(got, Err(FrameError::TooLarge(n)) if n == u64::from(u32::MAX)), "{got:?}");
        assert_eq!(reader.len(), 8, "nothing past the header is read");
    }

    #[test]
    fn truncated_frames_are_errors() {
        let frame = encode_frame(&RaftRequest::Vote(vote_request())).expect("encodes");
        for cut in [1, 3, 4, frame.len() - 1] {
            let mut reader: &[u8] = &frame[..cut];
            let got = block_on(read_frame::<_, RaftRequest>(&mut reader));
            assert!(matches!(got, Err(FrameError::Truncated { .. })), "cut at {cut}: {got:?}");
        }
        let mut empty: &[u8] = &[];
        let got = block_on(read_frame::<_, RaftRequest>(&mut empty));
        assert!(matches!(got, Ok(None)), "a clean end between frames: {got:?}");
    }

    #[test]
    fn a_long_claim_with_a_short_body_is_truncated_not_allocated() {
        // 60 MiB claimed, 10 bytes sent: an error, after buffering only what came.
        let mut bytes = (60u32 << 20).to_le_bytes().to_vec();
        bytes.extend_from_slice(&[7; 10]);
        let mut reader: &[u8] = &bytes;
        let got = block_on(read_frame::<_, RaftRequest>(&mut reader));
        assert!(matches!(got, Err(FrameError::Truncated { expected, got: 10 }) if expected == 60 << 20), "{got:?}");
    }

    #[test]
    fn garbage_body_is_a_codec_error() {
        for body in [&[0xff_u8, 0xff, 0xff][..], &[200], &[1, 0xff]] {
            let mut bytes = (body.len() as u32).to_le_bytes().to_vec();
            bytes.extend_from_slice(body);
            let mut reader: &[u8] = &bytes;
            let got = block_on(read_frame::<_, RaftRequest>(&mut reader));
            assert!(matches!(got, Err(FrameError::Codec(_))), "{body:?}: {got:?}");
        }
    }
}
