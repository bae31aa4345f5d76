//! The XML of WebDAV bodies: a request's body read into a small tree (namespace-aware, with
//! quick-xml; no DTD or entity is ever expanded, and body size and depth are bounded), and
//! the escaping and writing of the multistatus answers.
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

/// The DAV: namespace.
pub const DAV: &str = "DAV:";
/// Largest request body read as XML.
pub const MAX_BODY: usize = 64 * 1024;
/// Deepest element nesting accepted.
const MAX_DEPTH: usize = 32;

/// One element: its namespace and local name, its children and its text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Elem {
    /// The namespace URI ("" when unbound).
    pub ns: String,
    /// The local name.
    pub name: String,
    /// Child elements, in order.
    pub children: Vec<Elem>,
    /// The text directly inside, trimmed.
    pub text: String,
}

impl Elem {
    /// Whether this is `DAV:` `name`.
    pub fn is(&self, name: &str) -> bool {
        self.ns == DAV && self.name == name
    }

    /// The first child that is `DAV:` `name`.
    pub fn child(&self, name: &str) -> Option<&Elem> {
        self.children.iter().find(|c| c.is(name))
    }

    /// The element written back as XML (prefixes of its own).
    pub fn to_xml(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        let tag = if self.ns.is_empty() {
            escape(&self.name)
        } else {
            format!("x:{} xmlns:x=\"{}\"", escape(&self.name), escape(&self.ns))
        };
        let close = if self.ns.is_empty() {
            escape(&self.name)
        } else {
            format!("x:{}", escape(&self.name))
        };
        if self.children.is_empty() && self.text.is_empty() {
            out.push_str(&format!("<{tag}/>"));
            return;
        }
        out.push_str(&format!("<{tag}>"));
        out.push_str(&escape(&self.text));
        for c in &self.children {
            c.write(out);
        }
        out.push_str(&format!("</{close}>"));
    }
}

/// Parses a request body into its root element; `None` for an empty body.
pub fn parse(body: &[u8]) -> Result<Option<Elem>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_string())?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    let mut r = NsReader::from_str(text);
    let mut stack: Vec<Elem> = Vec::new();
    let mut root = None;
    loop {
        let (ns, ev) = r
            .read_resolved_event()
            .map_err(|e| format!("bad XML: {e}"))?;
        let ns = match ns {
            // The URI as written in its attribute: `&amp;` and the like still escaped.
            ResolveResult::Bound(n) => quick_xml::escape::unescape(n.0)
                .map_err(|e| format!("bad XML namespace: {e}"))?
                .into_owned(),
            _ => String::new(),
        };
        match ev {
            Event::Start(e) | Event::Empty(e) if stack.len() >= MAX_DEPTH => {
                let _ = e;
                return Err("XML nested too deep".into());
            }
            Event::Start(e) => {
                let name = AsRef::<str>::as_ref(&e.local_name()).to_string();
                stack.push(Elem {
                    ns,
                    name,
                    ..Default::default()
                });
            }
            Event::Empty(e) => {
                let name = AsRef::<str>::as_ref(&e.local_name()).to_string();
                let el = Elem {
                    ns,
                    name,
                    ..Default::default()
                };
                match stack.last_mut() {
                    Some(top) => top.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::End(_) => {
                let mut el = stack.pop().ok_or("unbalanced XML")?;
                el.text = el.text.trim().to_string();
                match stack.last_mut() {
                    Some(top) => top.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.clone().into_inner());
                }
            }
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref().map_err(|e| format!("bad XML: {e}"))? {
                    Some(c) => c,
                    None => match AsRef::<str>::as_ref(&r) {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        other => return Err(format!("unknown entity &{other};")),
                    },
                };
                if let Some(top) = stack.last_mut() {
                    top.text.push(c);
                }
            }
            Event::DocType(_) => return Err("a DOCTYPE is not accepted".into()),
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err("unbalanced XML".into());
    }
    root.map(Some).ok_or_else(|| "no element".to_string())
}

/// Text escaped for XML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_resolve_and_hostile_xml_is_refused() {
        let body = br#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:o="http://owncloud.org/ns"><D:prop><D:getetag/><o:checksums/></D:prop></D:propfind>"#;
        let root = parse(body).unwrap().unwrap();
        assert!(root.is("propfind"));
        let prop = root.child("prop").unwrap();
        assert_eq!(prop.children.len(), 2);
        assert!(prop.children[0].is("getetag"));
        assert_eq!(prop.children[1].ns, "http://owncloud.org/ns");
        assert_eq!(parse(b"  ").unwrap(), None);
        let xxe = br#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>"#;
        assert!(parse(xxe).is_err());
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(parse(deep.as_bytes()).is_err());
        assert!(parse(b"<a><b></a>").is_err());
    }

    #[test]
    fn owner_round_trips() {
        let root = parse(br#"<D:owner xmlns:D="DAV:"><D:href>mailto:a&amp;b</D:href></D:owner>"#)
            .unwrap()
            .unwrap();
        let again = parse(root.to_xml().as_bytes()).unwrap().unwrap();
        assert_eq!(root, again);
        assert_eq!(escape("<&>\"'"), "&lt;&amp;&gt;&quot;&apos;");
        // A namespace is the URI its attribute means, escapes resolved.
        let e = parse(br#"<x:a xmlns:x="urn:&lt;b&amp;c"/>"#)
            .unwrap()
            .unwrap();
        assert_eq!(e.ns, "urn:<b&c");
        assert_eq!(parse(e.to_xml().as_bytes()).unwrap(), Some(e));
    }

    mod props {
        use proptest::prelude::*;

        use super::super::{Elem, parse};

        fn elem() -> impl Strategy<Value = Elem> {
            let leaf = (
                prop_oneof![
                    Just(String::new()),
                    Just("DAV:".to_string()),
                    "urn:[a-z&<\"]{1,6}"
                ],
                "[a-z][a-z0-9_-]{0,6}",
                "([^\\s\\p{Cc}]([^\\p{Cc}]{0,8}[^\\s\\p{Cc}])?)?",
            )
                .prop_map(|(ns, name, text)| Elem {
                    ns,
                    name,
                    children: Vec::new(),
                    text,
                });
            leaf.prop_recursive(4, 16, 4, |inner| {
                (inner.clone(), proptest::collection::vec(inner, 0..4)).prop_map(
                    |(mut e, children)| {
                        e.children = children;
                        e
                    },
                )
            })
        }

        proptest! {
            /// Whatever a client sends, the reader answers (a tree or a refusal) and never
            /// panics.
            #[test]
            fn any_body_is_read_or_refused(body in proptest::collection::vec(any::<u8>(), 0..300)) {
                let _ = parse(&body);
            }

            /// Bodies that look like XML, with entities, DTDs and odd nesting.
            #[test]
            fn xmlish_bodies_are_read_or_refused(body in "(<[/!?]?[a-zD:]{0,4}( xmlns(:D)?=\"[a-zD:]{0,4}\")?/?>|&[a-z#0-9]{0,5};|[a-z ]{0,3}){0,12}") {
                let _ = parse(body.as_bytes());
            }

            /// What this server writes, it reads back the same.
            #[test]
            fn written_elements_read_back_the_same(e in elem()) {
                prop_assert_eq!(parse(e.to_xml().as_bytes()).unwrap(), Some(e));
            }
        }
    }
}
