//! Keeps encoder threads off real-time scheduling.
