//! DDDS cases shared by the in-process tests (`tests/ddds.rs`) and the same cases over
//! the wire from Knot (`tests/upstream.rs`). The application unique string is
//! `+441632960001`; a gateway `+44` → `sip:{e164}@gw.example.net;user=phone` exists.
#![allow(dead_code)]

/// (regexp, expected contact or `None` when the record is skipped, skip reason)
pub const REGEXP_FORMS: &[(&str, Option<&str>, Option<&str>)] = &[
    (
        "!^.*$!sip:bang@example.net!",
        Some("sip:bang@example.net"),
        None,
    ),
    (
        "/^.*$/sip:slash@example.net/",
        Some("sip:slash@example.net"),
        None,
    ),
    (
        "#^.*$#sip:hash@example.net#",
        Some("sip:hash@example.net"),
        None,
    ),
    (
        r"!^\+(.*)$!sip:\1@example.net!",
        Some("sip:441632960001@example.net"),
        None,
    ),
    (
        r"!^\+(44)(1632)(.*)$!sip:\3-\2-\1@example.net!",
        Some("sip:960001-1632-44@example.net"),
        None,
    ),
    (
        r"!^\+44(.*)$!sip:0\1@EXAMPLE.net!i",
        Some("sip:01632960001@EXAMPLE.net"),
        None,
    ),
    // escaped delimiter in the replacement: `\!` is a literal `!`
    (
        r"!^\+(.*)$!sip:\1\!x@example.net!",
        Some("sip:441632960001!x@example.net"),
        None,
    ),
    // escaped delimiter in the pattern
    (
        r"#^\+44\#?(.*)$#sip:\1@example.net#",
        Some("sip:1632960001@example.net"),
        None,
    ),
    (r"!^\+1(.*)$!sip:\1@us.example.net!", None, Some("no_match")),
    (r"!^.*$!sip:\0@example.net!", None, Some("regexp")),
    (r"!^.*$!sip:\2@example.net!", None, Some("regexp")),
    ("!^(.*$!sip:x@example.net!", None, Some("regexp")),
    ("!^.*$!sip:x@example.net!x", None, Some("regexp")),
    ("!^.*$!not a uri!", None, Some("uri")),
];

/// (service field, regexp, expected first contact or `None`, skip reason)
pub const SERVICE_MATCHING: &[(&str, &str, Option<&str>, Option<&str>)] = &[
    (
        "E2U+sip",
        "!^.*$!sip:a@x.example!",
        Some("sip:a@x.example"),
        None,
    ),
    (
        "e2u+SIP",
        "!^.*$!sip:a@x.example!",
        Some("sip:a@x.example"),
        None,
    ),
    (
        "sip+E2U",
        "!^.*$!sip:a@x.example!",
        Some("sip:a@x.example"),
        None,
    ),
    (
        "E2U+pstn:sip",
        "!^.*$!sip:a@x.example!",
        Some("sip:a@x.example"),
        None,
    ),
    (
        "E2U+PSTN:TEL",
        "!^.*$!tel:+441632960001!",
        Some("sip:+441632960001@gw.example.net;user=phone"),
        None,
    ),
    (
        "E2U+h323+sip",
        "!^.*$!sip:compound@x.example!",
        Some("sip:compound@x.example"),
        None,
    ),
    // a subtype that is not configured does not match its bare type
    (
        "E2U+pstn:mailto",
        "!^.*$!sip:a@x.example!",
        None,
        Some("service"),
    ),
    (
        "E2U+pstn",
        "!^.*$!tel:+441632960001!",
        None,
        Some("service"),
    ),
    (
        "E2U+email:mailto",
        "!^.*$!mailto:a@x.example!",
        None,
        Some("service"),
    ),
    ("E2U", "!^.*$!sip:a@x.example!", None, Some("service")),
    ("", "!^.*$!sip:a@x.example!", None, Some("service")),
    // the result must fit the service's scheme
    ("E2U+sip", "!^.*$!tel:+441632960001!", None, Some("uri")),
    ("E2U+pstn:tel", "!^.*$!sip:a@x.example!", None, Some("uri")),
    (
        "E2U+pstn:tel",
        "!^.*$!tel:960001;phone-context=example.com!",
        None,
        Some("uri"),
    ),
];
