//! The terminal screen that `taojie chat` and `taojie msg chat` share: a [`console`] that
//! prints incoming lines above the line being typed and reads whole lines from the keyboard,
//! the line [`editor`] (rustyline) it runs on a terminal, a stable [`colour`] per name, and
//! [`sanitize`](mod@sanitize), which makes text from a peer safe to show.
pub mod colour;
pub mod console;
pub mod editor;
pub mod sanitize;

pub use sanitize::sanitize;
