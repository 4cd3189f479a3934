//! A user's key permissions, merged as etcd merges them: every permission of the user's roles
//! becomes an interval (a key alone is `[key, key\0)`, a range `[key, range_end)`, a range end
//! of `"\0"` every key from `key` on), read and write apart, and a request is allowed when one
//! key of it is in a read (or write) interval, or its whole range is covered by them without a
//! gap (etcd's interval tree `Contains`).

use std::cmp::Ordering;

use crate::proto::{Permission, PermissionType};

/// An interval's end: a key (exclusive), or past every key.
#[derive(Clone, Debug, PartialEq, Eq)]
enum End {
    Key(Vec<u8>),
    Unbounded,
}

impl PartialOrd for End {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for End {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (End::Key(a), End::Key(b)) => a.cmp(b),
            (End::Key(_), End::Unbounded) => Ordering::Less,
            (End::Unbounded, End::Key(_)) => Ordering::Greater,
            (End::Unbounded, End::Unbounded) => Ordering::Equal,
        }
    }
}

/// Disjoint intervals, sorted, none touching another.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Intervals(Vec<(Vec<u8>, End)>);

impl Intervals {
    fn from_unmerged(mut intervals: Vec<(Vec<u8>, End)>) -> Self {
        intervals.sort();
        let mut merged: Vec<(Vec<u8>, End)> = Vec::with_capacity(intervals.len());
        for (begin, end) in intervals {
            if let Some((_, last_end)) = merged.last_mut() {
                // Touching intervals join: etcd's check finds no gap between them.
                if End::Key(begin.clone()) <= *last_end {
                    if end > *last_end {
                        *last_end = end;
                    }
                    continue;
                }
            }
            merged.push((begin, end));
        }
        Intervals(merged)
    }

    /// The interval that starts last at or before `key`: the only one that can hold it, the
    /// intervals being sorted and disjoint.
    fn last_starting_at_or_before(&self, key: &[u8]) -> Option<&(Vec<u8>, End)> {
        let after = self.0.partition_point(|(begin, _)| begin.as_slice() <= key);
        after.checked_sub(1).map(|at| &self.0[at])
    }

    /// Whether some interval holds `key`.
    fn holds_key(&self, key: &[u8]) -> bool {
        self.last_starting_at_or_before(key)
            .is_some_and(|(_, end)| below(key, end))
    }

    /// Whether one interval holds all of `[begin, end)`; an empty range is held by none.
    fn covers(&self, begin: &[u8], end: &End) -> bool {
        if !below(begin, end) {
            return false;
        }
        self.last_starting_at_or_before(begin)
            .is_some_and(|(_, held_end)| end <= held_end)
    }
}

/// Whether `key` is before `end`, without building an `End` for it.
fn below(key: &[u8], end: &End) -> bool {
    match end {
        End::Key(end) => key < end.as_slice(),
        End::Unbounded => true,
    }
}

/// The interval a permission grants; `None` for a range that holds no key.
fn interval_of(permission: &Permission) -> Option<(Vec<u8>, End)> {
    let key = permission.key.to_vec();
    let end = match &permission.range_end[..] {
        [] => {
            let mut next = key.clone();
            next.push(0);
            End::Key(next)
        }
        [0] => End::Unbounded,
        end => End::Key(end.to_vec()),
    };
    (End::Key(key.clone()) < end).then_some((key, end))
}

/// What a user may read and write: its roles' permissions, merged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RangePermissions {
    read: Intervals,
    write: Intervals,
}

impl RangePermissions {
    pub(crate) fn merge<'a>(permissions: impl IntoIterator<Item = &'a Permission>) -> Self {
        let (mut read, mut write) = (Vec::new(), Vec::new());
        for permission in permissions {
            let Some(interval) = interval_of(permission) else {
                continue;
            };
            match PermissionType::try_from(permission.perm_type) {
                Ok(PermissionType::Read) => read.push(interval),
                Ok(PermissionType::Write) => write.push(interval),
                Ok(PermissionType::Readwrite) => {
                    read.push(interval.clone());
                    write.push(interval);
                }
                // A type etcd does not define grants nothing.
                Err(_) => {}
            }
        }
        RangePermissions {
            read: Intervals::from_unmerged(read),
            write: Intervals::from_unmerged(write),
        }
    }

    /// Whether `kind` (read or write) is allowed on `key` (with `range_end` as a request has
    /// it: empty for the key alone, `"\0"` for every key from it).
    pub(crate) fn allows(&self, kind: PermissionType, key: &[u8], range_end: &[u8]) -> bool {
        let intervals = match kind {
            PermissionType::Read => &self.read,
            PermissionType::Write => &self.write,
            PermissionType::Readwrite => {
                return self.allows(PermissionType::Read, key, range_end)
                    && self.allows(PermissionType::Write, key, range_end);
            }
        };
        match range_end {
            [] => intervals.holds_key(key),
            [0] => intervals.covers(key, &End::Unbounded),
            end => intervals.covers(key, &End::Key(end.to_vec())),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use quickcheck::{Arbitrary, Gen, QuickCheck};

    use super::*;

    fn perm(kind: PermissionType, key: &[u8], range_end: &[u8]) -> Permission {
        Permission {
            perm_type: kind as i32,
            key: Bytes::copy_from_slice(key),
            range_end: Bytes::copy_from_slice(range_end),
        }
    }

    #[test]
    fn keys_ranges_prefixes_and_from_key_permissions_match_as_etcds() {
        use PermissionType::*;
        let perms = RangePermissions::merge(&[
            perm(Read, b"/config", b""),
            perm(Readwrite, b"/app/", b"/app0"),
            perm(Write, b"/logs", b"\0"),
        ]);
        assert!(perms.allows(Read, b"/config", b""));
        assert!(
            !perms.allows(Read, b"/config2", b""),
            "a key permission is that key"
        );
        assert!(!perms.allows(Write, b"/config", b""));
        assert!(perms.allows(Read, b"/app/x", b""));
        assert!(perms.allows(Write, b"/app/", b"/app0"), "the whole prefix");
        assert!(
            perms.allows(Read, b"/app/a", b"/app/b"),
            "a range inside it"
        );
        assert!(!perms.allows(Read, b"/app/", b"/app1"), "a range past it");
        assert!(!perms.allows(Read, b"/", b"\0"), "everything");
        assert!(
            perms.allows(Write, b"/logs/2026", b""),
            "from-key covers keys after it"
        );
        assert!(
            perms.allows(Write, b"/logs", b"\0"),
            "and every key from it"
        );
        assert!(!perms.allows(Write, b"/log", b"\0"), "not from before it");
        assert!(!perms.allows(Read, b"/logs", b""), "write only");
    }

    #[test]
    fn touching_permissions_cover_a_range_across_them() {
        use PermissionType::*;
        let perms = RangePermissions::merge(&[perm(Read, b"a", b"c"), perm(Read, b"c", b"e")]);
        assert!(perms.allows(Read, b"a", b"e"));
        let gap = RangePermissions::merge(&[perm(Read, b"a", b"c"), perm(Read, b"d", b"e")]);
        assert!(!gap.allows(Read, b"a", b"e"), "a gap at c");
        assert!(!gap.allows(Read, b"c", b""));
    }

    /// Keys from a small alphabet, so that ranges overlap often.
    #[derive(Clone, Debug)]
    struct SmallKey(Vec<u8>);

    impl Arbitrary for SmallKey {
        fn arbitrary(g: &mut Gen) -> Self {
            let len = usize::arbitrary(g) % 3;
            SmallKey(
                (0..len)
                    .map(|_| *g.choose(b"abc").expect("letters"))
                    .collect(),
            )
        }
    }

    #[derive(Clone, Debug)]
    struct Perm(Permission);

    impl Arbitrary for Perm {
        fn arbitrary(g: &mut Gen) -> Self {
            let kind = *g
                .choose(&[
                    PermissionType::Read,
                    PermissionType::Write,
                    PermissionType::Readwrite,
                ])
                .expect("kinds");
            let key = SmallKey::arbitrary(g).0;
            let end = match u8::arbitrary(g) % 3 {
                0 => Vec::new(),
                1 => vec![0],
                _ => SmallKey::arbitrary(g).0,
            };
            Perm(perm(kind, &key, &end))
        }
    }

    /// Every key of length up to 3 over the alphabet, with the zero byte: enough to tell the
    /// intervals above apart.
    fn universe() -> Vec<Vec<u8>> {
        let mut keys = vec![Vec::new()];
        for _ in 0..3 {
            let longer: Vec<Vec<u8>> = keys
                .iter()
                .flat_map(|k| {
                    b"\0abc".iter().map(move |c| {
                        let mut k = k.clone();
                        k.push(*c);
                        k
                    })
                })
                .collect();
            keys.extend(longer);
        }
        keys.sort();
        keys.dedup();
        keys
    }

    /// The model: a request is allowed when every key of its range (a key alone: that key)
    /// is in some granted interval, over every key of the universe.
    fn model_allows(perms: &[Permission], kind: PermissionType, key: &[u8], end: &[u8]) -> bool {
        let granted = |k: &[u8]| {
            perms.iter().any(|p| {
                let type_ok = match PermissionType::try_from(p.perm_type) {
                    Ok(PermissionType::Readwrite) => true,
                    Ok(t) => t == kind,
                    Err(_) => false,
                };
                type_ok
                    && interval_of(p)
                        .is_some_and(|(b, e)| b.as_slice() <= k && End::Key(k.to_vec()) < e)
            })
        };
        match end {
            [] => granted(key),
            _ => {
                let end = if end == [0] {
                    End::Unbounded
                } else {
                    End::Key(end.to_vec())
                };
                if end <= End::Key(key.to_vec()) {
                    return false;
                }
                universe()
                    .iter()
                    .filter(|k| k.as_slice() >= key && End::Key(k.to_vec()) < end)
                    .all(|k| granted(k))
            }
        }
    }

    #[test]
    fn merged_permissions_agree_with_the_key_by_key_model() {
        fn prop(
            perms: Vec<Perm>,
            key: SmallKey,
            end: SmallKey,
            from_key: bool,
            write: bool,
        ) -> bool {
            let perms: Vec<Permission> = perms.into_iter().map(|p| p.0).collect();
            let merged = RangePermissions::merge(&perms);
            let kind = if write {
                PermissionType::Write
            } else {
                PermissionType::Read
            };
            let end = if from_key { vec![0] } else { end.0 };
            for end in [Vec::new(), end] {
                if merged.allows(kind, &key.0, &end) != model_allows(&perms, kind, &key.0, &end) {
                    return false;
                }
            }
            true
        }
        QuickCheck::new()
            .tests(2000)
            .quickcheck(prop as fn(Vec<Perm>, SmallKey, SmallKey, bool, bool) -> bool);
    }
}
