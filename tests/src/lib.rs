//! tally-tests
