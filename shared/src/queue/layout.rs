//! Where the frames of a queue sit in its ring buffer: pure arithmetic, no shared memory, so
//! every case is unit-tested here.
//!
//! A frame is an 8-byte little-endian payload length followed by the payload, padded to a
//! multiple of 8 bytes. A frame never wraps around the end of the ring: when it does not fit
//! before the end, it goes to the start and the end of the used region is remembered in
//! `wrap_at`. So a payload is always one contiguous slice, which is decoded in place.
//!
//! The frames occupy either `[head, tail)` (not wrapped), or `[head, wrap_at)` then `[0, tail)`
//! (wrapped, with `tail <= head`). An empty ring always has `head == tail == 0`.

/// The length prefix of every frame.
pub(crate) const FRAME_HEADER: u64 = 8;

/// `wrap_at` when the frames are contiguous.
pub(crate) const NO_WRAP: u64 = u64::MAX;

/// The largest ring the queue will grow to (64 TiB): far beyond memory, it only keeps the
/// arithmetic below away from overflow.
pub(crate) const MAX_CAPACITY: u64 = 1 << 46;

/// The committed state of a queue. Two copies live in shared memory and a single word says
/// which is current, so a process killed while changing it leaves the other copy intact.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Bytes in the ring.
    pub(crate) capacity: u64,
    /// Offset of the first frame.
    pub(crate) head: u64,
    /// Offset where the next frame goes.
    pub(crate) tail: u64,
    /// End of the frames at the top of the ring when they wrapped, else [`NO_WRAP`].
    pub(crate) wrap_at: u64,
    /// Items in the queue: `qsize()`.
    pub(crate) count: u64,
    /// Items put and not yet marked done with `task_done()` (JoinableQueue).
    pub(crate) unfinished: u64,
}

/// Bytes to copy when a wrapped ring grows: the frames at the start move up behind the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Move {
    pub(crate) from: u64,
    pub(crate) to: u64,
    pub(crate) len: u64,
}

/// The size of the frame that carries a payload of `payload` bytes, or `None` if absurd.
pub(crate) fn frame_size(payload: u64) -> Option<u64> {
    let padded = payload.checked_add(7)? & !7;
    let size = padded.checked_add(FRAME_HEADER)?;
    (size <= MAX_CAPACITY).then_some(size)
}

impl Layout {
    /// An empty ring of `capacity` bytes.
    pub(crate) fn empty(capacity: u64) -> Layout {
        Layout {
            capacity,
            head: 0,
            tail: 0,
            wrap_at: NO_WRAP,
            count: 0,
            unfinished: 0,
        }
    }

    fn is_wrapped(&self) -> bool {
        self.wrap_at != NO_WRAP
    }

    /// Where a frame of `size` bytes fits without growing, and the layout once it is there.
    pub(crate) fn place(&self, size: u64) -> Option<(u64, Layout)> {
        let mut after = *self;
        let offset = if !self.is_wrapped() && self.capacity - self.tail >= size {
            after.tail = self.tail + size;
            self.tail
        } else if !self.is_wrapped() && self.count > 0 && self.head >= size {
            after.wrap_at = self.tail;
            after.tail = size;
            0
        } else if self.is_wrapped() && self.head - self.tail >= size {
            after.tail = self.tail + size;
            self.tail
        } else {
            return None;
        };
        after.count += 1;
        after.unfinished += 1;
        Some((offset, after))
    }

    /// The layout after growing so that a frame of `size` bytes fits at `tail`, and the copy
    /// that unwraps the frames first. The new capacity at least doubles, so growth is amortised.
    /// `None` past [`MAX_CAPACITY`].
    pub(crate) fn grown(&self, size: u64) -> Option<(Layout, Option<Move>)> {
        let mut after = *self;
        let mut unwrap = None;
        if self.is_wrapped() {
            // The frames at [0, tail) move to [wrap_at, wrap_at + tail): above everything live,
            // so a process killed mid-copy leaves the current layout's bytes untouched.
            unwrap = Some(Move {
                from: 0,
                to: self.wrap_at,
                len: self.tail,
            });
            after.tail = self.wrap_at + self.tail;
            after.wrap_at = NO_WRAP;
        }
        let needed = after.tail.checked_add(size)?;
        after.capacity = needed
            .max(self.capacity.saturating_mul(2))
            .next_multiple_of(4096);
        (after.capacity <= MAX_CAPACITY).then_some((after, unwrap))
    }

    /// The layout after the first frame, of `size` bytes, is removed.
    pub(crate) fn popped(&self, size: u64) -> Layout {
        let mut after = *self;
        after.count -= 1;
        after.head += size;
        if after.count == 0 {
            after.head = 0;
            after.tail = 0;
            after.wrap_at = NO_WRAP;
        } else if after.head == after.wrap_at {
            after.head = 0;
            after.wrap_at = NO_WRAP;
        }
        after
    }

    /// Where the first frame may end: the top of the used region.
    pub(crate) fn front_limit(&self) -> u64 {
        if self.is_wrapped() {
            self.wrap_at
        } else {
            self.tail
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pushes a frame of `size`, growing when needed, the way the ring does.
    fn push(layout: Layout, size: u64) -> (u64, Layout) {
        match layout.place(size) {
            Some(placed) => placed,
            None => {
                let (grown, _) = layout.grown(size).unwrap();
                grown.place(size).expect("a grown ring fits the frame")
            }
        }
    }

    #[test]
    fn frames_are_padded_to_eight_bytes() {
        assert_eq!(frame_size(0), Some(8));
        assert_eq!(frame_size(1), Some(16));
        assert_eq!(frame_size(8), Some(16));
        assert_eq!(frame_size(u64::MAX), None);
        assert_eq!(frame_size(MAX_CAPACITY), None);
    }

    #[test]
    fn frames_follow_each_other_then_wrap_to_the_start() {
        let ring = Layout::empty(64);
        let (a, ring) = push(ring, 24);
        let (b, ring) = push(ring, 24);
        assert_eq!((a, b), (0, 24));
        let ring = ring.popped(24);
        assert_eq!(ring.head, 24);
        // 16 bytes are left at the end; a 24-byte frame goes to the start instead.
        let (c, ring) = push(ring, 24);
        assert_eq!(c, 0);
        assert_eq!((ring.wrap_at, ring.tail, ring.count), (48, 24, 2));
        // The front is b; after it, the front wraps back to c at offset 0.
        let ring = ring.popped(24);
        assert_eq!((ring.head, ring.wrap_at), (0, NO_WRAP));
        let ring = ring.popped(24);
        assert_eq!(
            ring,
            Layout {
                unfinished: 3,
                ..Layout::empty(64)
            }
        );
    }

    #[test]
    fn a_full_ring_grows_and_unwraps_above_the_live_frames() {
        let ring = Layout::empty(64);
        let (_, ring) = push(ring, 32);
        let (_, ring) = push(ring, 32);
        let ring = ring.popped(32);
        let (_, ring) = push(ring, 32); // wraps: [32, 64) then [0, 32)
        assert_eq!((ring.head, ring.wrap_at, ring.tail), (32, 64, 32));
        assert!(ring.place(32).is_none());
        let (grown, unwrap) = ring.grown(32).unwrap();
        assert_eq!(
            unwrap,
            Some(Move {
                from: 0,
                to: 64,
                len: 32
            })
        );
        assert_eq!((grown.head, grown.tail, grown.wrap_at), (32, 96, NO_WRAP));
        assert!(grown.capacity >= 128 && grown.capacity % 4096 == 0);
        let (offset, _) = grown.place(32).unwrap();
        assert_eq!(offset, 96);
    }

    #[test]
    fn an_empty_ring_grows_to_fit_one_huge_frame() {
        let ring = Layout::empty(4096);
        assert!(ring.place(1 << 28).is_none());
        let (grown, unwrap) = ring.grown(1 << 28).unwrap();
        assert_eq!(unwrap, None);
        assert!(grown.capacity >= 1 << 28);
        assert_eq!(grown.place(1 << 28).unwrap().0, 0);
    }

    #[test]
    fn growth_stops_at_the_maximum() {
        let ring = Layout::empty(4096);
        assert!(ring.grown(MAX_CAPACITY).is_some());
        assert!(ring.grown(MAX_CAPACITY + 8).is_none());
    }

    #[test]
    fn counts_follow_puts_and_gets() {
        let mut ring = Layout::empty(4096);
        for _ in 0..10 {
            ring = push(ring, 16).1;
        }
        for _ in 0..4 {
            ring = ring.popped(16);
        }
        assert_eq!((ring.count, ring.unfinished), (6, 10));
    }
}
