//! `PROPFIND` (a resource's properties, and with `Depth: 1` its members') and `PROPPATCH`
//! (refused property by property: this server keeps no dead properties).
use std::sync::Arc;

use hyper::StatusCode;

use super::lock::Locks;
use super::xml::{Elem, escape};
use super::{Web, multistatus};
use crate::files::names::RelName;
use crate::files::store::{Entry, Kind};
use crate::files::web::body::io_reply;
use crate::files::web::body::{Reply, plain};
use crate::files::web::disk::blocking;
use crate::files::web::download::{content_type, http_date};
use crate::files::web::path::href;

/// The live properties this server knows (all in `DAV:`).
const KNOWN: [&str; 9] = [
    "resourcetype",
    "getcontentlength",
    "getlastmodified",
    "creationdate",
    "getetag",
    "getcontenttype",
    "displayname",
    "supportedlock",
    "lockdiscovery",
];

/// What a PROPFIND asks.
enum Asked {
    All,
    Names,
    Some(Vec<Elem>),
}

/// `PROPFIND` of `name` with `depth` (0 or 1) and the request `body`.
pub async fn propfind(web: &Arc<Web>, name: Option<RelName>, depth: u8, body: &[u8]) -> Reply {
    let asked = match super::xml::parse(body) {
        Err(e) => return plain(StatusCode::BAD_REQUEST, format!("{e}\n")),
        Ok(None) => Asked::All,
        Ok(Some(root)) if !root.is("propfind") => {
            return plain(StatusCode::BAD_REQUEST, "a propfind element is expected\n");
        }
        Ok(Some(root)) => {
            if root.child("propname").is_some() {
                Asked::Names
            } else if let Some(p) = root.child("prop") {
                Asked::Some(p.children.clone())
            } else {
                Asked::All
            }
        }
    };
    let root = web.state.root.clone();
    let n = name.clone();
    let found = blocking(move || {
        let me = root.stat(n.as_ref())?;
        let kids = if depth > 0 && me.kind == Kind::Dir {
            root.list(n.as_ref())?
        } else {
            Vec::new()
        };
        Ok((me, kids))
    })
    .await;
    let (me, kids) = match found {
        Ok(f) => f,
        Err(e) => return io_reply(&e),
    };
    if me.kind == Kind::Other {
        return plain(StatusCode::NOT_FOUND, "not a file or a folder\n");
    }
    let base = name
        .as_ref()
        .map_or(String::new(), |n| n.as_str().to_string());
    let mut out = String::new();
    out.push_str(&response(&web.locks, &base, &me, &asked));
    for k in kids.iter().filter(|k| k.kind != Kind::Other) {
        let rel = if base.is_empty() {
            k.name.clone()
        } else {
            format!("{base}/{}", k.name)
        };
        out.push_str(&response(&web.locks, &rel, k, &asked));
    }
    multistatus(&out)
}

/// One `response` element: `rel`'s properties as asked.
fn response(locks: &Locks, rel: &str, e: &Entry, asked: &Asked) -> String {
    let dir = e.kind == Kind::Dir;
    let link = href(super::PREFIX, rel, dir);
    let mut found = String::new();
    let mut missing = String::new();
    match asked {
        Asked::Names => KNOWN
            .iter()
            .for_each(|p| found.push_str(&format!("<D:{p}/>"))),
        Asked::All => {
            for p in KNOWN {
                if let Some(v) = value(locks, rel, e, p, &link) {
                    found.push_str(&v);
                }
            }
        }
        Asked::Some(props) => {
            for p in props {
                match (p.ns.as_str(), value(locks, rel, e, &p.name, &link)) {
                    (super::xml::DAV, Some(v)) => found.push_str(&v),
                    _ => missing.push_str(
                        &Elem {
                            children: vec![],
                            text: String::new(),
                            ..p.clone()
                        }
                        .to_xml(),
                    ),
                }
            }
        }
    }
    let mut out = format!("<D:response><D:href>{}</D:href>", escape(&link));
    if !found.is_empty() || missing.is_empty() {
        out.push_str(&format!(
            "<D:propstat><D:prop>{found}</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>"
        ));
    }
    if !missing.is_empty() {
        out.push_str(&format!(
            "<D:propstat><D:prop>{missing}</D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>"
        ));
    }
    out.push_str("</D:response>");
    out
}

/// The property `p` of `e`, as an element; `None` when it has none.
fn value(locks: &Locks, rel: &str, e: &Entry, p: &str, link: &str) -> Option<String> {
    let dir = e.kind == Kind::Dir;
    let secs = e.mtime_ns.div_euclid(1_000_000_000);
    Some(match p {
        "resourcetype" if dir => "<D:resourcetype><D:collection/></D:resourcetype>".into(),
        "resourcetype" => "<D:resourcetype/>".into(),
        "getcontentlength" if !dir => {
            format!("<D:getcontentlength>{}</D:getcontentlength>", e.size)
        }
        "getlastmodified" => format!("<D:getlastmodified>{}</D:getlastmodified>", http_date(secs)),
        "creationdate" => {
            let t = chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default();
            format!(
                "<D:creationdate>{}</D:creationdate>",
                t.format("%Y-%m-%dT%H:%M:%SZ")
            )
        }
        "getetag" if !dir => format!("<D:getetag>\"{:x}-{:x}\"</D:getetag>", e.size, e.mtime_ns),
        "getcontenttype" if !dir => format!(
            "<D:getcontenttype>{}</D:getcontenttype>",
            content_type(&e.name)
        ),
        "displayname" => format!("<D:displayname>{}</D:displayname>", escape(&e.name)),
        "supportedlock" => {
            "<D:supportedlock><D:lockentry><D:lockscope><D:exclusive/></D:lockscope>\
             <D:locktype><D:write/></D:locktype></D:lockentry><D:lockentry><D:lockscope><D:shared/>\
             </D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry></D:supportedlock>"
                .into()
        }
        "lockdiscovery" => {
            let active: String = locks
                .covering(rel)
                .iter()
                .map(|(t, l)| l.xml(t, &href(super::PREFIX, &l.path, false)))
                .collect();
            let _ = link;
            format!("<D:lockdiscovery>{active}</D:lockdiscovery>")
        }
        _ => return None,
    })
}

/// `PROPPATCH`: every property named is refused (`403`): no dead properties are kept, and
/// the live ones are the file system's.
pub fn proppatch(name: Option<&RelName>, dir: bool, body: &[u8]) -> Reply {
    let root = match super::xml::parse(body) {
        Ok(Some(r)) if r.is("propertyupdate") => r,
        Ok(_) => {
            return plain(
                StatusCode::BAD_REQUEST,
                "a propertyupdate element is expected\n",
            );
        }
        Err(e) => return plain(StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    let mut props = String::new();
    for change in &root.children {
        if let Some(prop) = change.child("prop") {
            for p in &prop.children {
                props.push_str(
                    &Elem {
                        children: vec![],
                        text: String::new(),
                        ..p.clone()
                    }
                    .to_xml(),
                );
            }
        }
    }
    let link = href(super::PREFIX, name.map_or("", |n| n.as_str()), dir);
    multistatus(&format!(
        "<D:response><D:href>{}</D:href><D:propstat><D:prop>{props}</D:prop>\
         <D:status>HTTP/1.1 403 Forbidden</D:status></D:propstat></D:response>",
        escape(&link)
    ))
}
