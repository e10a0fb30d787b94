//! OUCH 4.2 inbound messages, the carbon extensions `b`, `p` and `a` included.

use carbonx_gateway::ouch::{AuctionBid, CancelOrder};
use carbonx_gateway::ouch::{EnterBlock, EnterOrder, Inbound, OuchError, PickOrder, ReplaceOrder};

/// Decodes `data` as one inbound message: it decodes exactly when its type
/// is known and its length that type's, and then encodes back to `data`.
pub fn ouch_inbound(data: &[u8]) {
    match Inbound::decode(data) {
        Ok(message) => {
            let mut again = Vec::new();
            message.encode_into(&mut again);
            assert_eq!(again, data, "{message:?}");
        }
        Err(OuchError::Empty) => assert!(data.is_empty()),
        Err(OuchError::UnknownType(kind)) => assert!(!Inbound::TYPES.contains(&kind)),
        Err(OuchError::WrongLength { kind, expected, actual }) => {
            assert_eq!(actual, data.len());
            assert_ne!(expected, actual);
            assert_eq!(Some(expected), fixed_len(kind), "{kind:?}");
        }
    }
}

/// The wire length of inbound type `kind`.
fn fixed_len(kind: char) -> Option<usize> {
    Some(match kind {
        'O' => EnterOrder::LEN,
        'U' => ReplaceOrder::LEN,
        'X' => CancelOrder::LEN,
        'b' => EnterBlock::LEN,
        'p' => PickOrder::LEN,
        'a' => AuctionBid::LEN,
        _ => return None,
    })
}
