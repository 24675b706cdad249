//! A Koha stand-in that follows koha-protocol.md section 9.
