//! The real iptux, headless in a namespace of its own (filled in below).
