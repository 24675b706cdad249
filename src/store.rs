//! How transactions and settings are laid out in extension storage, versioned and reconciled.
