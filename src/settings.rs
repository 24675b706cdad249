//! The connection settings an admin enters on the options page.
