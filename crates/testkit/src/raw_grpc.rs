//! [`RawBytes`]: a gRPC codec that sends bytes as they are, as the body of a message, to
//! check how a service answers bodies no proper client would send.

use std::marker::PhantomData;

use tonic::codec::{Codec, EncodeBuf, Encoder};

/// Encodes `Bytes` verbatim; decodes answers as `R` with prost.
#[derive(Debug)]
pub struct RawBytes<R>(PhantomData<R>);

impl<R> Default for RawBytes<R> {
    fn default() -> Self {
        RawBytes(PhantomData)
    }
}

impl<R: prost::Message + Default + Send + 'static> Codec for RawBytes<R> {
    type Encode = bytes::Bytes;
    type Decode = R;
    type Encoder = VerbatimEncoder;
    type Decoder = tonic_prost::ProstDecoder<R>;

    fn encoder(&mut self) -> Self::Encoder {
        VerbatimEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        tonic_prost::ProstDecoder::default()
    }
}

/// Writes each item's bytes as the message body.
#[derive(Debug, Default)]
pub struct VerbatimEncoder;

impl Encoder for VerbatimEncoder {
    type Item = bytes::Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: bytes::Bytes, buf: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        buf.put_slice(&item);
        Ok(())
    }
}

/// `n` pseudo-random bodies (xorshift from `seed`) of 1 to 200 bytes; every other one starts
/// with a truncated length-delimited field, so it can never decode as any message.
pub fn garbage_bodies(n: usize, seed: u64) -> Vec<bytes::Bytes> {
    let mut state = seed.max(1);
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..n)
        .map(|i| {
            let len = 1 + (next() % 200) as usize;
            let mut body: Vec<u8> = if i % 2 == 0 {
                vec![0x0a, 0xff, 0xff, 0x03]
            } else {
                Vec::new()
            };
            body.extend((0..len).map(|_| next() as u8));
            bytes::Bytes::from(body)
        })
        .collect()
}
