//! Sizes as Kubernetes writes them (`10Gi`, `500M`, `1.5Ki`, `1e9`) or plain byte counts, to
//! a whole number of bytes; and bytes back to text people read (`1.5 MiB`).

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// A positive whole number of bytes from a quantity (`10Gi`, `2G`, `1e9`) or a byte count.
pub fn bytes(limit: &IntOrString) -> Result<i64, String> {
    let text = match limit {
        IntOrString::Int(n) if *n > 0 => return Ok(i64::from(*n)),
        IntOrString::Int(n) => return Err(format!("{n} is not a positive number of bytes")),
        IntOrString::String(s) => s.trim(),
    };
    let bad = || {
        format!(
            "{text:?} is not a size: use a Kubernetes quantity such as 10Gi, 500Mi or 2G, or a number of bytes"
        )
    };
    let number_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(number_end);
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && frac.is_empty() || frac.contains('.') {
        return Err(bad());
    }
    let digits: u128 = format!("{whole}{frac}").parse().map_err(|_| bad())?;
    // value = digits * num / den
    let (mut num, mut den): (u128, u128) = (1, 10u128.pow(frac.len() as u32));
    let power = |base: u128, p: u32| base.checked_pow(p);
    match suffix {
        "" => {}
        "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => {
            let p = "KMGTPE".find(&suffix[..1]).unwrap_or(0) as u32 + 1;
            num = power(1024, p).ok_or_else(bad)?;
        }
        "k" | "M" | "G" | "T" | "P" | "E" => {
            let p = "kMGTPE".find(suffix).unwrap_or(0) as u32 + 1;
            num = power(1000, p).ok_or_else(bad)?;
        }
        "m" => den = den.checked_mul(1000).ok_or_else(bad)?,
        s if s.starts_with(['e', 'E']) => {
            let e: i32 = s[1..].parse().map_err(|_| bad())?;
            let scale = power(10, e.unsigned_abs()).ok_or_else(bad)?;
            if e >= 0 {
                num = scale;
            } else {
                den = den.checked_mul(scale).ok_or_else(bad)?;
            }
        }
        _ => return Err(bad()),
    }
    let total = digits.checked_mul(num).ok_or_else(bad)?;
    if total % den != 0 {
        return Err(format!("{text:?} is not a whole number of bytes"));
    }
    match i64::try_from(total / den) {
        Ok(0) => Err(format!("{text:?} is not a positive number of bytes")),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{text:?} is too large")),
    }
}

/// Bytes in the largest binary unit that keeps the value at 1 or more, one decimal
/// (`512 B`, `1.5 MiB`).
pub fn human(bytes: i64) -> String {
    const UNITS: [&str; 7] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB"];
    if bytes.abs() < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value.abs() >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Result<i64, String> {
        bytes(&IntOrString::String(text.into()))
    }

    #[test]
    fn quantities_become_bytes() {
        assert_eq!(s("10Gi"), Ok(10 << 30));
        assert_eq!(s("500Mi"), Ok(500 << 20));
        assert_eq!(s("2G"), Ok(2_000_000_000));
        assert_eq!(s("1k"), Ok(1000));
        assert_eq!(s("1.5Ki"), Ok(1536));
        assert_eq!(s("1e9"), Ok(1_000_000_000));
        assert_eq!(s("4096"), Ok(4096));
        assert_eq!(s("2000m"), Ok(2));
        assert_eq!(bytes(&IntOrString::Int(1_048_576)), Ok(1_048_576));
    }

    #[test]
    fn bad_sizes_are_refused_with_a_reason() {
        for bad in ["ten gigs", "", "10 GB", "Gi", "1..5Gi", "10Xi"] {
            let e = s(bad).unwrap_err();
            assert!(e.contains("is not a size"), "{bad}: {e}");
        }
        assert!(s("1.3").unwrap_err().contains("whole number"));
        assert!(s("0").unwrap_err().contains("positive"));
        assert!(bytes(&IntOrString::Int(-1)).is_err());
        assert!(s("100E").unwrap_err().contains("too large"));
    }

    #[test]
    fn bytes_read_as_people_write_them() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(10 << 30), "10.0 GiB");
    }
}
