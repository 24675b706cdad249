//! The journal: the transactions a desk holds, and what the desk does with them.
