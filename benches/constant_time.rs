//! Constant-time evidence by timing, in the style of dudect: the same experiments as
//! `constant_time_counts` (`benches/support/constant_time_cases.rs`), each request timed,
//! the classes drawn at random and interleaved, compared with Welch's t-test after
//! dropping each class's slowest 10% (dudect's cropping). |t| < 4.5 is the usual bar.
//!
//! Timing on a shared virtual machine is noisy, so this prints and never fails; the
//! instruction counts are what CI checks. `SECURITY.md` records both.
//!
//! Run with: `cargo bench --bench constant_time [-- samples-per-class]`
#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout)]

use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[path = "support/constant_time_cases.rs"]
mod support;

use support::{cases, welch_t};

const DEFAULT_SAMPLES: usize = 200_000;
const WARM_UP: usize = 10_000;
const BATCH: usize = 10_000;

/// Sort and drop the slowest tenth.
fn cropped(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v.truncate(v.len() * 9 / 10);
    v
}

fn main() {
    let samples = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(DEFAULT_SAMPLES);
    println!("| case | near: median ns | far: median ns | t (cropped) | reading |");
    println!("|---|---|---|---|---|");
    for (index, mut case) in cases().into_iter().enumerate() {
        let mut rng = StdRng::seed_from_u64(0x7157 ^ index as u64);
        for i in 0..WARM_UP {
            let request = (case.make)(&mut rng, i % 2 == 0);
            assert_eq!((case.check)(request), case.expected);
        }
        let (mut near, mut far) = (Vec::new(), Vec::new());
        // As dudect does, inputs are made in batches before any is timed, so that making
        // them (more random draws for "far") cannot disturb the timed region.
        for _ in 0..(samples * 2).div_ceil(BATCH) {
            let batch: Vec<_> = (0..BATCH)
                .map(|_| {
                    let class = rng.random::<bool>();
                    (class, (case.make)(&mut rng, class))
                })
                .collect();
            for (class, request) in batch {
                let started = Instant::now();
                let status = (case.check)(request);
                let elapsed = started.elapsed().as_nanos() as f64;
                assert_eq!(status, case.expected);
                if class { &mut near } else { &mut far }.push(elapsed);
            }
        }
        let (near, far) = (cropped(near), cropped(far));
        // The cropped samples are the fastest 90%: the full sample's median is at 5/9.
        let median = |v: &[f64]| v[v.len() * 5 / 9];
        let t = welch_t(&near, &far);
        let reading = match (case.control, t.abs() >= 4.5) {
            (false, false) => "no difference",
            (false, true) => "difference",
            (true, true) => "difference (the control's leak is seen)",
            (true, false) => "control's leak not seen: too few samples or too much noise",
        };
        println!(
            "| {} | {:.0} | {:.0} | {t:.2} | {reading} |",
            case.name,
            median(&near),
            median(&far),
        );
    }
}
