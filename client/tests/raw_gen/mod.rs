//! Generators for the raw reader's property tests: valid HTTP/1.1 responses rendered from a
//! random description (header-name case, OWS, bare-LF line ends, 1xx heads, obs-fold, chunk
//! sizes in either hex case with leading zeros, chunk extensions, trailers) together with what
//! reading them must yield, and inputs that are mostly wrong (arbitrary bytes, bytes from the
//! framing alphabet, valid messages with a few bytes flipped, inserted or dropped).

use leak_client::raw::wire::{Framing, Head};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};

/// A rendered response and what a correct reader makes of it.
#[derive(Debug, Clone)]
pub struct Generated {
    pub raw: Vec<u8>,
    /// Whether the request was HEAD (its response has no body whatever the fields say).
    pub head_request: bool,
    /// Bytes of the head(s), interim 1xx heads included: the body starts here.
    pub head_len: usize,
    pub head: Head,
    /// The decoded body.
    pub body: Vec<u8>,
}

const TCHAR: &[u8] =
    b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Bytes that matter to the framing grammar, for inputs that get further than random bytes do.
pub const FRAMING_BYTES: &[u8] = b"0123456789abcdefABCDEFxz;=\"\\ \t:\r\n\r\n,HTP/.";

fn token(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(select(TCHAR), 1..max)
}

/// field-vchar, SP, HTAB and obs-text: anything a field value may hold.
fn value_byte() -> impl Strategy<Value = u8> {
    prop_oneof![Just(b'\t'), 0x20u8..0x7f, 0x80u8..=0xff]
}

fn value(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(value_byte(), 0..max)
}

/// A non-empty run of field-value bytes, up to `max` long.
pub fn value_of_len(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(value_byte(), 1..max)
}

const OWS: &[&[u8]] = &[b"", b" ", b"\t", b" \t "];

fn ows() -> impl Strategy<Value = &'static [u8]> {
    select(OWS)
}

/// `name` with each letter's case taken from a bit of `mask`.
fn recase(name: &str, mask: u64) -> Vec<u8> {
    name.bytes()
        .enumerate()
        .map(|(i, b)| {
            if mask >> (i % 64) & 1 == 1 {
                b.to_ascii_uppercase()
            } else {
                b.to_ascii_lowercase()
            }
        })
        .collect()
}

/// An ordinary (non-framing) field, possibly continued by obs-fold lines.
#[derive(Debug, Clone)]
struct Field {
    name: Vec<u8>,
    value: Vec<u8>,
    folds: Vec<(u8, Vec<u8>)>,
}

fn field() -> impl Strategy<Value = Field> {
    (
        token(16),
        value(24),
        vec((select(&b" \t"[..]), value(12)), 0..2),
    )
        .prop_map(|(name, value, folds)| {
            // The `X-` prefix keeps generated names clear of the framing fields.
            let mut prefixed = b"X-".to_vec();
            prefixed.extend_from_slice(&name);
            Field {
                name: prefixed,
                value,
                folds,
            }
        })
}

/// One chunk extension: `BWS ; BWS name [BWS = BWS value] BWS`.
#[derive(Debug, Clone)]
struct Ext {
    before: &'static [u8],
    name: Vec<u8>,
    value: Option<ExtValue>,
    around_eq: &'static [u8],
    after: &'static [u8],
}

#[derive(Debug, Clone)]
enum ExtValue {
    Token(Vec<u8>),
    /// The quoted string's content as sent (qdtext and quoted pairs).
    Quoted(Vec<u8>),
}

fn qdtext() -> impl Strategy<Value = Vec<u8>> {
    let plain = prop_oneof![
        Just(b'\t'),
        Just(b' '),
        Just(0x21u8),
        0x23u8..=0x5b,
        0x5du8..=0x7e,
        0x80u8..=0xff
    ]
    .prop_map(|b| vec![b]);
    let pair = value_byte().prop_map(|b| vec![b'\\', b]);
    vec(prop_oneof![3 => plain, 1 => pair], 0..10).prop_map(|parts| parts.concat())
}

fn ext() -> impl Strategy<Value = Ext> {
    let value = prop_oneof![
        Just(None),
        token(8).prop_map(|t| Some(ExtValue::Token(t))),
        qdtext().prop_map(|q| Some(ExtValue::Quoted(q))),
    ];
    (ows(), token(8), value, ows(), ows()).prop_map(|(before, name, value, around_eq, after)| Ext {
        before,
        name,
        value,
        around_eq,
        after,
    })
}

#[derive(Debug, Clone)]
struct Chunk {
    data: Vec<u8>,
    upper: bool,
    zeros: usize,
    exts: Vec<Ext>,
}

fn chunk() -> impl Strategy<Value = Chunk> {
    let data = prop_oneof![
        4 => vec(any::<u8>(), 1..40),
        1 => vec(any::<u8>(), 200..600),
    ];
    (data, any::<bool>(), 0usize..3, vec(ext(), 0..3)).prop_map(|(data, upper, zeros, exts)| {
        Chunk {
            data,
            upper,
            zeros,
            exts,
        }
    })
}

/// How the final response's body is framed.
#[derive(Debug, Clone)]
enum BodySpec {
    /// `Content-Length`, with leading zeros, repeated as a second field or as a list.
    Length {
        body: Vec<u8>,
        zeros: usize,
        repeat: u8,
    },
    /// `Transfer-Encoding: [gzip, ]chunked`, possibly beside a `Content-Length`.
    Chunked {
        chunks: Vec<Chunk>,
        last_zeros: usize,
        last_exts: Vec<Ext>,
        trailers: Vec<Field>,
        gzip_first: bool,
        with_length: Option<u64>,
    },
    /// No length: the body runs to the end of the connection, or a final coding other than
    /// chunked says the same.
    Close {
        body: Vec<u8>,
        coding: Option<&'static str>,
    },
    /// 204 or 304, possibly with a `Content-Length` that means nothing.
    Empty { status: u16, length: Option<u64> },
}

fn body_spec() -> impl Strategy<Value = BodySpec> {
    prop_oneof![
        (vec(any::<u8>(), 0..300), 0usize..3, 0u8..3).prop_map(|(body, zeros, repeat)| {
            BodySpec::Length {
                body,
                zeros,
                repeat,
            }
        }),
        (
            vec(chunk(), 0..5),
            0usize..3,
            vec(ext(), 0..2),
            vec(field(), 0..3),
            any::<bool>(),
            proptest::option::of(0u64..1000),
        )
            .prop_map(
                |(chunks, last_zeros, last_exts, trailers, gzip_first, with_length)| {
                    BodySpec::Chunked {
                        chunks,
                        last_zeros,
                        last_exts,
                        trailers,
                        gzip_first,
                        with_length,
                    }
                }
            ),
        (
            vec(any::<u8>(), 0..300),
            select(&[None, Some("gzip"), Some("chunked, gzip")][..])
        )
            .prop_map(|(body, coding)| BodySpec::Close { body, coding }),
        (select(&[204u16, 304][..]), proptest::option::of(0u64..1000))
            .prop_map(|(status, length)| BodySpec::Empty { status, length }),
    ]
}

/// Writes lines, ending each with CRLF or a bare LF as the bits of `lf_mask` say.
struct Writer {
    raw: Vec<u8>,
    lf_mask: u64,
    line: u32,
}

impl Writer {
    fn put(&mut self, bytes: &[u8]) {
        self.raw.extend_from_slice(bytes);
    }

    fn eol(&mut self) {
        let lf = self.lf_mask >> (self.line % 64) & 1 == 1;
        self.put(if lf { b"\n" } else { b"\r\n" });
        self.line += 1;
    }

    fn field(&mut self, f: &Field, ows_before: &[u8], ows_after: &[u8]) {
        self.put(&f.name);
        self.put(b":");
        self.put(ows_before);
        self.put(&f.value);
        self.put(ows_after);
        for (ws, v) in &f.folds {
            self.eol();
            self.put(&[*ws]);
            self.put(v);
        }
        self.eol();
    }

    fn chunked(
        &mut self,
        chunks: &[Chunk],
        last_zeros: usize,
        last_exts: &[Ext],
        trailers: &[Field],
    ) {
        for c in chunks {
            self.size_line(c.data.len(), c.upper, c.zeros, &c.exts);
            self.put(&c.data);
            self.eol();
        }
        // The last chunk: `last_zeros` zeros, then the one `size_line` always writes.
        self.size_line(0, false, last_zeros, last_exts);
        for t in trailers {
            self.field(t, b" ", b"");
        }
        self.eol();
    }

    fn size_line(&mut self, size: usize, upper: bool, zeros: usize, exts: &[Ext]) {
        self.put(&b"0".repeat(zeros));
        let hex = if upper {
            format!("{size:X}")
        } else {
            format!("{size:x}")
        };
        self.put(hex.as_bytes());
        for e in exts {
            self.put(e.before);
            self.put(b";");
            self.put(e.before);
            self.put(&e.name);
            match &e.value {
                None => {}
                Some(v) => {
                    self.put(e.around_eq);
                    self.put(b"=");
                    self.put(e.around_eq);
                    match v {
                        ExtValue::Token(t) => self.put(t),
                        ExtValue::Quoted(q) => {
                            self.put(b"\"");
                            self.put(q);
                            self.put(b"\"");
                        }
                    }
                }
            }
            self.put(e.after);
        }
        self.eol();
    }
}

/// Everything about a response apart from its body framing.
#[derive(Debug, Clone)]
struct HeadSpec {
    leading_empty: usize,
    interim: Vec<(u16, Vec<Field>)>,
    minor: u8,
    status: u16,
    reason: Option<Vec<u8>>,
    fields: Vec<Field>,
    /// `Connection` options, each with its letters' case mask.
    connection: Option<Vec<(&'static str, u64)>>,
    /// Case masks for the framing field names and values.
    case: [u64; 3],
    ows: (&'static [u8], &'static [u8]),
    /// Where each framing field goes among the ordinary ones.
    places: [Index; 4],
    lf_mask: u64,
    head_request: bool,
}

fn head_spec() -> impl Strategy<Value = HeadSpec> {
    let interim = vec((select(&[100u16, 102, 103][..]), vec(field(), 0..2)), 0..2);
    let connection = proptest::option::of(vec(
        (
            select(&["close", "keep-alive", "upgrade", "x-other"][..]),
            any::<u64>(),
        ),
        0..3,
    ));
    (
        (0usize..3, interim, 0u8..10, 200u16..600),
        (
            proptest::option::of(value(20)),
            vec(field(), 0..6),
            connection,
        ),
        (any::<[u64; 3]>(), (ows(), ows()), any::<[Index; 4]>()),
        (
            prop_oneof![3 => Just(0u64), 1 => any::<u64>()],
            prop::bool::weighted(0.1),
        ),
    )
        .prop_map(
            |(
                (leading_empty, interim, minor, status),
                (reason, fields, connection),
                (case, ows, places),
                (lf_mask, head_request),
            )| HeadSpec {
                leading_empty,
                interim,
                minor,
                status,
                reason,
                fields,
                connection,
                case,
                ows,
                places,
                lf_mask,
                head_request,
            },
        )
}

/// A valid response and what reading it must yield.
pub fn response() -> impl Strategy<Value = Generated> {
    (head_spec(), body_spec()).prop_map(|(h, b)| render(h, b))
}

fn render(mut h: HeadSpec, b: BodySpec) -> Generated {
    // Transfer codings do not exist in HTTP/1.0 (and are an error there).
    let uses_te = matches!(
        b,
        BodySpec::Chunked { .. }
            | BodySpec::Close {
                coding: Some(_),
                ..
            }
    );
    if uses_te && h.minor == 0 {
        h.minor = 1;
    }
    if h.status == 204 || h.status == 304 {
        h.status = 200;
    }
    let mut w = Writer {
        raw: Vec::new(),
        lf_mask: h.lf_mask,
        line: 0,
    };
    for _ in 0..h.leading_empty {
        w.eol();
    }
    for (status, fields) in &h.interim {
        w.put(format!("HTTP/1.1 {status} Interim").as_bytes());
        w.eol();
        for f in fields {
            w.field(f, b" ", b"");
        }
        w.eol();
    }

    // Framing fields, as complete lines without their line end.
    let mut framing_lines: Vec<Vec<u8>> = Vec::new();
    let (ows_before, ows_after) = h.ows;
    let mut line = |name: &str, mask: u64, value: &[u8]| {
        let mut l = recase(name, mask);
        l.push(b':');
        l.extend_from_slice(ows_before);
        l.extend_from_slice(value);
        l.extend_from_slice(ows_after);
        framing_lines.push(l);
    };
    let (status, framing, body) = match &b {
        BodySpec::Length {
            body,
            zeros,
            repeat,
        } => {
            let n = format!("{}{}", "0".repeat(*zeros), body.len());
            match repeat {
                0 => line("Content-Length", h.case[0], n.as_bytes()),
                1 => {
                    line("Content-Length", h.case[0], n.as_bytes());
                    line("content-length", h.case[1], n.as_bytes());
                }
                _ => line("Content-Length", h.case[0], format!("{n} , {n}").as_bytes()),
            }
            (
                h.status,
                Framing::ContentLength(body.len() as u64),
                body.clone(),
            )
        }
        BodySpec::Chunked {
            chunks,
            gzip_first,
            with_length,
            ..
        } => {
            let mut coding = if *gzip_first {
                b"gzip, ".to_vec()
            } else {
                Vec::new()
            };
            coding.extend_from_slice(&recase("chunked", h.case[1]));
            line("Transfer-Encoding", h.case[0], &coding);
            if let Some(n) = with_length {
                line("Content-Length", h.case[2], n.to_string().as_bytes());
            }
            let body = chunks.iter().flat_map(|c| c.data.iter().copied()).collect();
            (h.status, Framing::Chunked, body)
        }
        BodySpec::Close { body, coding } => {
            if let Some(coding) = coding {
                line("Transfer-Encoding", h.case[0], coding.as_bytes());
            }
            (h.status, Framing::CloseDelimited, body.clone())
        }
        BodySpec::Empty { status, length } => {
            if let Some(n) = length {
                line("Content-Length", h.case[0], n.to_string().as_bytes());
            }
            (*status, Framing::NoBody, Vec::new())
        }
    };
    let (mut close, mut keep_alive_option) = (false, false);
    if let Some(options) = &h.connection {
        let value: Vec<Vec<u8>> = options
            .iter()
            .map(|(option, mask)| recase(option, *mask))
            .collect();
        close = options.iter().any(|(o, _)| *o == "close");
        keep_alive_option = options.iter().any(|(o, _)| *o == "keep-alive");
        line("Connection", h.case[2], &value.join(&b", "[..]));
    }

    w.put(format!("HTTP/1.{} {status}", h.minor).as_bytes());
    if let Some(reason) = &h.reason {
        w.put(b" ");
        w.put(reason);
    }
    w.eol();
    // Ordinary fields (each with its folds) and framing fields, interleaved.
    enum Slot {
        Ordinary(usize),
        Framing(usize),
    }
    let mut slots: Vec<Slot> = (0..h.fields.len()).map(Slot::Ordinary).collect();
    for (i, place) in h.places.iter().enumerate().take(framing_lines.len()) {
        slots.insert(place.index(slots.len() + 1), Slot::Framing(i));
    }
    for slot in slots {
        match slot {
            Slot::Ordinary(i) => w.field(&h.fields[i], ows_before, ows_after),
            Slot::Framing(i) => {
                w.put(&framing_lines[i]);
                w.eol();
            }
        }
    }
    w.eol();
    let head_len = w.raw.len();

    let framing = if h.head_request {
        Framing::NoBody
    } else {
        framing
    };
    let mut keep_alive = if h.minor == 0 {
        keep_alive_option && !close
    } else {
        !close
    };
    let chunked_with_length = matches!(
        b,
        BodySpec::Chunked {
            with_length: Some(_),
            ..
        }
    );
    if framing == Framing::CloseDelimited || (framing == Framing::Chunked && chunked_with_length) {
        keep_alive = false;
    }
    let body = if framing == Framing::NoBody {
        Vec::new()
    } else {
        body
    };

    if framing != Framing::NoBody {
        match &b {
            BodySpec::Length { body, .. } | BodySpec::Close { body, .. } => w.put(body),
            BodySpec::Chunked {
                chunks,
                last_zeros,
                last_exts,
                trailers,
                ..
            } => w.chunked(chunks, *last_zeros, last_exts, trailers),
            BodySpec::Empty { .. } => {}
        }
    }
    Generated {
        raw: w.raw,
        head_request: h.head_request,
        head_len,
        head: Head {
            status,
            minor: h.minor,
            framing,
            keep_alive,
        },
        body,
    }
}

/// One edit of a message: overwrite, insert or delete a byte at a position.
#[derive(Debug, Clone)]
pub enum Edit {
    Set(Index, u8),
    Insert(Index, u8),
    Delete(Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    let byte = prop_oneof![select(FRAMING_BYTES), any::<u8>()];
    prop_oneof![
        (any::<Index>(), byte.clone()).prop_map(|(i, b)| Edit::Set(i, b)),
        (any::<Index>(), byte).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<Index>().prop_map(Edit::Delete),
    ]
}

/// Applies the edits in order (positions are taken modulo the current length).
pub fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        match *e {
            Edit::Set(ref i, b) if !bytes.is_empty() => {
                let at = i.index(bytes.len());
                bytes[at] = b;
            }
            Edit::Insert(ref i, b) => {
                let at = i.index(bytes.len() + 1);
                bytes.insert(at, b);
            }
            Edit::Delete(ref i) if !bytes.is_empty() => {
                let at = i.index(bytes.len());
                bytes.remove(at);
            }
            _ => {}
        }
    }
    bytes
}

/// Pieces of heads, glued in random order: more of these reach the field parser than random
/// bytes do.
const HEAD_WORDS: &[&[u8]] = &[
    b"HTTP/1.1 ",
    b"HTTP/1.0 ",
    b"200",
    b"100 ",
    b"204",
    b" OK",
    b"Content-Length",
    b"content-length",
    b"Transfer-Encoding",
    b"chunked",
    b"gzip",
    b"Connection",
    b"close",
    b"keep-alive",
    b"X-A",
    b":",
    b": ",
    b",",
    b" ",
    b"\t",
    b"\r\n",
    b"\n",
    b"\r",
    b"\r\n\r\n",
    b"0",
    b"12",
    b"18446744073709551616",
    b"\x00",
    b"\x7f",
    b"\xff",
];

/// Pieces of chunked bodies, glued in random order.
const CHUNK_WORDS: &[&[u8]] = &[
    b"0",
    b"5",
    b"a",
    b"F",
    b"ffffffffffffffff",
    b";",
    b"=",
    b"\"",
    b"\\",
    b" ",
    b"\t",
    b"\r\n",
    b"\n",
    b"\r",
    b"ext",
    b"hello",
    b"X-T: v",
    b":",
    b"\x00",
    b"\xff",
];

fn words(dict: &'static [&'static [u8]], max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(select(dict), 0..max).prop_map(|w| w.concat())
}

/// A chunked body alone (chunks with extensions, the last chunk, trailers) and its data.
pub fn chunked_body() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    (
        vec(chunk(), 0..5),
        0usize..3,
        vec(ext(), 0..2),
        vec(field(), 0..3),
        prop_oneof![3 => Just(0u64), 1 => any::<u64>()],
    )
        .prop_map(|(chunks, last_zeros, last_exts, trailers, lf_mask)| {
            let mut w = Writer {
                raw: Vec::new(),
                lf_mask,
                line: 0,
            };
            w.chunked(&chunks, last_zeros, &last_exts, &trailers);
            let data = chunks.iter().flat_map(|c| c.data.iter().copied()).collect();
            (w.raw, data)
        })
}

/// Bytes that are mostly not a valid response: random, glued head pieces, or a valid response
/// with one to four edits.
pub fn mostly_invalid() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => vec(any::<u8>(), 0..400),
        2 => words(HEAD_WORDS, 60),
        2 => (words(HEAD_WORDS, 40), words(HEAD_WORDS, 40)).prop_map(|(a, b)| {
            [&b"HTTP/1.1 200 OK\r\n"[..], &a, b"\r\n", &b].concat()
        }),
        3 => (response(), vec(edit(), 1..5)).prop_map(|(g, edits)| apply(g.raw, &edits)),
    ]
}

/// Bytes that are mostly not a valid body: random, glued chunk pieces, or a valid chunked body
/// with one to four edits.
pub fn mostly_invalid_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => vec(any::<u8>(), 0..400),
        2 => words(CHUNK_WORDS, 60),
        3 => (chunked_body(), vec(edit(), 1..5)).prop_map(|((raw, _), edits)| apply(raw, &edits)),
    ]
}

/// Any framing, with small and huge lengths.
pub fn framing() -> impl Strategy<Value = Framing> {
    prop_oneof![
        Just(Framing::NoBody),
        (0u64..500).prop_map(Framing::ContentLength),
        any::<u64>().prop_map(Framing::ContentLength),
        Just(Framing::Chunked),
        Just(Framing::CloseDelimited),
    ]
}
