//! File-transfer v1 over a wormhole, as every wormhole client speaks it, and taojie's own
//! extensions between two taojie peers: the offer and answer, the file or the directory's zip
//! through transit, the final ack with the data's SHA-256, and safe landing on disk.
pub mod archive;
pub mod output;
pub mod progress;
pub mod stream;
