//! Misbehaves as the prompt says, to test the limits: `loop`, `membomb`,
//! `flood`, `trap`, `stackoverflow`, `deep-recursion`, `panic`, `fail`, `invalid`, `ok`,
//! `print N` (prints N bytes then succeeds), `drip N` (prints N lines, 20 ms apart), `grow N` (allocates N MiB then
//! succeeds), `spin-ms N` (busy for N ms ignoring cancel, then succeeds),
//! `big-summary N` (a summary of N KiB), `deep-data N` (data nested N arrays
//! deep), `bad-data` (data that is not JSON), `ansi` (terminal control
//! sequences in its output, a log line, its summary and its data), `ansi-fail`
//! (the same as its error), `log-flood N` (N log lines), `byte-flood N` (N
//! one-byte writes to stdout, each flushed).
use std::hint::black_box;
use subagent_sdk::{Outcome, RunError, Subagent, Task};

struct Misbehave;

/// A window title, a screen clear, a clipboard write (OSC 52), colour, a
/// bare carriage return and a C1 CSI: what a guest must never do to a terminal.
const ANSI: &str = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}]52;c;cHduZWQ=\u{7}\u{1b}[31mred\rCR\u{9b}31m";

fn arg(prompt: &str) -> u64 {
    prompt
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Recursion with big frames: overflows the shadow stack in linear memory.
#[allow(unconditional_recursion)]
fn recurse_big(depth: u64) -> u64 {
    let frame = black_box([depth; 64]);
    recurse_big(frame[7] + 1) + frame[3]
}

/// Recursion with frames in wasm locals: overflows the wasm call stack.
#[inline(never)]
fn recurse_small(n: u64) -> u64 {
    if n == u64::MAX {
        return n;
    }
    recurse_small(n + 1).wrapping_sub(n).rotate_left(3)
}

impl Subagent for Misbehave {
    fn run(task: Task) -> Result<Outcome, RunError> {
        let prompt = task.prompt.trim();
        match prompt.split_whitespace().next().unwrap_or("") {
            "loop" => {
                let mut n = 0u64;
                loop {
                    n = black_box(n.wrapping_add(1));
                }
            }
            "membomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 16 << 20]);
                    black_box(&hoard);
                }
            }
            "flood" => {
                let line =
                    "flood flood flood flood flood flood flood flood flood flood\n".repeat(100);
                loop {
                    print!("{line}");
                }
            }
            "trap" => {
                #[cfg(target_arch = "wasm32")]
                core::arch::wasm32::unreachable();
                #[cfg(not(target_arch = "wasm32"))]
                unreachable!()
            }
            "stackoverflow" => Ok(Outcome::summary(recurse_small(black_box(0)).to_string())),
            "deep-recursion" => Ok(Outcome::summary(recurse_big(0).to_string())),
            "panic" => panic!("the misbehave guest panicked on purpose"),
            "fail" => Err(RunError::failed("failed on purpose")),
            "invalid" => Err(RunError::invalid("the prompt is not acceptable")),
            "print" => {
                let n = arg(prompt) as usize;
                print!("{}", "x".repeat(n));
                eprint!("done");
                Ok(Outcome::summary(format!("printed {n}")))
            }
            "grow" => {
                let mib = arg(prompt) as usize;
                let block = vec![7u8; mib << 20];
                Ok(Outcome::summary(format!(
                    "allocated {} MiB",
                    black_box(block).len() >> 20
                )))
            }
            "spin-ms" => {
                let until =
                    std::time::Instant::now() + std::time::Duration::from_millis(arg(prompt));
                while std::time::Instant::now() < until {
                    black_box(0);
                }
                Ok(Outcome::summary("spun"))
            }
            "drip" => {
                // N numbered lines, 20 ms apart (waiting in the host).
                let n = arg(prompt);
                for i in 0..n {
                    println!("line {i}");
                    subagent_sdk::messages::wait(std::time::Duration::from_millis(20));
                }
                Ok(Outcome::summary(format!("dripped {n}")))
            }
            "ok" => Ok(Outcome::summary("fine").with_data(serde_json::json!({"ok": true}))),
            "big-summary" => Ok(Outcome::summary("x".repeat(arg(prompt) as usize * 1024))),
            "deep-data" => {
                let n = arg(prompt) as usize;
                Ok(Outcome {
                    summary: format!("{n} deep"),
                    data: Some(format!("{}{}", "[".repeat(n), "]".repeat(n))),
                })
            }
            "ansi" => {
                println!("{ANSI}");
                subagent_sdk::log::info(ANSI);
                Ok(Outcome::summary(ANSI).with_data(serde_json::json!({ "text": ANSI })))
            }
            "ansi-fail" => Err(RunError::failed(ANSI)),
            "log-flood" => {
                for i in 0..arg(prompt) {
                    subagent_sdk::log::info(&format!("line {i}"));
                }
                Ok(Outcome::summary("flooded"))
            }
            "byte-flood" => {
                use std::io::Write;
                let mut out = std::io::stdout();
                for _ in 0..arg(prompt) {
                    let _ = out.write_all(b"x");
                    let _ = out.flush();
                }
                Ok(Outcome::summary("flooded"))
            }
            "bad-data" => Ok(Outcome {
                summary: "data that is not JSON".into(),
                data: Some("{not json".into()),
            }),
            other => Err(RunError::invalid(format!("unknown behaviour `{other}`"))),
        }
    }
}

subagent_sdk::export!(Misbehave);
