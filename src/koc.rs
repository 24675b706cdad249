//! Reading and writing Koha's `.koc` offline circulation files.
