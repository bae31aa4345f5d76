//! QR codes of links, as SVG, for the page's share dialog: a phone reads the link off the
//! screen. `GET /.taojie/qr.svg?text=URL` (URL form-encoded); the text is at most
//! [`MAX_TEXT`] bytes, and the image is drawn here, nothing fetched from elsewhere.
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use qrcodegen::{QrCode, QrCodeEcc};

use super::body::{Reply, plain, whole};
use crate::web::query_param;

/// Longest text encoded.
pub const MAX_TEXT: usize = 1024;

/// The answer to `GET /.taojie/qr.svg?text=...`.
pub fn reply<B>(req: &Request<B>) -> Reply {
    let raw = query_param(req.uri().query(), "text").unwrap_or("");
    let text: String = form_urlencoded::parse(format!("t={raw}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if text.is_empty() || text.len() > MAX_TEXT {
        return plain(
            StatusCode::BAD_REQUEST,
            format!("text=1..{MAX_TEXT} bytes\n"),
        );
    }
    let Ok(code) = QrCode::encode_text(&text, QrCodeEcc::Medium) else {
        return plain(StatusCode::BAD_REQUEST, "too long for a QR code\n");
    };
    let mut r = Response::new(whole(svg(&code)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml"),
    );
    crate::web::secured(r)
}

/// The code as an SVG: one path of unit squares, a quiet zone of four modules.
pub fn svg(code: &QrCode) -> String {
    let n = code.size();
    let border = 4;
    let mut path = String::new();
    for y in 0..n {
        for x in 0..n {
            if code.get_module(x, y) {
                path.push_str(&format!("M{},{}h1v1h-1z", x + border, y + border));
            }
        }
    }
    let dim = n + 2 * border;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {dim} {dim}\" \
         shape-rendering=\"crispEdges\"><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\
         <path d=\"{path}\" fill=\"#000\"/></svg>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_svg_with_the_three_finder_squares() {
        let code = QrCode::encode_text("http://127.0.0.1:9081/", QrCodeEcc::Medium).unwrap();
        let s = svg(&code);
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
        // The top-left finder's corner module, shifted by the border.
        assert!(s.contains("M4,4h1v1h-1z"));
        assert!(code.get_module(0, 0) && code.get_module(code.size() - 1, 0));
    }
}
