//! Correctness checks made while the load runs.

/// Per client (or per watcher): the revision a response reports must never go back.
#[derive(Clone, Debug, Default)]
pub struct RevisionCheck {
    last: i64,
}

impl RevisionCheck {
    /// Records `revision`; false if it is below one this client saw before.
    pub fn observe(&mut self, revision: i64) -> bool {
        if revision < self.last {
            return false;
        }
        self.last = revision;
        true
    }

    pub fn last(&self) -> i64 {
        self.last
    }
}

/// For watchers: every event's mod_revision must be above the previous event's.
#[derive(Clone, Debug, Default)]
pub struct EventOrderCheck {
    last: i64,
}

impl EventOrderCheck {
    pub fn observe(&mut self, mod_revision: i64) -> bool {
        let ok = mod_revision > self.last;
        self.last = self.last.max(mod_revision);
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_and_rising_revisions_pass() {
        let mut c = RevisionCheck::default();
        assert!(c.observe(1));
        assert!(c.observe(1));
        assert!(c.observe(5));
        assert_eq!(c.last(), 5);
    }

    #[test]
    fn a_revision_that_goes_back_fails_and_is_not_remembered() {
        let mut c = RevisionCheck::default();
        assert!(c.observe(10));
        assert!(!c.observe(9));
        assert_eq!(c.last(), 10);
        assert!(c.observe(10));
        assert!(!c.observe(0));
    }

    #[test]
    fn events_must_strictly_rise() {
        let mut c = EventOrderCheck::default();
        assert!(c.observe(3));
        assert!(!c.observe(3));
        assert!(!c.observe(2));
        assert!(c.observe(4));
    }
}
