//! The send run: which transactions go to Koha, in what order, and what each answer does to them.
