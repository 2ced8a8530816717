//! Where the frames of a queue sit in its ring buffer: pure arithmetic, no shared memory, so
//! every case is unit-tested here.
//!
//! A *position* counts bytes from the queue's creation and only grows; the frame at position
//! `p` lives at offset `p % capacity` of the ring. Producers own the tail position, consumers
//! the head; the frames are the positions `[head, tail)`.
//!
//! A frame is an 8-byte little-endian header followed by the payload, padded to a multiple of
//! 8 bytes. A frame never wraps around the end of the ring, so its payload is one contiguous
//! slice that is decoded in place: when a frame does not fit before the end, the producer
//! writes a *skip* header there, saying how many bytes to jump, and puts the frame at the
//! start.
//!
//! The capacity is a power of two and only grows, by a power of two, so a position's old
//! offset and new offset differ by a whole number of old capacities: growing copies the live
//! frames that must move into the new space above the old ring, never over it.
//!
//! Every number here may come from shared memory that another process wrote, so the functions
//! take checked types: a [`Capacity`] (a power of two no larger than [`MAX_CAPACITY`]) and a
//! [`Span`] (two ends in order, no further apart than the capacity, far from overflow). The
//! ring parses what it reads into them; nothing below divides, indexes or subtracts with an
//! unchecked number.

/// The header in front of every frame.
pub(crate) const FRAME_HEADER: u64 = 8;

/// A header with this bit set is a skip header; the other bits say how many bytes to skip.
const SKIP_FLAG: u64 = 1 << 63;

/// The largest ring the queue will grow to (64 TiB): far beyond memory, it only keeps the
/// arithmetic below away from overflow.
pub(crate) const MAX_CAPACITY: u64 = 1 << 46;

/// Positions stop here, far below `u64::MAX`: a position at most this large plus a skip and a
/// frame (each at most [`MAX_CAPACITY`]), twice over, cannot overflow. A queue passes it after
/// 2^64 - 2^48 bytes of traffic, centuries at memory speed; past it the queue reports
/// corruption.
pub(crate) const POSITION_LIMIT: u64 = u64::MAX - 4 * MAX_CAPACITY;

/// One end of the queue: a position in bytes and a count of items, both only growing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Position {
    /// Bytes of frames (and skips) the end has passed.
    pub(crate) bytes: u64,
    /// Items the end has passed: put at the tail, taken at the head.
    pub(crate) items: u64,
}

/// A ring size the arithmetic can trust: a power of two from [`FRAME_HEADER`] to
/// [`MAX_CAPACITY`]. (The ring asks more of the one it reads: at least its initial size, and
/// covered by the file.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Capacity(u64);

impl Capacity {
    /// `bytes` as a capacity, if it is one.
    pub(crate) fn new(bytes: u64) -> Option<Capacity> {
        let fits = (FRAME_HEADER..=MAX_CAPACITY).contains(&bytes);
        (fits && bytes.is_power_of_two()).then_some(Capacity(bytes))
    }

    /// The size in bytes.
    pub(crate) fn bytes(self) -> u64 {
        self.0
    }

    /// Where `position` lies in the ring.
    pub(crate) fn offset(self, position: u64) -> u64 {
        position & (self.0 - 1) // a power of two: the same as `%`, without a division
    }
}

/// The frames between the two ends, checked: `head <= tail` in bytes and in items, at most
/// `capacity` bytes apart, no more items than frame headers fit in those bytes, and the tail
/// at most [`POSITION_LIMIT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    head: Position,
    tail: Position,
    capacity: Capacity,
}

impl Span {
    /// The span from `head` to `tail` in a ring of `capacity`, if it is one.
    pub(crate) fn new(head: Position, tail: Position, capacity: Capacity) -> Option<Span> {
        let bytes = tail.bytes.checked_sub(head.bytes)?;
        let items = tail.items.checked_sub(head.items)?;
        let sane = bytes <= capacity.bytes()
            && items <= bytes / FRAME_HEADER
            && tail.bytes <= POSITION_LIMIT;
        sane.then_some(Span {
            head,
            tail,
            capacity,
        })
    }

    pub(crate) fn head(self) -> Position {
        self.head
    }

    pub(crate) fn tail(self) -> Position {
        self.tail
    }

    pub(crate) fn capacity(self) -> Capacity {
        self.capacity
    }

    /// Live bytes: frames and skips from the head to the tail.
    pub(crate) fn bytes(self) -> u64 {
        self.tail.bytes - self.head.bytes
    }

    /// Items between the ends.
    pub(crate) fn items(self) -> u64 {
        self.tail.items - self.head.items
    }
}

/// What the header at the head of the frames says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FrameHeader {
    /// A frame with a payload of this many bytes.
    Payload(u64),
    /// Jump this many bytes (to the end of the ring); the next frame is at the start.
    Skip(u64),
}

impl FrameHeader {
    /// The header's bytes in the ring.
    pub(crate) fn to_word(self) -> u64 {
        match self {
            FrameHeader::Payload(len) => len,
            FrameHeader::Skip(len) => len | SKIP_FLAG,
        }
    }

    /// Reads a header back from its bytes.
    pub(crate) fn from_word(word: u64) -> FrameHeader {
        if word & SKIP_FLAG == 0 {
            FrameHeader::Payload(word)
        } else {
            FrameHeader::Skip(word & !SKIP_FLAG)
        }
    }
}

/// The size of the frame that carries a payload of `payload` bytes, or `None` if absurd.
pub(crate) fn frame_size(payload: u64) -> Option<u64> {
    let padded = payload.checked_add(7)? & !7;
    let size = padded.checked_add(FRAME_HEADER)?;
    (size <= MAX_CAPACITY).then_some(size)
}

/// Where a new frame goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Placement {
    /// Bytes of a skip header at the old tail, 0 when the frame fits before the ring's end.
    pub(crate) skip: u64,
    /// The frame's position.
    pub(crate) at: u64,
    /// The tail once the frame is in.
    pub(crate) end: u64,
}

/// Where a frame of `size` bytes goes after the span's tail, if its ring has room for it while
/// the frames from its head on are still live.
pub(crate) fn place(span: Span, size: u64) -> Option<Placement> {
    let capacity = span.capacity.bytes();
    let (head, tail) = (span.head.bytes, span.tail.bytes);
    let offset = span.capacity.offset(tail);
    let skip = if capacity - offset >= size {
        0
    } else {
        capacity - offset
    };
    let at = tail + skip; // no overflow: tail <= POSITION_LIMIT, skip < capacity
    let end = at.checked_add(size)?;
    (end - head <= capacity).then_some(Placement { skip, at, end })
}

/// The capacity to grow to so that a frame of `size` bytes fits after `used` live bytes: at
/// least double, so growth is amortised. `None` past [`MAX_CAPACITY`].
pub(crate) fn grown_capacity(capacity: Capacity, used: u64, size: u64) -> Option<Capacity> {
    // A frame that does not fit before the end costs at most `size` bytes of skip as well.
    let needed = used.checked_add(size.checked_mul(2)?)?;
    let grown = needed
        .max(capacity.bytes().checked_mul(2)?)
        .checked_next_power_of_two()?;
    Capacity::new(grown)
}

/// A copy of `len` bytes inside the ring, from offset `from` to offset `to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Move {
    pub(crate) from: u64,
    pub(crate) to: u64,
    pub(crate) len: u64,
}

/// The copies that keep the span's frames readable when its ring grows to `new` bytes. Every
/// destination lies at or above the old capacity, outside the old ring, so a process killed
/// mid-copy leaves the old ring intact. An empty list when `new` is not larger.
pub(crate) fn relocations(span: Span, new: Capacity) -> Vec<Move> {
    let old = span.capacity;
    let mut moves = Vec::new();
    if new.bytes() <= old.bytes() {
        return moves;
    }
    // Both are powers of two, so `new` is a multiple of `old`, and the span's tail is far from
    // overflow, so `start - offset + old` below cannot overflow.
    let (mut start, tail) = (span.head.bytes, span.tail.bytes);
    while start < tail {
        // A run of positions that does not cross a multiple of `old` is contiguous in both
        // rings; the live frames make at most two such runs.
        let end = tail.min(start - old.offset(start) + old.bytes());
        let (from, to) = (old.offset(start), new.offset(start));
        if from != to {
            moves.push(Move {
                from,
                to,
                len: end - start,
            });
        }
        start = end;
    }
    moves
}

/// A range of ring offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Range {
    pub(crate) offset: u64,
    pub(crate) len: u64,
}

/// The whole blocks of `block` bytes (a power of two, at most the capacity) that the positions
/// `[from, to)` cover, as at most two ranges of ring offsets (the positions may wrap around
/// the end). For giving back the pages of free ring space: none outside `[from, to)` is named,
/// and none twice as long as the positions span at most the capacity. Empty when `from >= to`.
pub(crate) fn whole_blocks(from: u64, to: u64, capacity: Capacity, block: u64) -> Vec<Range> {
    let start = from.checked_next_multiple_of(block).unwrap_or(u64::MAX);
    let end = to - to % block;
    if start >= end {
        return Vec::new();
    }
    let len = (end - start).min(capacity.bytes());
    let offset = capacity.offset(start);
    let first = len.min(capacity.bytes() - offset);
    let mut ranges = vec![Range { offset, len: first }];
    if first < len {
        ranges.push(Range {
            offset: 0,
            len: len - first,
        });
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capacity(bytes: u64) -> Capacity {
        Capacity::new(bytes).expect("a capacity")
    }

    /// A span of byte positions (the items do not matter to the layout).
    fn span(head: u64, tail: u64, bytes: u64) -> Span {
        let at = |bytes| Position { bytes, items: 0 };
        Span::new(at(head), at(tail), capacity(bytes)).expect("a span")
    }

    fn place_at(head: u64, tail: u64, bytes: u64, size: u64) -> Option<Placement> {
        place(span(head, tail, bytes), size)
    }

    fn relocate(head: u64, tail: u64, old: u64, new: u64) -> Vec<Move> {
        relocations(span(head, tail, old), capacity(new))
    }

    fn grown(bytes: u64, used: u64, size: u64) -> Option<u64> {
        grown_capacity(capacity(bytes), used, size).map(Capacity::bytes)
    }

    #[test]
    fn a_capacity_is_a_power_of_two_within_bounds() {
        for bytes in [0, 3, 4, 96, MAX_CAPACITY * 2, u64::MAX] {
            assert_eq!(Capacity::new(bytes), None, "{bytes}");
        }
        assert_eq!(capacity(64).offset(200), 200 % 64);
        assert_eq!(capacity(MAX_CAPACITY).bytes(), MAX_CAPACITY);
    }

    #[test]
    fn released_blocks_lie_inside_the_positions_and_wrap_at_the_end() {
        let ring = capacity(1024);
        let at = |offset, len| Range { offset, len };
        assert_eq!(whole_blocks(0, 1024, ring, 256), vec![at(0, 1024)]);
        // Partial blocks at either end are kept.
        assert_eq!(whole_blocks(10, 600, ring, 256), vec![at(256, 256)]);
        assert_eq!(whole_blocks(10, 500, ring, 256), vec![]);
        // Positions [3 * 256, 6 * 256) are offsets [768, 1024) then [0, 512).
        assert_eq!(
            whole_blocks(768, 1536, ring, 256),
            vec![at(768, 256), at(0, 512)]
        );
        assert_eq!(whole_blocks(900, 100, ring, 256), vec![]);
        assert_eq!(whole_blocks(u64::MAX - 5, u64::MAX, ring, 256), vec![]);
    }

    #[test]
    fn a_span_has_its_ends_in_order_within_the_ring() {
        let at = |bytes, items| Position { bytes, items };
        let ring = capacity(64);
        let span_of = |head, tail| Span::new(head, tail, ring);
        assert!(span_of(at(8, 1), at(8, 1)).is_some());
        assert!(span_of(at(0, 0), at(64, 8)).is_some());
        // Head past tail, in bytes or in items.
        assert_eq!(span_of(at(16, 0), at(8, 0)), None);
        assert_eq!(span_of(at(0, 2), at(8, 1)), None);
        // Further apart than the ring, more items than headers fit, or near overflow.
        assert_eq!(span_of(at(0, 0), at(72, 1)), None);
        assert_eq!(span_of(at(0, 0), at(16, 3)), None);
        let far = POSITION_LIMIT + 8;
        assert_eq!(span_of(at(far - 8, 0), at(far, 1)), None);
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
    fn headers_round_trip() {
        for header in [
            FrameHeader::Payload(0),
            FrameHeader::Payload(25),
            FrameHeader::Skip(8),
            FrameHeader::Skip(MAX_CAPACITY),
        ] {
            assert_eq!(FrameHeader::from_word(header.to_word()), header);
        }
    }

    #[test]
    fn frames_follow_each_other() {
        let a = place_at(0, 0, 64, 24).unwrap();
        assert_eq!(
            a,
            Placement {
                skip: 0,
                at: 0,
                end: 24
            }
        );
        let b = place_at(0, a.end, 64, 24).unwrap();
        assert_eq!((b.at, b.end), (24, 48));
        // Only 16 bytes are left and the first frame is still live.
        assert_eq!(place_at(0, b.end, 64, 24), None);
    }

    #[test]
    fn a_frame_that_does_not_fit_before_the_end_skips_to_the_start() {
        // Frames live at [24, 48); 16 bytes remain at the end, 24 are free at the start.
        let c = place_at(24, 48, 64, 24).unwrap();
        assert_eq!(
            c,
            Placement {
                skip: 16,
                at: 64,
                end: 88
            }
        );
        assert_eq!(c.at % 64, 0);
        // The skip and the frame together must fit: not with the head still at 0.
        assert_eq!(
            place_at(0, 48, 64, 8),
            Some(Placement {
                skip: 0,
                at: 48,
                end: 56
            })
        );
        assert_eq!(place_at(16, 48, 64, 24), None);
    }

    #[test]
    fn a_frame_that_fills_the_ring_exactly_fits() {
        assert_eq!(
            place_at(64, 64, 64, 64),
            Some(Placement {
                skip: 0,
                at: 64,
                end: 128
            })
        );
        assert_eq!(place_at(64, 64, 64, 72), None);
    }

    #[test]
    fn growth_at_least_doubles_and_fits_the_frame() {
        assert_eq!(grown(64, 64, 8), Some(128));
        assert_eq!(grown(65536, 100, 1 << 28), Some(1 << 30));
        assert!(grown(4096, 0, MAX_CAPACITY / 2).is_some());
        assert_eq!(grown(4096, 0, MAX_CAPACITY), None);
        assert_eq!(grown(MAX_CAPACITY, 0, 8), None);
    }

    #[test]
    fn growing_moves_only_the_frames_whose_offset_changes() {
        // Live positions [96, 160) in a 64-byte ring: offsets [32, 64) then [0, 32).
        // In a 128-byte ring they are offsets [96, 128) then [0, 32): the first run moves.
        assert_eq!(
            relocate(96, 160, 64, 128),
            vec![Move {
                from: 32,
                to: 96,
                len: 32
            }]
        );
        // Positions [32, 96): offsets [32, 64) and [0, 32) become [32, 64) and [64, 96).
        assert_eq!(
            relocate(32, 96, 64, 128),
            vec![Move {
                from: 0,
                to: 64,
                len: 32
            }]
        );
        assert_eq!(relocate(40, 40, 64, 256), vec![]);
    }

    /// A byte-for-byte model of the ring: frames written and read with the functions above,
    /// growing the way the queue does.
    struct Model {
        ring: Vec<u8>,
        head: u64,
        tail: u64,
        expected: std::collections::VecDeque<(u8, u64)>,
        skips: u32,
        moves: u32,
    }

    impl Model {
        fn capacity(&self) -> u64 {
            self.ring.len() as u64
        }

        fn write_word(&mut self, offset: u64, word: u64) {
            let offset = offset as usize;
            self.ring[offset..offset + 8].copy_from_slice(&word.to_le_bytes());
        }

        fn read_word(&self, position: u64) -> u64 {
            let offset = (position % self.capacity()) as usize;
            u64::from_le_bytes(self.ring[offset..offset + 8].try_into().unwrap())
        }

        fn push(&mut self, tag: u8, len: u64) {
            let size = frame_size(len).unwrap();
            let capacity = self.capacity();
            let placed = match place_at(self.head, self.tail, capacity, size) {
                Some(placed) => placed,
                None => {
                    let new = grown(capacity, self.tail - self.head, size).unwrap();
                    self.ring.resize(new as usize, 0xEE);
                    for step in relocate(self.head, self.tail, capacity, new) {
                        self.moves += 1;
                        let (from, len) = (step.from as usize, step.len as usize);
                        self.ring.copy_within(from..from + len, step.to as usize);
                    }
                    place_at(self.head, self.tail, new, size).expect("fits once grown")
                }
            };
            let capacity = self.capacity();
            if placed.skip > 0 {
                self.skips += 1;
                self.write_word(
                    self.tail % capacity,
                    FrameHeader::Skip(placed.skip).to_word(),
                );
            }
            let offset = placed.at % capacity;
            assert!(offset + size <= capacity, "a frame wraps: {placed:?}");
            self.write_word(offset, FrameHeader::Payload(len).to_word());
            let payload = (offset + FRAME_HEADER) as usize;
            self.ring[payload..payload + len as usize].fill(tag);
            self.tail = placed.end;
            self.expected.push_back((tag, len));
        }

        fn pop(&mut self) {
            let Some((tag, len)) = self.expected.pop_front() else {
                return;
            };
            let capacity = self.capacity();
            if let FrameHeader::Skip(skip) = FrameHeader::from_word(self.read_word(self.head)) {
                assert!(
                    self.head % capacity + skip <= capacity,
                    "a skip leaves the ring"
                );
                self.head += skip;
            }
            assert_eq!(
                FrameHeader::from_word(self.read_word(self.head)),
                FrameHeader::Payload(len)
            );
            let payload = (self.head % capacity + FRAME_HEADER) as usize;
            assert!(
                self.ring[payload..payload + len as usize]
                    .iter()
                    .all(|&b| b == tag)
            );
            self.head += frame_size(len).unwrap();
            assert!(self.head <= self.tail);
        }
    }

    #[test]
    fn frames_come_out_whole_and_in_order_through_skips_and_growth() {
        let mut model = Model {
            ring: vec![0; 64],
            head: 0,
            tail: 0,
            expected: Default::default(),
            skips: 0,
            moves: 0,
        };
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut random = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for step in 0..20_000_u64 {
            // Mostly small frames, now and then one larger than the whole ring so far; pops
            // slightly outnumber pushes so the ring keeps emptying and wrapping.
            let roll = random();
            if roll % 100 < 48 {
                let len = if roll % 97 == 0 {
                    random() % 4096
                } else {
                    random() % 40
                };
                model.push(step as u8, len);
            } else {
                model.pop();
            }
        }
        while !model.expected.is_empty() {
            model.pop();
        }
        assert_eq!(model.head, model.tail);
        assert!(
            model.skips > 0 && model.moves > 0,
            "no skip or no move was exercised"
        );
    }

    #[test]
    fn after_growth_every_live_byte_is_where_the_new_capacity_says() {
        for (head, tail, old, new) in [(96, 160, 64, 128), (200, 250, 64, 512), (0, 64, 64, 64)] {
            let mut ring = vec![u64::MAX; new as usize];
            for position in head..tail {
                ring[(position % old) as usize] = position;
            }
            for step in relocate(head, tail, old, new) {
                assert!(step.to >= old, "{step:?} writes over the old ring");
                let (from, to, len) = (step.from as usize, step.to as usize, step.len as usize);
                ring.copy_within(from..from + len, to);
            }
            for position in head..tail {
                assert_eq!(ring[(position % new) as usize], position);
            }
        }
    }
}
