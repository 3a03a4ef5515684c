//! Constant-time evidence by instruction counts: every request of two classes of wrong
//! credentials (one close to a real credential, one far from it) runs under valgrind's
//! callgrind, which counts the instructions each request executes. Counts, unlike times, do
//! not depend on what else the machine is doing, so the comparison is repeatable and can
//! fail a build.
//!
//! Each case draws the two classes at random, interleaved, from a seeded generator, and
//! compares the per-request counts with Welch's t-test (|t| < 4.5 is the usual bar). A
//! *control* runs alongside: `tower-http`'s bearer check, which compares with `==` and is
//! not constant time. The run fails if any callguard case shows a difference, or if the
//! control does not (then the method would be blind, and a pass would mean nothing).
//!
//! What this does and does not show: a secret-dependent branch, loop bound or early exit
//! changes the instruction count and is caught. Secret-dependent memory addresses (cache
//! timing) and variable-latency instructions are not counted; callguard's comparisons are
//! `subtle`'s, which have neither. Under valgrind the CPU reports no SHA extensions, so the
//! software SHA-256 paths are the ones counted.
//!
//! Run with: `cargo bench --bench constant_time_counts [-- samples-per-class]`
//! (needs `valgrind` on `PATH`; `.ci/run` installs it and runs this).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use http::{Request, StatusCode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[path = "support/constant_time_cases.rs"]
mod support;

use support::{Body, Check, cases, welch_t};

/// The function whose instructions are counted, one callgrind dump per call.
const MEASURED: &str = "constant_time_counts::measured_request";
const SEED: u64 = 0x0c0f_fee5;
const DEFAULT_SAMPLES: usize = 400;
/// Requests run before counting starts, so lazily built state is in place.
const WARM_UP: usize = 64;

/// The counted call. Not inlined, so callgrind can find it by name. Warm-up requests go
/// through it too (a second, identical function would be merged with it by the compiler);
/// their dumps are skipped.
#[inline(never)]
fn measured_request(check: &mut Check, request: Request<Body>) -> StatusCode {
    check(request)
}

/// Under valgrind: run one case's requests and print their classes, in order, as `n`/`f`.
fn probe(index: usize, samples: usize) {
    let mut case = cases().swap_remove(index);
    let mut rng = StdRng::seed_from_u64(SEED ^ index as u64);
    for i in 0..WARM_UP {
        let request = (case.make)(&mut rng, i % 2 == 0);
        assert_eq!(measured_request(&mut case.check, request), case.expected);
    }
    let mut classes = String::with_capacity(samples * 2);
    for _ in 0..samples * 2 {
        let near = rng.random::<bool>();
        let request = (case.make)(&mut rng, near);
        assert_eq!(measured_request(&mut case.check, request), case.expected);
        classes.push(if near { 'n' } else { 'f' });
    }
    println!("{classes}");
}

/// The instruction count of one callgrind dump file.
fn dump_total(path: &Path) -> u64 {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("totals:"))
        .or_else(|| text.lines().find_map(|line| line.strip_prefix("summary:")))
        .and_then(|total| total.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no totals in {}", path.display()))
}

/// Run case `index` under callgrind and return its per-request counts by class.
fn count(index: usize, samples: usize, directory: &Path) -> (Vec<f64>, Vec<f64>) {
    let out = directory.join(format!("case{index}.out"));
    let output = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg("--collect-atstart=no")
        .arg(format!("--toggle-collect={MEASURED}"))
        .arg(format!("--dump-after={MEASURED}"))
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(std::env::current_exe().unwrap())
        .args(["probe", &index.to_string(), &samples.to_string()])
        .output()
        .expect("valgrind on PATH (Debian package `valgrind`)");
    assert!(
        output.status.success(),
        "probe failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let classes = String::from_utf8(output.stdout).unwrap();
    let classes = classes.trim();
    assert_eq!(classes.len(), samples * 2, "one class per request");
    let (mut near, mut far) = (Vec::new(), Vec::new());
    for (i, class) in classes.chars().enumerate() {
        let dump = PathBuf::from(format!("{}.{}", out.display(), WARM_UP + i + 1));
        let total = dump_total(&dump) as f64;
        assert!(total > 0.0, "{MEASURED} was not found by name");
        if class == 'n' {
            near.push(total);
        } else {
            far.push(total);
        }
    }
    (near, far)
}

/// A class's counts: the most common one with how often it occurred, and the range.
fn spread(v: &[f64]) -> String {
    let mut counts = std::collections::BTreeMap::<u64, usize>::new();
    for x in v {
        *counts.entry(*x as u64).or_default() += 1;
    }
    let (mode, times) = counts.iter().max_by_key(|(_, n)| **n).unwrap();
    let (min, max) = (counts.keys().next().unwrap(), counts.keys().last().unwrap());
    if min == max {
        format!("{mode} in all {}", v.len())
    } else {
        format!("{mode} in {times} of {} (range {min}–{max})", v.len())
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("probe") {
        probe(args[1].parse().unwrap(), args[2].parse().unwrap());
        return ExitCode::SUCCESS;
    }
    let samples = args
        .iter()
        .find_map(|a| a.parse().ok())
        .unwrap_or(DEFAULT_SAMPLES);
    let directory = std::env::temp_dir().join(format!("callguard-ct-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();

    println!("| case | near: instructions per request | far | t | verdict |");
    println!("|---|---|---|---|---|");
    let mut failed = false;
    for (index, case) in cases().iter().enumerate() {
        let (near, far) = count(index, samples, &directory);
        let t = welch_t(&near, &far);
        let detected = t.abs() >= 4.5;
        let verdict = match (case.control, detected) {
            (false, false) => "no difference",
            (false, true) => "DIFFERENCE: depends on the secret",
            (true, true) => "difference found (expected: the method sees leaks)",
            (true, false) => "NOT FOUND: the method is blind here",
        };
        failed |= case.control != detected;
        println!(
            "| {} | {} | {} | {t:.2} | {verdict} |",
            case.name,
            spread(&near),
            spread(&far)
        );
    }
    let _ = std::fs::remove_dir_all(&directory);
    if failed {
        eprintln!("constant-time evidence failed");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
