//! Where forwarded bytes are read into. Each chunk read from a socket is forwarded, then
//! shared by reference (a frozen [`Bytes`]) with the analysis task and the recorder, so the
//! proxy copies nothing per chunk. A block can be read into again once they have dropped
//! their chunks of it; until then the pool reads into another block. Blocks are kept and
//! reused rather than freed and allocated again: a fresh 64 KiB block per chunk costs page
//! faults and zeroing in the kernel, which showed as a tenth of the forwarding profile.

use bytes::{Bytes, BytesMut};

/// The read blocks of one direction of one association.
pub struct ChunkPool {
    /// Being read into.
    current: BytesMut,
    /// Blocks that were still shared when `current` ran out, oldest first.
    retired: Vec<BytesMut>,
    block: usize,
    min_read: usize,
}

impl ChunkPool {
    /// At most this many blocks wait to be reused (a busy direction holds up to
    /// `MAX_RETIRED + 1` blocks while its consumers lag; an idle one holds one).
    pub const MAX_RETIRED: usize = 16;

    /// Blocks of `block` bytes; a read is never offered less than a quarter of one.
    pub fn new(block: usize) -> ChunkPool {
        let block = block.max(1024);
        ChunkPool {
            current: BytesMut::with_capacity(block),
            retired: Vec::new(),
            block,
            min_read: block / 4,
        }
    }

    /// The buffer to read into, with at least a quarter block of room.
    pub fn buffer(&mut self) -> &mut BytesMut {
        if self.current.capacity() < self.min_read {
            self.renew();
        }
        &mut self.current
    }

    /// What was read since the last call, as a chunk that can be shared.
    pub fn take(&mut self) -> Bytes {
        self.current.split().freeze()
    }

    fn renew(&mut self) {
        if self.current.try_reclaim(self.block) {
            // Nobody holds chunks of it any more: the consumers keep up, so the blocks
            // kept for a busy period can go.
            self.retired.clear();
            return;
        }
        let free = self
            .retired
            .iter_mut()
            .position(|b| b.try_reclaim(self.block));
        let next = match free {
            Some(i) => self.retired.remove(i),
            None => {
                if self.retired.len() >= Self::MAX_RETIRED {
                    // Consumers lag by more than the pool: let the oldest block go (it is
                    // freed when its last chunk is dropped).
                    self.retired.remove(0);
                }
                BytesMut::with_capacity(self.block)
            }
        };
        let old = std::mem::replace(&mut self.current, next);
        self.retired.push(old);
    }

    /// Blocks held for reuse.
    #[cfg(test)]
    fn retired(&self) -> usize {
        self.retired.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    fn fill(pool: &mut ChunkPool, n: usize) -> Bytes {
        let buf = pool.buffer();
        assert!(buf.capacity() - buf.len() >= n.min(1024));
        buf.put_bytes(7, n);
        pool.take()
    }

    #[test]
    fn a_block_is_read_into_again_once_its_chunks_are_dropped() {
        let mut pool = ChunkPool::new(4096);
        let first = fill(&mut pool, 4000);
        let addr = first.as_ptr();
        drop(first);
        let again = fill(&mut pool, 100);
        assert_eq!(again.as_ptr(), addr, "the same allocation, from its start");
        assert_eq!(pool.retired(), 0);
    }

    #[test]
    fn held_chunks_keep_their_block_and_reading_goes_on_elsewhere() {
        let mut pool = ChunkPool::new(4096);
        let held = fill(&mut pool, 4000);
        let other = fill(&mut pool, 4000);
        assert_ne!(held.as_ptr(), other.as_ptr());
        assert!(held.iter().all(|&b| b == 7) && held.len() == 4000);
        assert_eq!(pool.retired(), 1);
        // Both released: the retired block comes back instead of a new allocation.
        let (a, b) = (held.as_ptr(), other.as_ptr());
        drop(held);
        drop(other);
        let next = fill(&mut pool, 4000);
        assert!(next.as_ptr() == a || next.as_ptr() == b);
    }

    #[test]
    fn the_pool_stays_bounded_when_consumers_lag() {
        let mut pool = ChunkPool::new(1024);
        let held: Vec<Bytes> = (0..50).map(|_| fill(&mut pool, 1000)).collect();
        assert!(pool.retired() <= ChunkPool::MAX_RETIRED);
        assert_eq!(held.len(), 50);
        drop(held);
        fill(&mut pool, 1000);
        fill(&mut pool, 1000);
        // Consumers caught up: the blocks kept for the busy period are let go.
        assert_eq!(pool.retired(), 0);
    }
}
