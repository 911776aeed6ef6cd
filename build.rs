//! Embeds the operator console (`ui/`) in the binary: writes `$OUT_DIR/console_assets.rs`,
//! a table of every file under `ui/` with its bytes (`include_bytes!`), its content
//! type and an ETag, which `src/admin/console.rs` serves at `/ui/`.
//!
//! Written here rather than with a crate such as rust-embed: that one reads the files
//! from disk at run time in debug builds (the tests' builds) unless told otherwise,
//! and does not notice a file added to the folder; this is 60 lines of std, and
//! `rerun-if-changed=ui` makes cargo rebuild when any file under it changes or appears.
//! No Node toolchain is involved: the console is plain HTML, CSS and JavaScript
//! modules, served as they are.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=ui");
    // Read when the script runs, not baked in when it was compiled: a checkout moved (or
    // another one sharing a target dir) must embed its own files.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest).join("ui");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    assert!(
        files.iter().any(|f| f.ends_with("index.html")),
        "{}: no index.html: the console's files are missing from the source tree",
        root.display()
    );
    let mut out = String::from("&[\n");
    for path in &files {
        let rel = path.strip_prefix(&root).expect("under ui/");
        let rel = rel
            .to_str()
            .expect("ui/ file names are UTF-8")
            .replace('\\', "/");
        let bytes = std::fs::read(path).expect("ui/ file readable");
        let content_type = content_type(&rel);
        writeln!(
            out,
            "    Asset {{ path: {rel:?}, body: include_bytes!({path:?}), content_type: {content_type:?}, etag: \"\\\"{:016x}\\\"\" }},",
            fnv1a(&bytes),
        )
        .expect("write to String");
    }
    out.push(']');
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("console_assets.rs");
    std::fs::write(dest, out).expect("write console_assets.rs");
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("ui/ entry").path();
        // Editors' swap and backup files are not the console's.
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') || name.ends_with('~') {
            continue;
        }
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// The content type of a console file, by extension. Any other kind of file under
/// `ui/` fails the build rather than being served with a guessed type.
fn content_type(rel: &str) -> &'static str {
    match rel.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        _ => panic!("ui/{rel}: no content type known for this file; add one in build.rs"),
    }
}

/// FNV-1a, 64 bits: the ETag of a file's bytes (a change of content changes it).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
