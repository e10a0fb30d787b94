//! MoldUDP64: the re-request a client sends to the re-request port, and
//! the downstream datagram (what the re-request server answers with and
//! what `carbonx watch` reads).

use carbonx_feed::moldudp::{Datagram, HEADER_LEN, Header, MoldError, Packer, PacketKind, ReRequest};

/// Decodes `data` as a re-request and as a datagram; what decodes encodes
/// back to `data` (a datagram through the feed's own [`Packer`]).
pub fn moldudp_rerequest(data: &[u8]) {
    match ReRequest::decode(data) {
        Ok(request) => assert_eq!(request.encode(), data),
        Err(err) => assert_eq!(err, MoldError::WrongReRequestLength(data.len())),
    }
    if let Ok(datagram) = Datagram::decode(data) {
        let header = datagram.header();
        assert_eq!(header.encode(), data[..HEADER_LEN]);
        assert_eq!(datagram.messages().count(), usize::from(header.message_count()));
        assert_eq!(datagram.messages().map(|m| 2 + m.len()).sum::<usize>(), data.len() - HEADER_LEN);
        packs_back(datagram, data);
    }
}

/// The feed's packer, given the same session, number and messages, builds
/// the same datagram (when it fits one and its numbers do not overflow).
fn packs_back(datagram: Datagram<'_>, data: &[u8]) {
    let header = datagram.header();
    let count = u64::from(header.message_count());
    if header.sequence.checked_add(count).is_none() {
        return;
    }
    let mut packer = Packer::new(header.session, header.sequence);
    for message in datagram.messages() {
        if packer.push(message).is_err() {
            return;
        }
    }
    let packed = match header.kind() {
        PacketKind::Messages => packer.datagram().to_vec(),
        PacketKind::Heartbeat => packer.heartbeat().to_vec(),
        PacketKind::EndOfSession => packer.end_of_session().to_vec(),
    };
    assert_eq!(packed, data, "{header:?}");
    assert_eq!(Header::decode(&packed), Ok(header));
}
