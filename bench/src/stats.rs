//! Median, minimum and maximum of a few samples.

/// The summary of a set of samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// The middle sample (the mean of the two middle ones for an even count).
    pub median: f64,
    /// The smallest sample.
    pub min: f64,
    /// The largest sample.
    pub max: f64,
}

impl Summary {
    /// Summarizes `samples`; `None` when there are none. NaNs sort last.
    pub fn of(samples: &[f64]) -> Option<Summary> {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let (&min, &max) = (sorted.first()?, sorted.last()?);
        let middle = sorted.len() / 2;
        let median = if sorted.len() % 2 == 1 {
            sorted[middle]
        } else {
            (sorted[middle - 1] + sorted[middle]) / 2.0
        };
        Some(Summary { median, min, max })
    }
}

/// How many times faster the Rust side is: Rust speed ÷ Python speed, from the two medians.
/// For a time per operation (`higher_is_better == false`) that is Python ÷ Rust; for a rate,
/// Rust ÷ Python.
pub fn speed_ratio(rust: f64, python: f64, higher_is_better: bool) -> f64 {
    if higher_is_better {
        rust / python
    } else {
        python / rust
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_count_takes_the_middle() {
        let summary = Summary::of(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!(
            summary,
            Summary {
                median: 3.0,
                min: 1.0,
                max: 5.0
            }
        );
    }

    #[test]
    fn even_count_averages_the_two_middle_ones() {
        assert_eq!(Summary::of(&[4.0, 1.0, 2.0, 10.0]).unwrap().median, 3.0);
    }

    #[test]
    fn one_sample_is_everything() {
        let summary = Summary::of(&[7.0]).unwrap();
        assert_eq!((summary.median, summary.min, summary.max), (7.0, 7.0, 7.0));
    }

    #[test]
    fn no_samples_no_summary() {
        assert_eq!(Summary::of(&[]), None);
    }

    #[test]
    fn ratio_of_times_is_inverted() {
        assert_eq!(speed_ratio(0.5, 2.0, false), 4.0);
        assert_eq!(speed_ratio(300.0, 100.0, true), 3.0);
    }
}
