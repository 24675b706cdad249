//! Time zones: converting instants to a Koha server's local time, injected by the caller.
