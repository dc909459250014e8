//! The figures of docs/benchmarks.md: AWS requests (all and mutating, as moto recorded them) of a
//! fresh deploy in two AZs, a no-op redeploy, `ips` and `status`, and the wall time of the no-op
//! redeploy and of `ips` against the local emulator (binary and zip already built).
//!
//! `cargo nextest run -p fixedip-tests --no-capture benchmarks::` prints them. The assertions hold
//! the bounds the figures are quoted against.

use std::time::{Duration, Instant};

use fixedip_tests::{count, example_dir, example_zip, Emulator};

fn timed(emulator: &Emulator, args: &[&str]) -> (Duration, (usize, usize)) {
    let mark = emulator.mark();
    let started = Instant::now();
    let output = emulator
        .cargo_fixedip()
        .args(args)
        .current_dir(example_dir())
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (elapsed, count(&emulator.requests_since(mark)))
}

#[test]
fn api_calls_and_wall_times() {
    let zip = example_zip().to_str().unwrap().to_owned();
    let emulator = Emulator::start();
    let deploy = ["deploy", "--zip", zip.as_str()];

    let (fresh_time, fresh) = timed(&emulator, &deploy);
    // Best of three: the machine is shared, the minimum is the figure least disturbed by others.
    let (noop_time, noop) = (0..3)
        .map(|_| timed(&emulator, &deploy))
        .min_by_key(|(t, _)| *t)
        .unwrap();
    let (ips_time, ips) = (0..3)
        .map(|_| timed(&emulator, &["ips"]))
        .min_by_key(|(t, _)| *t)
        .unwrap();
    let (status_time, status) = timed(&emulator, &["status"]);

    println!("| command | AWS requests | mutating | wall time |");
    println!("|---|---|---|---|");
    for (name, time, (total, mutating)) in [
        ("fresh deploy, azs = 2", fresh_time, fresh),
        ("no-op redeploy", noop_time, noop),
        ("ips", ips_time, ips),
        ("status", status_time, status),
    ] {
        println!(
            "| {name} | {total} | {mutating} | {:.0} ms |",
            time.as_secs_f64() * 1000.0
        );
    }

    assert_eq!(noop.1, 0, "a no-op redeploy makes no mutating call");
    assert_eq!(ips, (1, 0), "ips answers with one DescribeAddresses");
    assert_eq!(status.1, 0);
}
