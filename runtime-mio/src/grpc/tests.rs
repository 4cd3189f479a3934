//! Unit tests of the pieces: framing, status encoding, sniffing and HTTP/1 parsing.
