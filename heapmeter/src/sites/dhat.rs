//! Writes the sampled profile in DHAT's JSON format, field for field as dhat-rs writes
//! `dhat-heap.json` (file version 2, mode `rust-heap`), so Valgrind's `dh_view.html` opens it.
//! It only reads the profile; bytes and blocks are the estimates, rounded to whole numbers.
//!
//! The format (described in Valgrind's `dhat/dh_main.c`): one "program point" (`pps`) per
//! allocation stack with total bytes/blocks (`tb`/`tbk`), total lifetimes (`tl`, µs), the
//! point's own maximum (`mb`/`mbk`), its share at the global maximum (`gb`/`gbk`) and at the end
//! (`eb`/`ebk`), and its frames (`fs`) as indexes into a frame table (`ftbl`) whose entry 0 is
//! `"[root]"`. Stacks that trim to the same frames are merged (the viewer rejects duplicates).

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;

use super::sampler;
use super::symbols::{Frame, Trim, short_path, symbolize};
use super::types::{Profile, SiteTotals};

/// What to write besides the profile itself.
#[derive(Debug, Clone, Copy)]
pub struct DhatOptions<'a> {
    /// The command line shown in the viewer's header.
    pub cmd: &'a str,
    /// Frames to trim from each stack.
    pub trim: Trim<'a>,
}

#[derive(Serialize)]
#[allow(non_snake_case)]
struct DhatJson<'a> {
    dhatFileVersion: u32,
    mode: &'static str,
    verb: &'static str,
    bklt: bool,
    bkacc: bool,
    tu: &'static str,
    Mtu: &'static str,
    tuth: usize,
    cmd: &'a str,
    pid: u32,
    tg: u64,
    te: u64,
    pps: Vec<PpJson>,
    ftbl: Vec<String>,
}

#[derive(Serialize, Default, Clone)]
struct PpJson {
    tb: u64,
    tbk: u64,
    tl: u64,
    mb: u64,
    mbk: u64,
    gb: u64,
    gbk: u64,
    eb: u64,
    ebk: u64,
    fs: Vec<usize>,
}

fn round(x: f64) -> u64 {
    x.max(0.0).round() as u64
}

fn add(pp: &mut PpJson, t: &SiteTotals) {
    pp.tb += round(t.total_bytes);
    pp.tbk += round(t.total_blocks);
    pp.tl += round(t.lifetimes_us);
    pp.mb += round(t.max_bytes);
    pp.mbk += round(t.max_blocks);
    pp.gb += round(t.gmax_bytes);
    pp.gbk += round(t.gmax_blocks);
    pp.eb += round(t.live_bytes);
    pp.ebk += round(t.live_blocks);
}

/// How dhat-rs names a frame: `0x…: function (dir/dir/file.rs:line:col)`.
fn frame_name(f: &Frame) -> String {
    format!(
        "{:#x}: {} ({}:{}:{})",
        f.ip,
        f.function,
        f.file
            .as_deref()
            .map_or_else(|| "???".to_owned(), short_path),
        f.line.unwrap_or(0),
        f.column.unwrap_or(0)
    )
}

/// Builds the JSON document from a profile and each site's trimmed frames.
fn document<'a>(
    profile: &Profile,
    frames_of: impl Fn(&SiteTotals) -> Vec<Frame>,
    cmd: &'a str,
) -> DhatJson<'a> {
    let mut ftbl = vec!["[root]".to_owned()];
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut pps: Vec<PpJson> = Vec::new();
    let mut by_fs: HashMap<Vec<usize>, usize> = HashMap::new();
    for t in profile.sites.iter().filter(|t| t.samples > 0) {
        let frames = frames_of(t);
        let names: Vec<String> = if frames.is_empty() {
            vec!["[unknown: call-site table full]".to_owned()]
        } else {
            frames.iter().map(frame_name).collect()
        };
        let fs: Vec<usize> = names
            .into_iter()
            .map(|n| {
                *ids.entry(n).or_insert_with_key(|n| {
                    ftbl.push(n.clone());
                    ftbl.len() - 1
                })
            })
            .collect();
        let i = *by_fs.entry(fs.clone()).or_insert_with(|| {
            pps.push(PpJson {
                fs,
                ..PpJson::default()
            });
            pps.len() - 1
        });
        add(&mut pps[i], t);
    }
    DhatJson {
        dhatFileVersion: 2,
        mode: "rust-heap",
        verb: "Allocated",
        bklt: true,
        bkacc: false,
        tu: "µs",
        Mtu: "s",
        tuth: 10,
        cmd,
        pid: std::process::id(),
        tg: profile.t_gmax_us,
        te: profile.elapsed_us,
        pps,
        ftbl,
    }
}

fn write_json<W: Write>(out: W, doc: &DhatJson<'_>) -> io::Result<()> {
    // dhat-rs's layout: pretty-printed with an empty indent.
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"");
    let mut ser = serde_json::Serializer::with_formatter(out, formatter);
    doc.serialize(&mut ser).map_err(io::Error::other)
}

/// Writes `profile` (taken with [`profile`](super::profile), e.g. at a program's last
/// measurement, before it tears down what it measured, so that DHAT's "at t-end" is that moment)
/// to `out`. Symbolises every site: call it after the measurements that matter.
pub fn write_dhat<W: Write>(out: W, profile: &Profile, opts: &DhatOptions<'_>) -> io::Result<()> {
    sampler::quietly(|| {
        let doc = document(profile, |t| symbolize(t.site, &opts.trim), opts.cmd);
        write_json(out, &doc)
    })
}

/// [`write_dhat`] to a file (conventionally `dhat-heap.json`).
pub fn write_dhat_file(path: &Path, profile: &Profile, opts: &DhatOptions<'_>) -> io::Result<()> {
    let mut w = io::BufWriter::new(std::fs::File::create(path)?);
    write_dhat(&mut w, profile, opts)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sites::types::StackId;

    fn totals(site: u32, bytes: f64) -> SiteTotals {
        SiteTotals {
            site: StackId(site),
            samples: 2,
            live_samples: 1,
            total_bytes: bytes * 2.0,
            total_blocks: 2.0,
            live_bytes: bytes,
            live_blocks: 1.0,
            max_bytes: bytes * 2.0,
            max_blocks: 2.0,
            gmax_bytes: bytes,
            gmax_blocks: 1.0,
            lifetimes_us: 10.4,
        }
    }

    fn frame(function: &str, line: u32) -> Frame {
        Frame {
            ip: 0x1000 + line as usize,
            function: function.to_owned(),
            file: Some("/home/u/app/src/main.rs".to_owned()),
            line: Some(line),
            column: Some(5),
        }
    }

    #[test]
    fn the_document_has_dhat_rs_fields_root_first_and_merged_duplicate_stacks() {
        let profile = Profile {
            sites: vec![totals(1, 100.0), totals(2, 50.0), totals(3, 7.0)],
            elapsed_us: 5000,
            t_gmax_us: 1200,
        };
        // Sites 1 and 2 trim to the same frames.
        let frames_of = |t: &SiteTotals| match t.site.0 {
            1 | 2 => vec![frame("app::a", 10), frame("app::main", 3)],
            _ => vec![frame("app::b", 20), frame("app::main", 3)],
        };
        let doc = document(&profile, frames_of, "app --flag");
        let mut buf = Vec::new();
        write_json(&mut buf, &doc).expect("serialise");
        let v: serde_json::Value = serde_json::from_slice(&buf).expect("valid json");
        assert_eq!(v["dhatFileVersion"], 2);
        assert_eq!(v["mode"], "rust-heap");
        assert_eq!(v["verb"], "Allocated");
        assert_eq!(v["bklt"], true);
        assert_eq!(v["bkacc"], false);
        assert_eq!(v["tu"], "µs");
        assert_eq!(v["Mtu"], "s");
        assert_eq!(v["tuth"], 10);
        assert_eq!(v["cmd"], "app --flag");
        assert_eq!(
            (v["tg"].as_u64(), v["te"].as_u64()),
            (Some(1200), Some(5000))
        );
        let ftbl = v["ftbl"].as_array().expect("ftbl");
        assert_eq!(ftbl[0], "[root]");
        assert_eq!(ftbl[1], "0x100a: app::a (app/src/main.rs:10:5)");
        assert_eq!(ftbl.len(), 4, "root + three distinct frames");
        let pps = v["pps"].as_array().expect("pps");
        assert_eq!(pps.len(), 2, "sites 1 and 2 merged");
        assert_eq!(pps[0]["tb"], 300);
        assert_eq!(pps[0]["eb"], 150);
        assert_eq!(pps[0]["tl"], 20);
        assert_eq!(pps[0]["fs"], serde_json::json!([1, 2]));
        assert_eq!(pps[1]["fs"], serde_json::json!([3, 2]));
        for key in [
            "tb", "tbk", "tl", "mb", "mbk", "gb", "gbk", "eb", "ebk", "fs",
        ] {
            assert!(pps[1].get(key).is_some(), "{key}");
        }
    }
}
