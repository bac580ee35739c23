//! The tracer's tick arithmetic. Callbacks read raw ticks (the TSC on `x86_64`) and turn them into
//! monotonic nanoseconds with a [`Calibration`] (a start point, ticks and nanoseconds read
//! together, and a rate measured before recording starts), through its integer form
//! [`TickConverter`]. Reading the clocks is fever-monitor's.

/// Converts ticks to monotonic nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    ticks0: u64,
    ns0: u64,
    ns_per_tick: Option<f64>,
}

impl Calibration {
    /// A start point: `ticks0` and `ns0` read together; `ns_per_tick` when the rate is known
    /// beforehand (ticks that are nanoseconds), else `None` until [`Calibration::set_rate`].
    pub fn new(ticks0: u64, ns0: u64, ns_per_tick: Option<f64>) -> Self {
        Self {
            ticks0,
            ns0,
            ns_per_tick,
        }
    }

    /// Monotonic nanoseconds at the start point.
    pub fn start_ns(&self) -> u64 {
        self.ns0
    }

    /// Is the rate known?
    pub fn calibrated(&self) -> bool {
        self.ns_per_tick.is_some()
    }

    /// The rate, or 1 before it is known.
    pub fn ns_per_tick(&self) -> f64 {
        self.ns_per_tick.unwrap_or(1.0)
    }

    /// Sets the rate from a second pair of readings, `ticks1` and `ns1` read together.
    pub fn set_rate(&mut self, ticks1: u64, ns1: u64) {
        self.ns_per_tick = Some(rate(self.ticks0, self.ns0, ticks1, ns1));
    }

    /// `ticks` in monotonic nanoseconds (before the rate is known, it is taken as 1).
    pub fn to_ns(self, ticks: u64) -> u64 {
        let rate = self.ns_per_tick();
        // Ticks before the start point (a thread whose clock lags by a few) give a negative offset.
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_possible_wrap
        )]
        let offset = (ticks.wrapping_sub(self.ticks0) as i64 as f64 * rate) as i64;
        self.ns0.saturating_add_signed(offset)
    }
}

impl Calibration {
    /// [`Calibration::to_ns`] in integer arithmetic (a multiply and a shift), for callbacks.
    pub fn converter(self) -> TickConverter {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )] // rates are < 2^15; 2^48 is exact
        let mult = (self.ns_per_tick() * (1u64 << SHIFT) as f64) as u64;
        TickConverter {
            ticks0: self.ticks0,
            ns0: self.ns0,
            mult: i64::try_from(mult).unwrap_or(i64::MAX),
        }
    }
}

/// Fraction bits of [`TickConverter`]'s rate: a tick offset (< 2^63) times the rate (< 2^15 ns
/// per tick) stays within an `i128`.
const SHIFT: u32 = 48;

/// A [`Calibration`] with its rate in fixed point: what callbacks convert ticks with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickConverter {
    ticks0: u64,
    ns0: u64,
    /// Nanoseconds per tick, times 2^[`SHIFT`] (< 2^63: one 64 × 64 → 128-bit multiply).
    mult: i64,
}

impl TickConverter {
    /// `ticks` in monotonic nanoseconds (within a nanosecond of [`Calibration::to_ns`]).
    #[inline(always)]
    #[allow(clippy::inline_always)] // every event of a recording converts its time
    pub fn to_ns(self, ticks: u64) -> u64 {
        // Ticks before the start point (a thread whose clock lags by a few) give a negative
        // offset; the wrapping difference read as signed covers spans of centuries.
        #[allow(clippy::cast_possible_wrap, clippy::cast_possible_truncation)]
        let offset = ((i128::from(ticks.wrapping_sub(self.ticks0) as i64) * i128::from(self.mult))
            >> SHIFT) as i64;
        // Wrapping, not saturating (a few instructions less per event): the offset of a lagging
        // thread is a few ticks, never the ~`ns0` nanoseconds since boot that would wrap.
        self.ns0.wrapping_add_signed(offset)
    }
}

impl TickConverter {
    /// This converter's time line from `ticks` on at `rate`'s rate: the same time at `ticks`,
    /// so times converted before and after never step back (a provisional rate replaced by a
    /// better one while recording).
    #[must_use]
    pub fn continued(self, ticks: u64, rate: Calibration) -> TickConverter {
        TickConverter {
            ticks0: ticks,
            ns0: self.to_ns(ticks),
            ..rate.converter()
        }
    }
}

/// Nanoseconds per tick between two pairs of readings (at least one tick apart).
pub fn rate(ticks0: u64, ns0: u64, ticks1: u64, ns1: u64) -> f64 {
    let dt = ticks1.saturating_sub(ticks0).max(1);
    #[allow(clippy::cast_precision_loss)] // spans of minutes fit f64's 52 bits exactly
    let rate = ns1.saturating_sub(ns0) as f64 / dt as f64;
    rate
}

/// `ticks` (a duration) in nanoseconds at `ns_per_tick`.
pub fn ticks_to_ns(ticks: u64, ns_per_tick: f64) -> u64 {
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let ns = (ticks as f64 * ns_per_tick) as u64;
    ns
}

/// Nanoseconds `ns` (a duration) in ticks at `ns_per_tick`.
pub fn ns_to_ticks(ns: u128, ns_per_tick: f64) -> u64 {
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let ticks = (ns as f64 / ns_per_tick) as u64;
    ticks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_convert_at_the_measured_rate() {
        // 3 GHz: a third of a nanosecond per tick.
        let mut c = Calibration::new(1_000, 5_000_000, None);
        assert!(!c.calibrated());
        assert_eq!(c.to_ns(1_300), 5_000_300, "rate 1 before calibration");
        c.set_rate(1_000 + 3_000_000, 5_000_000 + 1_000_000);
        assert!((c.ns_per_tick() - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(c.to_ns(1_000 + 3_000), 5_001_000);
        // A lagging thread's ticks before the start point.
        assert_eq!(c.to_ns(1_000 - 300), 4_999_900);
        assert_eq!(c.start_ns(), 5_000_000);
    }

    #[test]
    fn the_integer_converter_agrees_with_the_calibration() {
        let mut measured = Calibration::new(1_000_000, 7_000_000_000, None);
        measured.set_rate(1_000_000 + 4, 7_000_000_000 + 10);
        let given = [1.0, 1.0 / 3.0, 0.417_312_5]
            .map(|rate| Calibration::new(1_000_000, 7_000_000_000, Some(rate)));
        for c in given.into_iter().chain([measured]) {
            let rate = c.ns_per_tick();
            let fast = c.converter();
            for ticks in [0, 999_999, 1_000_000, 1_000_001, 1 << 40, 3 << 44] {
                assert!(
                    fast.to_ns(ticks).abs_diff(c.to_ns(ticks)) <= 1,
                    "rate {rate}, ticks {ticks}: {} vs {}",
                    fast.to_ns(ticks),
                    c.to_ns(ticks)
                );
            }
        }
    }

    #[test]
    fn a_continued_converter_starts_where_the_first_left_off() {
        let mut rough = Calibration::new(1_000, 5_000_000, None);
        rough.set_rate(1_000 + 3_000_000, 5_000_000 + 1_010_000);
        let mut exact = Calibration::new(1_000, 5_000_000, None);
        exact.set_rate(1_000 + 30_000_000, 5_000_000 + 10_000_000);
        let first = rough.converter();
        let at = 1_000 + 6_000_000;
        let then = first.continued(at, exact);
        assert_eq!(then.to_ns(at), first.to_ns(at));
        assert!(then.to_ns(at + 1) >= first.to_ns(at));
        // A third of a nanosecond per tick from there on (within the fixed point's nanosecond).
        let later = then.to_ns(at + 3_000_000) - then.to_ns(at);
        assert!(later.abs_diff(1_000_000) <= 1, "{later}");
    }

    #[test]
    fn rates_and_durations() {
        assert!((rate(0, 0, 2_000, 1_000) - 0.5).abs() < 1e-12);
        // No tick elapsed (never expected): no division by zero.
        assert!((rate(5, 0, 5, 7) - 7.0).abs() < 1e-12);
        assert_eq!(ticks_to_ns(3_000, 0.5), 1_500);
        assert_eq!(ns_to_ticks(1_500, 0.5), 3_000);
    }
}
