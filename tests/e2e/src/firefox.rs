//! Drives Firefox ESR through geckodriver with the built add-on installed.
