//! Durations as people write them in specs: `90s`, `5m`, `720h`, `2w`, `1h30m`.

use std::time::Duration;

/// Parses a sequence of `<number><unit>` with units `s`, `m`, `h`, `d`, `w`.
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => {
                return Err(format!(
                    "{text:?} is not a duration (use e.g. 90s, 5m, 720h, 2w)"
                ));
            }
        };
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("{text:?} is not a duration (a number must precede {c:?})"))?;
        digits.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("{text:?} is too long"))?;
    }
    if !digits.is_empty() {
        return Err(format!(
            "{text:?} is not a duration (a unit must follow {digits})"
        ));
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_people_write() {
        assert_eq!(parse("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse("720h").unwrap(), Duration::from_secs(720 * 3600));
        assert_eq!(parse("2w").unwrap(), Duration::from_secs(14 * 86_400));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        for bad in ["", "5", "m", "5x", "1.5h", "99999999999999999999w"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
