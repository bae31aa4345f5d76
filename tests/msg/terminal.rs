//! `taojie msg chat` on a pseudo-terminal (filled in below).
