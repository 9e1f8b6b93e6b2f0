//! Replays the conformance corpus (`tests/conformance/responses.json`, shipped with the
//! repository) through the pure response reader — `parse_head` and `BodyReader` — as the raw
//! client would see each case on the wire, in pieces of every size, and scores it like
//! `run_raw_corpus.py` does, but strictly: only documented deviations may take the alternate.

use std::collections::BTreeSet;
use std::path::PathBuf;

use leak_client::raw::wire::{self, BodyReader, Status};

/// Cases where this client deliberately takes the corpus's `alt_expect`, with the reason.
const ALTERNATES: &[(&str, &str)] = &[(
    "go-chunked-and-content-length",
    "RFC 9112 §6.3 rule 3: Transfer-Encoding overrides Content-Length; the response is decoded \
     as chunked and its connection is not reused (the lead's policy for the raw client)",
)];

fn corpus_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/responses.json")
}

fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let digits: Vec<u8> = text
        .bytes()
        .filter(|&c| c != b'=' && !c.is_ascii_whitespace())
        .map(value)
        .collect();
    let mut out = Vec::new();
    for group in digits.chunks(4) {
        let mut acc = 0u32;
        for (i, &d) in group.iter().enumerate() {
            acc |= u32::from(d) << (18 - 6 * i);
        }
        out.extend_from_slice(&acc.to_be_bytes()[1..group.len()]);
    }
    out
}

/// What the raw client ends up with when the server writes `raw` and then closes (`reuse` false)
/// or goes quiet (`reuse` true, which a client still waiting for bytes sees as a timeout), with
/// the body arriving in pieces of `step` bytes.
fn replay(raw: &[u8], reuse: bool, step: usize) -> Result<(u16, Vec<u8>), String> {
    let (n, head) = match wire::parse_head(raw, false) {
        Ok(Status::Complete(n, head)) => (n, head),
        Ok(Status::Partial) => return Err("incomplete head".into()),
        Err(e) => return Err(e.to_string()),
    };
    let rest = &raw[n..];
    let mut reader = BodyReader::new(head.framing, u64::MAX);
    let mut body = Vec::new();
    reader
        .feed(&[], |_| {})
        .map_err(|e| format!("before the body: {e}"))?;
    for piece in rest.chunks(step) {
        let p = reader
            .feed(piece, |d| body.extend_from_slice(d))
            .map_err(|e| e.to_string())?;
        if p.done {
            break;
        }
    }
    if !reader.is_done() {
        if reuse {
            return Err("body never ends: the server keeps the connection open".into());
        }
        reader.finish().map_err(|e| e.to_string())?;
    }
    Ok((head.status, body))
}

#[test]
fn conformance_corpus_cases_reach_their_expected_outcome() {
    let path = corpus_path();
    // The corpus ships with the repository: without it this test would test nothing.
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read the conformance corpus {}: {e}", path.display()));
    let doc: serde_json::Value = serde_json::from_str(&text).expect("corpus is JSON");
    let cases = doc["cases"].as_array().expect("cases");
    assert!(
        cases.len() >= 68,
        "the corpus has 68 cases, found {}",
        cases.len()
    );

    let mut failures = Vec::new();
    let mut took_alternate = BTreeSet::new();
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let text = case["raw"].as_str().expect("raw");
        let raw = match case["raw_encoding"].as_str() {
            Some("base64") => base64(text),
            _ => text.as_bytes().to_vec(),
        };
        let reuse = case["reuse"].as_bool().unwrap_or(false);
        let expect = case["expect"].as_str().expect("expect");
        let alt = case["alt_expect"].as_str();

        let result = replay(&raw, reuse, raw.len().max(1));
        // The same outcome whatever pieces the body arrives in.
        for step in [1, 2, 3, 7, 64] {
            let again = replay(&raw, reuse, step);
            if again != result {
                failures.push(format!(
                    "{name}: pieces of {step} gave {again:?}, whole gave {result:?}"
                ));
            }
        }
        let outcome = if result.is_ok() { "ok" } else { "error" };
        if outcome != expect && Some(outcome) != alt {
            failures.push(format!("{name}: expected {expect}, got {result:?}"));
            continue;
        }
        if outcome != expect {
            took_alternate.insert(name);
        }
        if let Ok((status, body)) = &result {
            if let Some(want) = case["status"].as_u64() {
                if u64::from(*status) != want {
                    failures.push(format!("{name}: status {status}, expected {want}"));
                }
            }
            if let Some(want) = case["body"].as_str() {
                if body.as_slice() != want.as_bytes() {
                    failures.push(format!(
                        "{name}: body {:?}, expected {want:?}",
                        String::from_utf8_lossy(body)
                    ));
                }
            }
            // A valid head must be reported Partial at every shorter length, never an error.
            if let Ok(Status::Complete(n, _)) = wire::parse_head(&raw, false) {
                for i in 0..n {
                    if wire::parse_head(&raw[..i], false) != Ok(Status::Partial) {
                        failures.push(format!("{name}: prefix of {i} bytes not Partial"));
                        break;
                    }
                }
            }
        }
    }
    let documented: BTreeSet<&str> = ALTERNATES.iter().map(|(name, _)| *name).collect();
    assert!(
        failures.is_empty(),
        "{} corpus failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(
        took_alternate, documented,
        "cases decided by the alternate outcome"
    );
    println!(
        "{} corpus cases: all pass; alternate outcome taken (documented) for {:?}",
        cases.len(),
        took_alternate
    );
}
