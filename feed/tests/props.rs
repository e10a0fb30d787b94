//! Property tests: decoding arbitrary bytes never panics; encode and decode
//! are inverse; the packer never loses, reorders or renumbers a message.

mod common;

use carbonx_feed::itch::{EndOfSnapshot, MESSAGE_LEN_MAX, MESSAGE_TYPES, Message};
use carbonx_feed::moldudp::{DATAGRAM_MAX, Datagram, Header, PackError, Packer, ReRequest};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

/// Arbitrary bytes, half of them starting with a known type byte so that
/// the per-type decoders are reached, with lengths around the real ones.
fn arbitrary_message_bytes() -> impl Strategy<Value = Vec<u8>> {
    let types: Vec<u8> = MESSAGE_TYPES.iter().map(|&(kind, _)| kind).collect();
    prop_oneof![
        vec(any::<u8>(), 0..64),
        (select(types), vec(any::<u8>(), 0..MESSAGE_LEN_MAX + 4)).prop_map(|(kind, mut rest)| {
            rest.insert(0, kind);
            rest
        }),
    ]
}

/// Well-formed standard messages: a known type byte (not `G`) and exactly
/// its length of arbitrary bytes.
fn standard_message_bytes() -> impl Strategy<Value = Vec<u8>> {
    select(MESSAGE_TYPES[..11].to_vec()).prop_flat_map(|(kind, len)| {
        vec(any::<u8>(), len - 1).prop_map(move |mut rest| {
            rest.insert(0, kind);
            rest
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in arbitrary_message_bytes()) {
        if let Ok(m) = Message::decode(&bytes) {
            prop_assert_eq!(m.wire_len(), bytes.len());
            prop_assert_eq!(m.message_type(), bytes[0]);
        }
    }

    #[test]
    fn every_standard_message_re_encodes_to_its_bytes(bytes in standard_message_bytes()) {
        let m = Message::decode(&bytes).expect("well-formed standard message");
        let mut buf = [0u8; MESSAGE_LEN_MAX];
        let len = m.encode(&mut buf);
        prop_assert_eq!(&buf[..len], bytes.as_slice());
        prop_assert_eq!(Message::decode(&buf[..len]), Ok(m));
    }

    #[test]
    fn end_of_snapshot_round_trips(sequence in any::<u64>()) {
        let m = Message::from(EndOfSnapshot { sequence });
        let bytes = common::encoded(&m);
        prop_assert_eq!(Message::decode(&bytes), Ok(m));
        // right-justified, space-padded decimal
        let text = std::str::from_utf8(&bytes[1..]).unwrap();
        prop_assert_eq!(text, format!("{sequence:>20}"));
    }

    #[test]
    fn decoding_arbitrary_datagrams_never_panics(bytes in vec(any::<u8>(), 0..160)) {
        if let Ok(d) = Datagram::decode(&bytes) {
            let total: usize = d.messages().map(|m| 2 + m.len()).sum();
            prop_assert_eq!(20 + total, bytes.len());
            prop_assert_eq!(d.messages().count(), usize::from(d.header().message_count()));
        }
        let _ = Header::decode(&bytes);
        let _ = ReRequest::decode(&bytes);
    }

    #[test]
    fn decoding_datagrams_with_plausible_blocks_never_panics(
        count in any::<u16>(),
        blocks in vec((0u16..60, vec(any::<u8>(), 0..50)), 0..12),
    ) {
        let mut bytes = b"CX20250102".to_vec();
        bytes.extend_from_slice(&7u64.to_be_bytes());
        bytes.extend_from_slice(&count.to_be_bytes());
        for (len, body) in &blocks {
            bytes.extend_from_slice(&len.to_be_bytes());
            bytes.extend_from_slice(body);
        }
        if let Ok(d) = Datagram::decode(&bytes) {
            for m in d.messages() {
                let _ = Message::decode(m);
            }
        }
    }

    #[test]
    fn re_request_round_trips(session in any::<[u8; 10]>(), sequence in any::<u64>(), count in any::<u16>()) {
        let request = ReRequest { session, sequence, count };
        prop_assert_eq!(ReRequest::decode(&request.encode()), Ok(request));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn packer_keeps_every_message_in_order(
        first in 1u64..1_000_000,
        lengths in vec(0usize..300, 0..120),
    ) {
        let messages: Vec<Vec<u8>> = lengths
            .iter()
            .enumerate()
            .map(|(i, &len)| vec![i as u8; len])
            .collect();
        let mut packer = Packer::new(*b"CX20250102", first);
        let mut datagrams: Vec<Vec<u8>> = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            let sequence = match packer.push(m) {
                Ok(sequence) => sequence,
                Err(PackError::Full) => {
                    prop_assert!(!packer.is_empty(), "an empty datagram fits any short message");
                    datagrams.push(packer.datagram().to_vec());
                    packer.clear();
                    packer.push(m).expect("fits an empty datagram")
                }
                Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
            };
            prop_assert_eq!(sequence, first + i as u64);
        }
        if !packer.is_empty() {
            datagrams.push(packer.datagram().to_vec());
        }
        let mut expected = first;
        let mut received: Vec<&[u8]> = Vec::new();
        for bytes in &datagrams {
            prop_assert!(bytes.len() <= DATAGRAM_MAX);
            let d = Datagram::decode(bytes).unwrap();
            prop_assert_eq!(d.header().sequence, expected);
            expected += u64::from(d.header().count);
            let theirs = moldudp::Packet::new(bytes);
            prop_assert_eq!(theirs.iter().len(), usize::from(theirs.msg_count()));
            prop_assert_eq!(theirs.seq_num(), d.header().sequence);
            received.extend(d.messages());
        }
        prop_assert_eq!(expected, first + messages.len() as u64);
        prop_assert_eq!(packer.next_sequence(), expected);
        let sent: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        prop_assert_eq!(received, sent);
    }
}
