//! tally-kvstore: filled in by issue 4.
