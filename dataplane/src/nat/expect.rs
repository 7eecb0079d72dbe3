//! ALG expectations: the connections an ALG announced (an FTP data connection, SIP
//! and RTSP media, a SIP registration), each pinning a mapping until it comes or its
//! class's timeout passes. [`Expectations`] is the table and its accounting (per class,
//! per subscriber, the creation order for evicting the oldest); it knows nothing of
//! the mappings it pins: the NAT (`nat/mod.rs`) pins and unpins them, and passes in
//! what it needs (the subscriber slot of a mapping, the outside key).

use super::key::Key;
use hashbrown::HashMap;

/// Expectation classes: what announced the connection. Each has its own maximum per
/// worker and per subscriber (past either, the requesting subscriber's own oldest
/// expectation of the class goes, or the request is refused) and timeout. The ids and
/// the limits are the ALG registry's (`cgnat_alg::class`, `cgnat_alg::CLASSES`); the
/// tables here are built from it.
pub mod class {
    pub use cgnat_alg::class::*;
    use cgnat_alg::CLASSES;

    /// Number of classes.
    pub const N: usize = CLASSES.len();

    /// `$e` of every class `$c`, in id order (a loop: const code calls no closures).
    macro_rules! each {
        ($zero:expr, |$c:ident| $e:expr) => {{
            let mut a = [$zero; N];
            let mut i = 0;
            while i < N {
                let $c = &CLASSES[i];
                a[i] = $e;
                i += 1;
            }
            a
        }};
    }

    /// Names, for counters and the API (from the ALG registry).
    pub const NAMES: [&str; N] = each!("", |c| c.name);
    /// Most live expectations of each class per worker.
    pub const MAX: [usize; N] = each!(0, |c| c.max);
    /// Most live expectations of each class per subscriber (a sixteenth of the
    /// worker's): one subscriber cannot take a class from the others.
    pub const PER_SUBSCRIBER: [usize; N] = each!(0, |c| c.max / 16);
    /// Seconds an unmatched expectation of each class lives.
    pub const TIMEOUT: [u32; N] = each!(0, |c| c.timeout_secs);

    /// Expectations a worker holds at once, all classes together.
    pub const TOTAL: usize = {
        let mut t = 0;
        let mut i = 0;
        while i < N {
            t += MAX[i];
            i += 1;
        }
        t
    };
}

/// A connection an ALG announced: a mapping kept alive (pinned) for it, the remote it
/// may come from, and the master session it dies with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expect {
    /// The pinned mapping.
    pub mapping: u32,
    /// Remote address allowed to connect.
    pub remote: u32,
    /// The control session that announced it.
    pub master: u32,
    /// Dies at this second unless used.
    pub until: u32,
    /// Its class (see [`class`]).
    pub class: u8,
    /// The call or media session it belongs to (SIP Call-ID, RTSP Session), 0 if none.
    pub tag: u32,
    /// Stays after a match (a registration lets every incoming request in).
    pub keep: bool,
    /// The ALG of the session a match creates (a SIP registration's incoming calls).
    pub alg: u8,
    /// Creation order, for evicting the oldest.
    pub order: u32,
}

/// Expectations a worker holds at once, all classes together.
pub const MAX_EXPECT: usize = class::TOTAL;

/// What an ALG asks for (of `Nat::alg_expect_with`).
#[derive(Clone, Copy, Debug)]
pub struct ExpectReq {
    /// IP protocol of the expected connection.
    pub proto: u8,
    /// Inside endpoint it goes to.
    pub in_addr: u32,
    /// Inside port.
    pub in_port: u16,
    /// Remote address allowed (0: any).
    pub remote: u32,
    /// Class.
    pub class: u8,
    /// Call or media session tag.
    pub tag: u32,
    /// Lifetime in seconds (0: the class's).
    pub secs: u32,
    /// Stays after a match.
    pub keep: bool,
    /// ALG of the sessions a match creates.
    pub alg: u8,
}

/// The expectations of one worker, keyed by the pinned mapping's outside key. Sized at
/// start-up for [`MAX_EXPECT`] entries.
pub struct Expectations {
    by_key: HashMap<Key, Expect>,
    /// Live expectations per class.
    count: [usize; class::N],
    /// Live expectations per (subscriber slot, class).
    per_sub: HashMap<(u32, u8), u32>,
    /// Order of the last one created.
    order: u32,
}

/// What [`Expectations::make_room`] says of a new expectation of a subscriber.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Room {
    /// There is room for it.
    Free,
    /// Its subscriber is at its share of the class, or the class is full: the
    /// subscriber's own oldest of the class goes first.
    EvictOwn,
}

impl Default for Expectations {
    fn default() -> Self {
        Self::new()
    }
}

impl Expectations {
    /// An empty table with room for [`MAX_EXPECT`] entries.
    pub fn new() -> Self {
        Expectations {
            by_key: HashMap::with_capacity(2 * MAX_EXPECT),
            count: [0; class::N],
            per_sub: HashMap::with_capacity(2 * MAX_EXPECT),
            order: 0,
        }
    }

    /// No expectation alive.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Expectations alive.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// The expectation on outside key `k`.
    #[inline]
    pub fn get(&self, k: &Key) -> Option<&Expect> {
        self.by_key.get(k)
    }

    /// Expectations alive, with their outside keys.
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &Expect)> + '_ {
        self.by_key.iter()
    }

    /// Outside keys of the expectations alive.
    pub fn keys(&self) -> impl Iterator<Item = &Key> + '_ {
        self.by_key.keys()
    }

    /// Class index of `class` (an unknown class counts as the last one).
    pub fn class_index(class: u8) -> usize {
        usize::from(class).min(class::N - 1)
    }

    /// A retransmitted message or a refreshed registration: the expectation on `k`,
    /// if there is one, gets deadline `until` and `req`'s remote, tag and master.
    /// False when there is none.
    pub fn refresh(&mut self, k: &Key, req: &ExpectReq, master: u32, until: u32) -> bool {
        let Some(e) = self.by_key.get_mut(k) else {
            return false;
        };
        e.until = until;
        e.keep |= req.keep;
        e.remote = req.remote;
        e.tag = req.tag;
        e.master = master;
        true
    }

    /// Whether subscriber slot `sub` must give up its own oldest expectation of class
    /// index `c` before asking for another: past its share (a sixteenth of the
    /// class), or when the class is full and it holds some; never another's.
    pub fn make_room(&self, sub: u32, c: usize) -> Room {
        let own = self.per_sub.get(&(sub, c as u8)).copied().unwrap_or(0);
        let full = self.count[c] >= class::MAX[c];
        if (own as usize >= class::PER_SUBSCRIBER[c] || full) && own > 0 {
            Room::EvictOwn
        } else {
            Room::Free
        }
    }

    /// No room for another expectation of class index `c` (the class or the table
    /// is full).
    pub fn full(&self, c: usize) -> bool {
        self.by_key.len() >= MAX_EXPECT || self.count[c] >= class::MAX[c]
    }

    /// Adds `e` (its class index already checked by [`Expectations::full`]) on
    /// outside key `k`, for subscriber slot `sub`; it is given the next creation
    /// order.
    pub fn insert(&mut self, k: Key, mut e: Expect, sub: u32) {
        self.order = self.order.wrapping_add(1);
        e.order = self.order;
        let c = e.class;
        self.by_key.insert(k, e);
        self.count[usize::from(c)] += 1;
        *self.per_sub.entry((sub, c)).or_insert(0) += 1;
    }

    /// The outside key of subscriber slot `sub`'s oldest expectation of class `c`;
    /// `sub_of` gives a pinned mapping's subscriber slot.
    pub fn oldest(&self, sub: u32, c: u8, sub_of: impl Fn(u32) -> u32) -> Option<Key> {
        let order = self.order;
        self.by_key
            .iter()
            .filter(|(_, e)| e.class == c && sub_of(e.mapping) == sub)
            .max_by_key(|(_, e)| order.wrapping_sub(e.order))
            .map(|(k, _)| *k)
    }

    /// Removes the expectation on `k` from the table and its counts; `sub_of` gives
    /// its mapping's subscriber slot. The caller unpins the mapping.
    pub fn remove(&mut self, k: &Key, sub_of: impl FnOnce(u32) -> u32) -> Option<Expect> {
        let e = self.by_key.remove(k)?;
        self.count[usize::from(e.class)] -= 1;
        let sub = sub_of(e.mapping);
        if let Some(n) = self.per_sub.get_mut(&(sub, e.class)) {
            *n -= 1;
            if *n == 0 {
                self.per_sub.remove(&(sub, e.class));
            }
        }
        Some(e)
    }

    /// Up to `out.len()` outside keys of the expectations of call or session `tag`
    /// announced during `master`, registrations aside; how many were written.
    pub fn of_call(&self, master: u32, tag: u32, out: &mut [Key]) -> usize {
        fill(
            self.by_key
                .iter()
                .filter(|(_, e)| {
                    e.master == master && e.tag == tag && e.class != class::SIP_REGISTER
                })
                .map(|(k, _)| *k),
            out,
        )
    }

    /// Up to `out.len()` outside keys of the expectations that die with master session
    /// `master` (all but those that stay after a match: registrations); how many were
    /// written. The caller removes them and asks again while the slice came back full.
    pub fn of_master(&self, master: u32, out: &mut [Key]) -> usize {
        fill(
            self.by_key
                .iter()
                .filter(|(_, e)| e.master == master && !e.keep)
                .map(|(k, _)| *k),
            out,
        )
    }

    /// Up to `out.len()` outside keys of the expectations whose deadline is `now` or
    /// past; how many were written (as [`Expectations::of_master`]).
    pub fn due(&self, now: u32, out: &mut [Key]) -> usize {
        fill(
            self.by_key
                .iter()
                .filter(|(_, e)| e.until <= now)
                .map(|(k, _)| *k),
            out,
        )
    }

    /// The remote party's media address is known: the call's media pinholes that
    /// allowed any source now allow only `remote`.
    pub fn narrow(&mut self, master: u32, tag: u32, remote: u32) {
        for e in self.by_key.values_mut() {
            if e.master == master && e.tag == tag && e.remote == 0 && e.class == class::SIP_MEDIA {
                e.remote = remote;
            }
        }
    }

    /// The RTSP media of `master`'s session `tag` comes from `remote`.
    pub fn retarget(&mut self, master: u32, tag: u32, remote: u32) {
        for e in self.by_key.values_mut() {
            if e.master == master && e.tag == tag && e.class == class::RTSP_MEDIA {
                e.remote = remote;
            }
        }
    }

    /// The expectations of `master` tagged `from` get the tag `to`.
    pub fn retag(&mut self, master: u32, from: u32, to: u32) {
        for e in self.by_key.values_mut() {
            if e.master == master && e.tag == from {
                e.tag = to;
            }
        }
    }
}

/// Writes the first `out.len()` keys of `keys` into `out`; how many (no allocation:
/// the worker calls this when expectations end).
fn fill(keys: impl Iterator<Item = Key>, out: &mut [Key]) -> usize {
    let mut n = 0;
    for (slot, k) in out.iter_mut().zip(keys) {
        *slot = k;
        n += 1;
    }
    n
}
