//! Durations and sizes for people: a few significant digits and a unit.

/// `850 ns`, `12.3 µs`, `1.52 s`: three significant digits (more from 1000 s up).
pub(super) fn duration(ns: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1_000_000_000, "s"), (1_000_000, "ms"), (1_000, "µs")];
    for (scale, unit) in UNITS {
        if ns >= scale {
            let decimals = match ns / scale {
                0..=9 => 2,
                10..=99 => 1,
                _ => 0,
            };
            return format!("{} {unit}", scaled(ns, scale, decimals));
        }
    }
    format!("{ns} ns")
}

/// `512 bytes`, `1.2 KB`, `12 MB`, `3.4 GB` (powers of 1000): two significant digits.
pub(crate) fn size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1_000_000_000, "GB"), (1_000_000, "MB"), (1_000, "KB")];
    for (scale, unit) in UNITS {
        if bytes >= scale {
            let decimals = u32::from(bytes / scale < 10);
            return format!("{} {unit}", scaled(bytes, scale, decimals));
        }
    }
    if bytes == 1 {
        "1 byte".to_owned()
    } else {
        format!("{bytes} bytes")
    }
}

/// `value / scale` rounded to `decimals` decimals, computed on integers.
fn scaled(value: u64, scale: u64, decimals: u32) -> String {
    let ten = 10u64.pow(decimals);
    let step = (scale / ten).max(1);
    let rounded = value.saturating_add(step / 2) / step;
    if decimals == 0 {
        rounded.to_string()
    } else {
        let width = ten.to_string().len() - 1;
        format!("{}.{:0width$}", rounded / ten, rounded % ten)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration(0), "0 ns");
        assert_eq!(duration(999), "999 ns");
        assert_eq!(duration(1_000), "1.00 µs");
        assert_eq!(duration(12_345), "12.3 µs");
        assert_eq!(duration(123_456_789), "123 ms");
        assert_eq!(duration(1_524_000_000), "1.52 s");
        assert_eq!(duration(4_000_000_000_000), "4000 s");
        assert_eq!(duration(9_999), "10.00 µs");
    }

    #[test]
    fn sizes() {
        assert_eq!(size(1), "1 byte");
        assert_eq!(size(512), "512 bytes");
        assert_eq!(size(1_250), "1.3 KB");
        assert_eq!(size(12_345_678), "12 MB");
        assert_eq!(size(3_400_000_000), "3.4 GB");
    }
}
