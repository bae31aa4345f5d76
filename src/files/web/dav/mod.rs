//! WebDAV at `/dav/` (stub).
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use super::Web;
use super::body::{Reply, plain};

pub mod lock;

/// Answers a request under `/dav`.
pub async fn handle(_req: Request<Incoming>, _web: &Arc<Web>) -> Reply {
    plain(StatusCode::NOT_IMPLEMENTED, "not yet\n")
}
