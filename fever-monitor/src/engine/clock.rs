//! The engine's clock: raw ticks in callbacks (the TSC on `x86_64`, a few nanoseconds cheaper per
//! event than `clock_gettime`), converted to monotonic nanoseconds (`CLOCK_MONOTONIC`, what
//! `time.monotonic_ns()` reads) in the tracer's callbacks with a calibration from the extension's
//! import ([`mark`]): recording starts with a provisional one over what elapsed until then (at
//! least [`PROVISIONAL`]), and the tracer continues its time line at a better rate once
//! [`CALIBRATION`] has elapsed ([`refined`]). The arithmetic is `fever_core::clock`'s; reading
//! the clocks is here.

use std::sync::OnceLock;
use std::time::Duration;

pub use fever_core::clock::Calibration;

/// Shortest interval the tick rate is measured over.
const CALIBRATION: Duration = Duration::from_millis(20);
/// Shortest interval the provisional rate recording starts with is measured over (a few parts
/// in 100,000: a few microseconds over the tenths of a second before the tracer refines it).
const PROVISIONAL: Duration = Duration::from_millis(2);

/// Now, in raw ticks.
#[inline(always)]
#[allow(clippy::inline_always)] // twice per call of the program
pub fn ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `rdtsc` has no preconditions; every x86_64 CPU has it.
    unsafe {
        core::arch::x86_64::_rdtsc()
    }
    #[cfg(not(target_arch = "x86_64"))]
    monotonic_ns()
}

/// `CLOCK_MONOTONIC` in nanoseconds.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write to.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut ts) };
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}

/// Which clock the ticks come from (written into the trace header).
pub fn source() -> &'static str {
    if cfg!(target_arch = "x86_64") {
        "tsc"
    } else {
        "monotonic"
    }
}

/// The start point of the calibrations ([`provisional`], [`refined`]), taken at the extension's
/// import.
static EARLY: OnceLock<(u64, u64)> = OnceLock::new();

/// Takes the start point of the calibrations (at import: what runs before recording starts then
/// usually covers [`PROVISIONAL`], and recording starts without waiting).
pub fn mark() {
    EARLY.get_or_init(pair);
}

/// A calibration measured from [`mark`] (or from now) over at least [`PROVISIONAL`], for
/// recording to start with (the tracer then asks for [`refined`]).
pub fn provisional() -> Calibration {
    measured_over(PROVISIONAL)
}

/// A calibration measured from [`mark`] to now and the ticks it ends at, once at least
/// [`CALIBRATION`] has elapsed (else `None`).
pub fn refined() -> Option<(Calibration, u64)> {
    let &start = EARLY.get()?;
    let end = pair();
    if Duration::from_nanos(end.1.saturating_sub(start.1)) < CALIBRATION {
        return None;
    }
    Some((between(start, || end), end.0))
}

/// A calibration measured from [`mark`] (or from now) over at least `over`, sleeping what
/// remains of it.
fn measured_over(over: Duration) -> Calibration {
    let start = *EARLY.get_or_init(pair);
    between(start, || {
        let elapsed = Duration::from_nanos(monotonic_ns().saturating_sub(start.1));
        std::thread::sleep(over.saturating_sub(elapsed));
        pair()
    })
}

/// A calibration from the `start` pair, its rate measured to the pair `end` gives (asked for only
/// where ticks are not nanoseconds already).
fn between(start: (u64, u64), end: impl FnOnce() -> (u64, u64)) -> Calibration {
    let mut c = Calibration::new(
        start.0,
        start.1,
        cfg!(not(target_arch = "x86_64")).then_some(1.0),
    );
    if !c.calibrated() {
        let (ticks1, ns1) = end();
        c.set_rate(ticks1, ns1);
    }
    c
}

/// Nanoseconds per tick, measured by spinning for `over` (1 ms gives a rate good to a few
/// parts in 100,000: enough to compare durations with a threshold).
pub fn quick_rate(over: Duration) -> f64 {
    if cfg!(not(target_arch = "x86_64")) {
        return 1.0;
    }
    let (t0, ns0) = pair();
    let over_ns = u64::try_from(over.as_nanos()).unwrap_or(u64::MAX);
    while monotonic_ns().saturating_sub(ns0) < over_ns {
        std::hint::spin_loop();
    }
    let (t1, ns1) = pair();
    fever_core::clock::rate(t0, ns0, t1, ns1)
}

/// Ticks and nanoseconds read as close together as possible (the pair with the shortest gap of
/// three tries).
fn pair() -> (u64, u64) {
    let mut best = (0, 0, u64::MAX);
    for _ in 0..3 {
        let a = ticks();
        let ns = monotonic_ns();
        let b = ticks();
        if b.wrapping_sub(a) < best.2 {
            best = (a + b.wrapping_sub(a) / 2, ns, b.wrapping_sub(a));
        }
    }
    (best.0, best.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converted_ticks_track_the_monotonic_clock() {
        let c = measured_over(CALIBRATION);
        std::thread::sleep(Duration::from_millis(5));
        let (t, ns) = pair();
        let converted = c.to_ns(t);
        let error = converted.abs_diff(ns);
        assert!(error < 200_000, "off by {error} ns");
        assert!(c.to_ns(ticks()) >= c.start_ns());
        let quick = quick_rate(Duration::from_millis(1));
        let rate = c.ns_per_tick();
        assert!((quick / rate - 1.0).abs() < 0.01, "{quick} vs {rate}");
        let first = provisional().converter();
        let (better, at) = refined().expect("20 ms elapsed since the calibration's start");
        let then = first.continued(at, better);
        assert!(then.to_ns(ticks()) >= first.to_ns(at));
        let (t, ns) = pair();
        let error = then.to_ns(t).abs_diff(ns);
        assert!(error < 200_000, "refined: off by {error} ns");
    }
}
