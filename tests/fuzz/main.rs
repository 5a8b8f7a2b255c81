//! A fuzz harness on stable Rust for the parsers of files users download
//! from strangers: the manifest (`subagent.toml`), Markdown definitions'
//! frontmatter, the host config and the batch file.
//!
//! Each parser is fed inputs mutated from a seed corpus (the repository's
//! fixtures, examples and plugin manifests, and `tests/fuzz/seeds`): bytes
//! flipped, inserted, deleted, duplicated and spliced, and tokens that
//! parsers of TOML, YAML and JSON trip on. An input fails the run when its
//! parser panics, takes longer than [`HANG`] (a watchdog ends the process),
//! or holds more than [`MEMORY`] at once (a counting allocator). A failing
//! input is written to `target/fuzz-failures/` to reproduce it.
//!
//! ```text
//! cargo test -p subagent-tests --test fuzz                                       # the short pass CI runs
//! cargo test --release -p subagent-tests --test fuzz -- --inputs 1000000         # a long run, per parser
//! cargo test --release -p subagent-tests --test fuzz -- --inputs 100000 --seed 7 --only manifest
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An input that takes longer than this is a hang.
const HANG: Duration = Duration::from_secs(10);
/// An input whose parse holds more than this at once is unbounded allocation.
const MEMORY: usize = 256 << 20;
/// The largest input generated.
const MAX_INPUT: usize = 64 << 10;
/// Inputs per parser in the short pass.
const SHORT_PASS: u64 = 20_000;

// ---------------------------------------------------------------------------
// The allocator that counts what is held.

struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let held = HELD.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(held, Ordering::Relaxed);
        if held > MEMORY {
            // Refuse instead of letting the machine swap: the parser sees an
            // allocation failure and the harness reports the input.
            HELD.fetch_sub(layout.size(), Ordering::Relaxed);
            return std::ptr::null_mut();
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

// ---------------------------------------------------------------------------
// The parsers.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Manifest,
    Frontmatter,
    HostConfig,
    BatchToml,
    BatchJsonLines,
}

impl Target {
    const ALL: [Target; 5] = [
        Target::Manifest,
        Target::Frontmatter,
        Target::HostConfig,
        Target::BatchToml,
        Target::BatchJsonLines,
    ];

    fn name(self) -> &'static str {
        match self {
            Target::Manifest => "manifest",
            Target::Frontmatter => "frontmatter",
            Target::HostConfig => "host-config",
            Target::BatchToml => "batch-toml",
            Target::BatchJsonLines => "batch-jsonl",
        }
    }

    /// Parse `text`; the result does not matter, only that it returns.
    fn parse(self, text: &str) {
        match self {
            Target::Manifest => {
                let _ = subagent_host::Manifest::parse(Path::new("/fuzz/subagent.toml"), text);
            }
            Target::Frontmatter => {
                let _ = subagent_host::definitions::Definition::parse(
                    Path::new("/fuzz/agents/fuzz.md"),
                    text,
                );
            }
            Target::HostConfig => {
                let _ = subagent_host::model::config::HostConfig::parse(
                    Path::new("/fuzz/config.toml"),
                    text,
                );
            }
            Target::BatchToml => {
                let _ = subagent_host::cli::check_batch_file(Path::new("/fuzz/batch.toml"), text);
            }
            Target::BatchJsonLines => {
                let _ = subagent_host::cli::check_batch_file(Path::new("/fuzz/batch.jsonl"), text);
            }
        }
    }

    /// Whether a seed file is of this parser's kind (every parser also gets
    /// the others' seeds now and then: cross-pollination finds more).
    fn owns(self, path: &Path) -> bool {
        let text = path.to_string_lossy();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        match self {
            Target::Manifest => {
                ext == "toml" && (text.contains("manifests") || text.ends_with("subagent.toml"))
            }
            Target::Frontmatter => ext == "md",
            Target::HostConfig => ext == "toml" && text.contains("config"),
            Target::BatchToml => ext == "toml" && text.contains("batch"),
            Target::BatchJsonLines => ext == "jsonl",
        }
    }
}

// ---------------------------------------------------------------------------
// Inputs.

/// xorshift64*: small, fast, reproducible from `--seed`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// What TOML, YAML and JSON parsers trip on.
const TOKENS: &[&str] = &[
    "\n",
    "\r\n",
    "\r",
    " ",
    "  ",
    "\t",
    ":",
    ": ",
    "- ",
    "-",
    "---",
    "\n---\n",
    "|",
    "|-",
    "|+",
    ">",
    ">-",
    "|2",
    "\"",
    "'",
    "''",
    "\\",
    "\\u",
    "\\x",
    "#",
    " #",
    "[",
    "]",
    "{",
    "}",
    ",",
    "=",
    " = ",
    "[[task]]",
    "[limits]",
    "[concurrency]",
    "[models]",
    "[aliases]",
    "\"\"\"",
    "'''",
    "\u{feff}",
    "\u{0}",
    "\u{202e}",
    "é",
    "𝕏",
    "!!str",
    "&a",
    "*a",
    "?",
    "%YAML 1.2",
    "true",
    "null",
    "~",
    "0x",
    "1e999",
    "-0",
    "9999999999999999999999",
    "nan",
    "inf",
    "description: ",
    "name: ",
    "tools: ",
    "model: ",
    "name = ",
    "prompt = ",
    "subagent = ",
    "timeout = \"",
    "memory = \"",
    "{\"subagent\": ",
    "\"prompt\": ",
    "[a, [b, [c",
];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], input: &mut Vec<u8>) {
    let rounds = 1 + rng.below(8);
    for _ in 0..rounds {
        let len = input.len();
        match rng.below(9) {
            // Flip a bit.
            0 if len > 0 => {
                let at = rng.below(len);
                input[at] ^= 1 << rng.below(8);
            }
            // Insert a byte.
            1 => {
                let at = rng.below(len + 1);
                input.insert(at, rng.next() as u8);
            }
            // Delete a range.
            2 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(64));
                input.drain(at..at + n);
            }
            // Duplicate a range (deep nesting, long lines).
            3 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(256));
                let piece = input[at..at + n].to_vec();
                let times = 1 + rng.below(16);
                for _ in 0..times {
                    let to = rng.below(input.len() + 1);
                    input.splice(to..to, piece.iter().copied());
                }
            }
            // Insert a token, sometimes many times.
            4 | 5 => {
                let token = TOKENS[rng.below(TOKENS.len())].as_bytes();
                let times = if rng.below(8) == 0 {
                    1 + rng.below(512)
                } else {
                    1
                };
                let at = rng.below(len + 1);
                let mut bytes = Vec::with_capacity(token.len() * times);
                for _ in 0..times {
                    bytes.extend_from_slice(token);
                }
                input.splice(at..at, bytes);
            }
            // Splice in a piece of another seed.
            6 if !seeds.is_empty() => {
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() {
                    let from = rng.below(other.len());
                    let n = 1 + rng.below((other.len() - from).min(1024));
                    let at = rng.below(len + 1);
                    input.splice(at..at, other[from..from + n].iter().copied());
                }
            }
            // Truncate.
            7 if len > 0 => input.truncate(rng.below(len)),
            // Swap two lines.
            _ => {
                let mut lines: Vec<Vec<u8>> =
                    input.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
                if lines.len() > 1 {
                    let (a, b) = (rng.below(lines.len()), rng.below(lines.len()));
                    lines.swap(a, b);
                    *input = lines.join(&b'\n');
                }
            }
        }
    }
    input.truncate(MAX_INPUT);
}

fn seed_files(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![
        root.join("tests/fixtures"),
        root.join("tests/fuzz/seeds"),
        root.join("examples"),
        root.join("plugins"),
    ];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name == "target" || name.starts_with('.') && name != ".claude" {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("toml" | "md" | "jsonl")
            ) && name != "Cargo.toml"
            {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

// ---------------------------------------------------------------------------
// The run.

struct Options {
    inputs: u64,
    seed: u64,
    only: Option<String>,
}

fn options() -> Options {
    let mut options = Options {
        inputs: SHORT_PASS,
        seed: 0x5eed,
        only: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .unwrap_or_else(|| panic!("{name} needs a value"))
        };
        match arg.as_str() {
            "--inputs" => options.inputs = value("--inputs").parse().expect("--inputs N"),
            "--seed" => options.seed = value("--seed").parse().expect("--seed N"),
            "--only" => options.only = Some(value("--only")),
            // What `cargo test` passes to every test binary.
            "--nocapture" | "--quiet" | "-q" | "--test-threads" | "--color" => {}
            other if other.starts_with("--") => {}
            _ => {}
        }
    }
    options
}

fn main() {
    let options = options();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned();
    let failures_dir = root.join("target/fuzz-failures");
    let files = seed_files(&root);
    assert!(files.len() >= 20, "too few seeds: {files:?}");

    // The watchdog: an input running past HANG is written out and the
    // process ends (a parse cannot be interrupted from outside).
    let current: Arc<Mutex<Option<(Target, Vec<u8>)>>> = Arc::new(Mutex::new(None));
    let started = Arc::new(AtomicU64::new(0));
    let epoch = Instant::now();
    {
        let current = current.clone();
        let started = started.clone();
        let failures_dir = failures_dir.clone();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(200));
                let since = started.load(Ordering::Relaxed);
                if since == 0 {
                    continue;
                }
                let running = epoch.elapsed().saturating_sub(Duration::from_millis(since));
                if running > HANG {
                    if let Some((target, input)) = current.lock().unwrap().clone() {
                        let file = write_failure(&failures_dir, target, "hang", &input);
                        eprintln!(
                            "fuzz: {} ran past {:?} on one input (a hang); it is in {}",
                            target.name(),
                            HANG,
                            file.display()
                        );
                    }
                    std::process::exit(1);
                }
            }
        });
    }
    // Quiet panics: they are counted and reported below.
    std::panic::set_hook(Box::new(|_| {}));

    let mut failed = Vec::new();
    let total_started = Instant::now();
    for target in Target::ALL {
        if options.only.as_deref().is_some_and(|o| o != target.name()) {
            continue;
        }
        let own: Vec<Vec<u8>> = files
            .iter()
            .filter(|f| target.owns(f))
            .filter_map(|f| std::fs::read(f).ok())
            .collect();
        let all: Vec<Vec<u8>> = files.iter().filter_map(|f| std::fs::read(f).ok()).collect();
        assert!(!own.is_empty(), "no seeds for {}", target.name());
        let mut rng = Rng(options.seed ^ (target as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut peak = 0usize;
        let mut slowest = Duration::ZERO;
        let began = Instant::now();
        for i in 0..options.inputs {
            // Mostly the parser's own seeds, sometimes anything.
            let pool = if rng.below(8) == 0 { &all } else { &own };
            let mut input = pool[rng.below(pool.len())].clone();
            if i >= pool.len() as u64 {
                mutate(&mut rng, &all, &mut input);
            }
            let text = String::from_utf8_lossy(&input).into_owned();
            *current.lock().unwrap() = Some((target, input.clone()));
            let before = HELD.load(Ordering::Relaxed);
            PEAK.store(before, Ordering::Relaxed);
            let start = Instant::now();
            started.store(epoch.elapsed().as_millis().max(1) as u64, Ordering::Relaxed);
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| target.parse(&text)));
            started.store(0, Ordering::Relaxed);
            slowest = slowest.max(start.elapsed());
            let held = PEAK.load(Ordering::Relaxed).saturating_sub(before);
            peak = peak.max(held);
            let problem = if outcome.is_err() {
                Some("panic")
            } else if held + (64 << 10) > MEMORY {
                Some("memory")
            } else {
                None
            };
            if let Some(kind) = problem {
                let file = write_failure(&failures_dir, target, kind, &input);
                failed.push(format!("{}: {kind} on {}", target.name(), file.display()));
                if failed.len() > 20 {
                    break;
                }
            }
        }
        println!(
            "fuzz {:<12} {:>9} inputs in {:>7.1?}  slowest {:>9.1?}  peak held {:>7} KiB",
            target.name(),
            options.inputs,
            began.elapsed(),
            slowest,
            peak >> 10
        );
    }
    println!("fuzz: done in {:.1?}", total_started.elapsed());
    if !failed.is_empty() {
        eprintln!("fuzz: {} failing inputs:", failed.len());
        for line in &failed {
            eprintln!("  {line}");
        }
        std::process::exit(1);
    }
}

fn write_failure(dir: &Path, target: Target, kind: &str, input: &[u8]) -> PathBuf {
    let _ = std::fs::create_dir_all(dir);
    let digest = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    });
    let file = dir.join(format!("{}-{kind}-{digest:016x}.txt", target.name()));
    let _ = std::fs::write(&file, input);
    file
}
