//! A bounded first-in first-out queue, allocated once: where an lcore keeps the ALG
//! frames a full ring between it and another lcore could not take, so that they are
//! held, never dropped (issue 14).
//!
//! The worker keeps one toward the control lcore, the control lcore one toward each
//! worker. Frames leave in the order they came: what a ring refused goes back to the
//! front ([`Backlog::unpop`]), and a frame never overtakes one queued before it, so a
//! later frame of a connection never leaves before an earlier one. The queue never
//! allocates after [`Backlog::new`] (the hot path's rule): a push on a full queue
//! gives the frame back, and the owner back-pressures before that can happen (it stops
//! taking new frames while the queue is past [`Backlog::over`]).

/// A fixed-capacity FIFO of owned values (frames).
#[derive(Debug)]
pub struct Backlog<T> {
    slots: Vec<Option<T>>,
    /// Index of the oldest value.
    head: usize,
    len: usize,
    /// Past this many values, its owner stops taking new frames.
    high: usize,
}

impl<T> Backlog<T> {
    /// A queue of `capacity` values whose owner back-pressures once it holds more
    /// than `capacity - reserve` ([`Backlog::over`]): `reserve` is the most one poll
    /// can add. The only allocation.
    pub fn new(capacity: usize, reserve: usize) -> Backlog<T> {
        assert!(capacity > 0 && reserve < capacity, "a backlog needs room");
        let mut slots = Vec::with_capacity(capacity);
        slots.resize_with(capacity, || None);
        Backlog {
            slots,
            head: 0,
            len: 0,
            high: capacity - reserve,
        }
    }

    /// Values held now.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is held.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The most it holds.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// True when it holds more than its high mark: its owner takes no new frames.
    #[inline]
    pub fn over(&self) -> bool {
        self.len > self.high
    }

    #[inline]
    fn slot(&self, i: usize) -> usize {
        (self.head + i) % self.slots.len()
    }

    /// Queues `v` behind everything held; gives it back when full.
    #[inline]
    pub fn push(&mut self, v: T) -> Result<(), T> {
        if self.len == self.slots.len() {
            return Err(v);
        }
        let i = self.slot(self.len);
        self.slots[i] = Some(v);
        self.len += 1;
        Ok(())
    }

    /// Takes the oldest value.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        let v = self.slots[self.head].take();
        self.head = self.slot(1);
        self.len -= 1;
        v
    }

    /// Puts `v` back in front of everything held (a value [`Backlog::pop`] gave that
    /// could not be sent): values put back in reverse order of their popping keep
    /// their order. Gives it back when full.
    #[inline]
    pub fn unpop(&mut self, v: T) -> Result<(), T> {
        if self.len == self.slots.len() {
            return Err(v);
        }
        self.head = (self.head + self.slots.len() - 1) % self.slots.len();
        self.slots[self.head] = Some(v);
        self.len += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_leave_in_the_order_they_came_across_the_wrap() {
        let mut b = Backlog::new(4, 1);
        for round in 0..5u32 {
            for i in 0..3 {
                b.push(round * 10 + i).unwrap();
            }
            for i in 0..3 {
                assert_eq!(b.pop(), Some(round * 10 + i));
            }
        }
        assert!(b.is_empty());
        assert_eq!(b.pop(), None);
    }

    #[test]
    fn a_full_backlog_gives_the_value_back_and_allocates_nothing() {
        let mut b = Backlog::new(3, 1);
        let at = b.slots.as_ptr();
        for i in 0..3 {
            b.push(i).unwrap();
        }
        assert_eq!(b.push(9), Err(9));
        assert_eq!(b.unpop(8), Err(8));
        assert_eq!(b.len(), 3);
        assert_eq!(b.slots.as_ptr(), at, "never reallocated");
        assert_eq!(b.slots.capacity(), 3);
        assert_eq!((b.pop(), b.pop(), b.pop()), (Some(0), Some(1), Some(2)));
    }

    #[test]
    fn what_a_ring_refused_goes_back_in_front_in_order() {
        let mut b = Backlog::new(8, 2);
        for i in 0..6 {
            b.push(i).unwrap();
        }
        // Four popped for a ring that took only the first one.
        let popped: Vec<i32> = (0..4).map(|_| b.pop().unwrap()).collect();
        for v in popped[1..].iter().rev() {
            b.unpop(*v).unwrap();
        }
        // A frame that came meanwhile goes behind all of them.
        b.push(6).unwrap();
        let rest: Vec<i32> = std::iter::from_fn(|| b.pop()).collect();
        assert_eq!(rest, vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn unpop_wraps_below_the_first_slot() {
        let mut b = Backlog::new(4, 1);
        b.push(1).unwrap();
        assert_eq!(b.pop(), Some(1));
        b.push(2).unwrap();
        // head is 1 now; two values put back wrap to slots 0 and 3.
        b.unpop(1).unwrap();
        b.unpop(0).unwrap();
        let all: Vec<i32> = std::iter::from_fn(|| b.pop()).collect();
        assert_eq!(all, vec![0, 1, 2]);
    }

    #[test]
    fn over_its_high_mark_once_less_than_the_reserve_is_free() {
        let mut b = Backlog::new(10, 4);
        for i in 0..6 {
            b.push(i).unwrap();
            assert!(!b.over(), "{} held, 4 free or more", i + 1);
        }
        b.push(6).unwrap();
        assert!(b.over());
        b.pop();
        assert!(!b.over());
        assert_eq!(b.capacity(), 10);
    }
}
