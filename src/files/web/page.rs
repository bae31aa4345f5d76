//! The page's own files, built into the binary (nothing is fetched from elsewhere): one HTML
//! shell for every folder's URL, its script and style under `/.taojie/`. The shell holds no
//! data; the script asks the folder's listing (`?json`) and shows it, so one page serves
//! every folder and every share link.
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::body::{Reply, plain, whole};

/// The shell of every folder's page.
const SHELL: &str = include_str!("page/index.html");

/// The page's files under `/.taojie/`: (name, type, bytes).
const ASSETS: [(&str, &str, &str); 3] = [
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("page/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("page/style.css"),
    ),
    ("icon.svg", "image/svg+xml", include_str!("page/icon.svg")),
];

/// The folder page's shell.
pub fn shell<B>(req: &Request<B>) -> Reply {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
    }
    file("text/html; charset=utf-8", SHELL)
}

/// `/.taojie/NAME`, if it is one of the page's files.
pub fn asset<B>(req: &Request<B>, name: &str) -> Option<Reply> {
    let (_, kind, body) = ASSETS.iter().find(|(n, _, _)| *n == name)?;
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return Some(plain(StatusCode::METHOD_NOT_ALLOWED, "GET only\n"));
    }
    Some(file(kind, body))
}

fn file(kind: &'static str, body: &'static str) -> Reply {
    let mut r = Response::new(whole(body.as_bytes()));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    crate::web::secured(r)
}
