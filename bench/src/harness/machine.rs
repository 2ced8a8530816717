//! Where a run's figures come from: the kernel, the architecture and the CPU model, and the
//! date, for the lines above the results.

use std::fs;
use std::time::{SystemTime, UNIX_EPOCH};

/// `Linux 6.8.0-45-generic x86_64, Intel(R) Core(TM) i5-8250U CPU @ 1.60GHz`: what `uname -srm`
/// says, and the CPU model when `/proc/cpuinfo` names one (not every architecture does).
pub fn describe() -> String {
    let read = |path: &str| fs::read_to_string(path).ok().map(|s| s.trim().to_owned());
    let system = read("/proc/sys/kernel/ostype").unwrap_or_else(|| std::env::consts::OS.to_owned());
    let release =
        read("/proc/sys/kernel/osrelease").unwrap_or_else(|| "(release unknown)".to_owned());
    let machine = format!("{system} {release} {}", std::env::consts::ARCH);
    match read("/proc/cpuinfo").as_deref().and_then(cpu_model) {
        Some(model) => format!("{machine}, {model}"),
        None => machine,
    }
}

/// The first `model name` of a `/proc/cpuinfo`, with runs of spaces squeezed.
fn cpu_model(cpuinfo: &str) -> Option<String> {
    let line = cpuinfo
        .lines()
        .find(|line| line.starts_with("model name"))?;
    let (_, model) = line.split_once(':')?;
    let model = model.split_whitespace().collect::<Vec<_>>().join(" ");
    (!model.is_empty()).then_some(model)
}

/// Today's date in UTC, `2025-03-14`; `None` if the clock is before 1970.
pub fn today_utc() -> Option<String> {
    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    let (year, month, day) = civil_from_days(i64::try_from(seconds / 86_400).ok()?);
    Some(format!("{year:04}-{month:02}-{day:02}"))
}

/// The Gregorian date `days` days after 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_model_is_the_first_model_name() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: GenuineIntel\n\
                       model name\t: Intel(R) Xeon(R)   CPU @ 2.20GHz\n\nprocessor\t: 1\n\
                       model name\t: something else\n";
        assert_eq!(
            cpu_model(cpuinfo).as_deref(),
            Some("Intel(R) Xeon(R) CPU @ 2.20GHz")
        );
        assert_eq!(cpu_model("processor\t: 0\nBogoMIPS\t: 50.00\n"), None);
        assert_eq!(cpu_model("model name\t:   \n"), None);
    }

    #[test]
    fn days_become_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(19_797), (2024, 3, 15));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn this_machine_is_described() {
        let text = describe();
        assert!(text.contains(std::env::consts::ARCH), "{text}");
        assert!(today_utc().is_some_and(|date| date.len() == 10));
    }
}
