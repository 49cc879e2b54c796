//! The closer application.
