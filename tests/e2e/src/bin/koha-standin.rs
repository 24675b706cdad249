//! Runs the Koha stand-in on its own, so the add-on can be tried without a Koha.
fn main() {}
