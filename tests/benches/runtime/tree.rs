//! A deterministic, realistic source tree to search: nested directories of
//! code-like text files, a known number of lines holding [`MARKER`].
//!
//! The same `files` and seed always give the same tree (a SplitMix64
//! generator, no dependency). There are no hidden files, no ignore files, no
//! symlinks, no binary files and no directory that a search skips by default
//! (`.git`, `target`, `node_modules`), so `deep-search`, `todo-report` and
//! `rg -uuu` all see every file.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The word every checked search looks for. Only marker lines hold it, and
/// no line holds the other markers of `todo-report` (FIXME, XXX, HACK).
pub const MARKER: &str = "TODO";

/// Directories that hold files are this deep below the root (the top level
/// holds only directories).
pub const DEPTHS: std::ops::RangeInclusive<usize> = 2..=6;
/// Files per directory.
const FILES_PER_DIR: (usize, usize) = (20, 50);
/// File sizes, log-uniform between these (bytes).
const SIZES: (f64, f64) = (200.0, 16384.0);
/// The share of files holding 1 to 3 marker lines.
const MARKED_FILES: f64 = 0.3;

/// What was generated.
pub struct Tree {
    pub root: PathBuf,
    pub files: usize,
    /// Directories below the root.
    pub dirs: usize,
    pub bytes: u64,
    /// Lines holding [`MARKER`] (each holds it once).
    pub marker_lines: usize,
    /// Files with at least one marker line.
    pub marker_files: usize,
    pub took: Duration,
}

/// Write a tree of `files` files below `root` (created; must not exist).
pub fn generate(root: &Path, files: usize, seed: u64) -> Tree {
    let started = Instant::now();
    let mut rng = Rng(seed);
    std::fs::create_dir(root).expect("tree root");
    let mut tree = Tree {
        root: root.to_owned(),
        files: 0,
        dirs: 0,
        bytes: 0,
        marker_lines: 0,
        marker_files: 0,
        took: Duration::ZERO,
    };
    // Directories as (relative path, depth, children so far).
    let mut dirs: Vec<(PathBuf, usize, usize)> = Vec::new();
    let top = (files / 4000).clamp(3, TOP.len());
    for name in &TOP[..top] {
        dirs.push((PathBuf::from(name), 1, 0));
    }
    let mut max_depth = 1;
    while tree.files < files {
        // A depth spread evenly over DEPTHS (as deep as the tree goes yet),
        // under a parent picked at random one level up.
        let depth = rng.range(*DEPTHS.start(), (max_depth + 1).min(*DEPTHS.end()));
        max_depth = max_depth.max(depth);
        let parents: Vec<usize> = (0..dirs.len())
            .filter(|&i| dirs[i].1 == depth - 1)
            .collect();
        let parent = parents[rng.below(parents.len())];
        dirs[parent].2 += 1;
        let dir = dirs[parent]
            .0
            .join(format!("{}_{}", rng.pick(&WORDS), dirs[parent].2));
        dirs.push((dir.clone(), depth, 0));

        let ext = rng.pick(&EXTENSIONS);
        let count = rng
            .range(FILES_PER_DIR.0, FILES_PER_DIR.1)
            .min(files - tree.files);
        let full = root.join(&dir);
        std::fs::create_dir_all(&full).expect("tree dir");
        for i in 0..count {
            let markers = if rng.chance(MARKED_FILES) {
                rng.range(1, 3)
            } else {
                0
            };
            let text = source_text(&mut rng, markers);
            let name = format!("{}_{i}.{ext}", rng.pick(&WORDS));
            std::fs::write(full.join(name), &text).expect("tree file");
            tree.files += 1;
            tree.bytes += text.len() as u64;
            tree.marker_lines += markers;
            tree.marker_files += usize::from(markers > 0);
        }
    }
    tree.dirs = dirs.len();
    tree.took = started.elapsed();
    tree
}

/// Code-like lines up to a log-uniform size, with `markers` marker lines
/// at random places.
fn source_text(rng: &mut Rng, markers: usize) -> String {
    let target = (SIZES.0 * (SIZES.1 / SIZES.0).powf(rng.unit())) as usize;
    let mut lines: Vec<String> = Vec::new();
    let mut size = 0;
    while size < target {
        let line = code_line(rng);
        size += line.len() + 1;
        lines.push(line);
    }
    for _ in 0..markers {
        let at = rng.below(lines.len() + 1);
        let line = format!(
            "    // {MARKER}: {} {} before {} {}",
            rng.pick(&VERBS),
            rng.pick(&WORDS),
            rng.pick(&WORDS),
            rng.pick(&WORDS)
        );
        lines.insert(at, line);
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

fn code_line(rng: &mut Rng) -> String {
    let w = |rng: &mut Rng| *rng.pick(&WORDS);
    let n = rng.below(1000);
    match rng.below(12) {
        0 => format!(
            "pub fn {}_{}({}: &{}) -> Result<{}, Error> {{",
            rng.pick(&VERBS),
            w(rng),
            w(rng),
            type_name(w(rng)),
            type_name(w(rng))
        ),
        1 => format!("    let {} = {}.{}({n});", w(rng), w(rng), rng.pick(&VERBS)),
        2 => format!(
            "    if {}.len() > {n} {{ return Err(Error::{}); }}",
            w(rng),
            type_name(w(rng))
        ),
        3 => format!(
            "    // {} the {} {} so the {} stays {}",
            rng.pick(&VERBS),
            w(rng),
            w(rng),
            w(rng),
            w(rng)
        ),
        4 => "}".to_owned(),
        5 => format!("    {}.push({}[{n}]);", w(rng), w(rng)),
        6 => format!("use crate::{}::{};", w(rng), type_name(w(rng))),
        7 => String::new(),
        8 => format!(
            "        for {} in {}.iter().filter(|x| x.{} != {n}) {{",
            w(rng),
            w(rng),
            w(rng)
        ),
        9 => format!(
            "    {}: {}<{}>,",
            w(rng),
            type_name(w(rng)),
            type_name(w(rng))
        ),
        10 => format!(
            "        {}.{}(\"{} {}\", {n})?;",
            w(rng),
            rng.pick(&VERBS),
            w(rng),
            w(rng)
        ),
        _ => format!(
            "    Ok({}::{}({}))",
            type_name(w(rng)),
            rng.pick(&VERBS),
            w(rng)
        ),
    }
}

fn type_name(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

const TOP: [&str; 12] = [
    "src", "lib", "crates", "services", "tools", "web", "internal", "pkg", "app", "modules",
    "platform", "sdk",
];
const EXTENSIONS: [&str; 7] = ["rs", "py", "ts", "go", "c", "java", "md"];
// Lowercase, none containing a marker word.
const WORDS: [&str; 40] = [
    "core", "util", "net", "io", "parser", "render", "model", "store", "api", "cli", "auth",
    "cache", "config", "db", "event", "fs", "http", "log", "math", "sched", "buffer", "queue",
    "index", "token", "stream", "layout", "widget", "session", "worker", "pool", "graph", "node",
    "edge", "frame", "codec", "shader", "route", "query", "schema", "vector",
];
const VERBS: [&str; 16] = [
    "load", "parse", "build", "flush", "check", "merge", "split", "apply", "emit", "fetch",
    "reset", "sort", "encode", "decode", "spawn", "close",
];

/// SplitMix64: small, fast, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (the modulo bias is negligible here).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}
