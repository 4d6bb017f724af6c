//! Parsers for settings that arrive as flags or environment variables.
//!
//! The Helm chart renders every value into an environment variable, and a value left empty
//! (`""`, `[]`, `{}`) renders as the empty string. An empty setting therefore means "the
//! default", never an error: the operator and the runner must start with any chart values
//! the chart's schema accepts.

use std::str::FromStr;

use ipnet::IpNet;

/// A parser that reads an empty (or all-blank) value as `default`, and anything else as `T`.
pub fn or_default<T>(default: &'static str) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    move |value: &str| {
        let value = value.trim();
        let value = if value.is_empty() { default } else { value };
        value
            .parse::<T>()
            .map_err(|e| format!("{value:?} is not valid here: {e}"))
    }
}

/// Like `or_default`, for a number that must lie in `min..=max`.
pub fn number_in<T>(
    default: &'static str,
    min: T,
    max: T,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: FromStr + PartialOrd + std::fmt::Display + Copy + Send + Sync + 'static,
    T::Err: std::fmt::Display,
{
    let parse = or_default::<T>(default);
    move |value: &str| {
        let n = parse(value)?;
        if n < min || n > max {
            return Err(format!("{n} is out of range: use a number from {min} to {max}"));
        }
        Ok(n)
    }
}

/// Like `or_default`, for a number that must be at least `min`.
pub fn at_least(
    default: &'static str,
    min: u64,
) -> impl Fn(&str) -> Result<u64, String> + Clone + Send + Sync + 'static {
    let parse = or_default::<u64>(default);
    move |value: &str| {
        let n = parse(value)?;
        if n < min {
            return Err(format!("{n} is too small: use at least {min}"));
        }
        Ok(n)
    }
}

/// Like `or_default`, for a value that must be one of `allowed`.
pub fn one_of(
    default: &'static str,
    allowed: &'static [&'static str],
) -> impl Fn(&str) -> Result<String, String> + Clone + Send + Sync + 'static {
    move |value: &str| {
        let value = value.trim();
        let value = if value.is_empty() { default } else { value };
        if allowed.contains(&value) {
            Ok(value.to_string())
        } else {
            Err(format!("{value:?} is not one of {}", allowed.join(", ")))
        }
    }
}

/// A Kubernetes resource quantity such as `100m`, `512Mi` or `1`; empty means `default`.
pub fn quantity(default: &'static str) -> impl Fn(&str) -> Result<String, String> + Clone + Send + Sync + 'static {
    move |value: &str| {
        let value = value.trim();
        let value = if value.is_empty() { default } else { value };
        if is_quantity(value) {
            Ok(value.to_string())
        } else {
            Err(format!(
                "{value:?} is not a resource quantity: use e.g. 100m, 1, 64Mi or 1Gi"
            ))
        }
    }
}

/// The syntax of a Kubernetes quantity: a decimal number and an optional SI or binary suffix
/// or decimal exponent.
fn is_quantity(value: &str) -> bool {
    let unsigned = value.strip_prefix(['+', '-']).unwrap_or(value);
    let digits_end = unsigned
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(digits_end);
    let number_ok = !number.is_empty() && number != "." && number.matches('.').count() <= 1;
    let suffix_ok = matches!(
        suffix,
        "" | "n" | "u" | "m" | "k" | "M" | "G" | "T" | "P" | "E" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei"
    ) || suffix.strip_prefix(['e', 'E']).is_some_and(|exp| {
        let exp = exp.strip_prefix(['+', '-']).unwrap_or(exp);
        !exp.is_empty() && exp.chars().all(|c| c.is_ascii_digit())
    });
    number_ok && suffix_ok
}

/// A comma-separated list of CIDRs (`10.0.0.0/8,fd00::/8`). Empty items are ignored, so the
/// empty string is the empty list; a bare address means that one address (`/32`, `/128`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct NetworkList(pub Vec<IpNet>);

impl NetworkList {
    pub fn parse(value: &str) -> Result<Self, String> {
        value
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| {
                item.parse::<IpNet>()
                    .or_else(|_| item.parse::<std::net::IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{item:?} is not a network: use a CIDR such as 10.0.0.0/8 or fd00::/8"))
            })
            .collect::<Result<_, _>>()
            .map(NetworkList)
    }

    /// The networks of several flags or values, in order.
    pub fn flatten(lists: &[NetworkList]) -> Vec<IpNet> {
        lists.iter().flat_map(|l| l.0.iter().copied()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_mean_the_default() {
        for empty in ["", " ", "\t"] {
            assert_eq!(or_default::<u64>("60")(empty), Ok(60));
            assert_eq!(or_default::<bool>("false")(empty), Ok(false));
            assert_eq!(or_default::<String>("us-east-1")(empty).unwrap(), "us-east-1");
            assert_eq!(number_in::<u32>("10", 1, 100)(empty), Ok(10));
            assert_eq!(
                one_of("IfNotPresent", &["Always", "IfNotPresent"])(empty).unwrap(),
                "IfNotPresent"
            );
            assert_eq!(quantity("512Mi")(empty).unwrap(), "512Mi");
            assert_eq!(NetworkList::parse(empty).unwrap(), NetworkList::default());
        }
        assert_eq!(NetworkList::parse(",,").unwrap(), NetworkList::default());
    }

    #[test]
    fn values_are_parsed_and_bad_ones_explained() {
        assert_eq!(or_default::<u64>("60")("5"), Ok(5));
        assert!(or_default::<u64>("60")("five").unwrap_err().contains("\"five\""));
        assert_eq!(number_in::<u32>("10", 1, 100)("100"), Ok(100));
        assert!(
            number_in::<u32>("10", 1, 100)("0")
                .unwrap_err()
                .contains("from 1 to 100")
        );
        assert!(one_of("A", &["A", "B"])("C").unwrap_err().contains("not one of A, B"));
        let nets = NetworkList::parse(" 10.0.0.0/8, fd00::/8 ,192.0.2.7").unwrap();
        assert_eq!(
            nets.0.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["10.0.0.0/8", "fd00::/8", "192.0.2.7/32"]
        );
        let err = NetworkList::parse("10.0.0.0/8,intranet").unwrap_err();
        assert!(err.contains("\"intranet\"") && err.contains("CIDR"), "{err}");
        assert_eq!(
            NetworkList::flatten(&[NetworkList::parse("10.0.0.0/8").unwrap(), nets.clone()]).len(),
            4
        );
    }

    #[test]
    fn quantities_follow_the_kubernetes_syntax() {
        for ok in ["1", "100m", "0.5", "64Mi", "1Gi", "1e3", "2E+2", "+1", "1.5k"] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["", "Mi", "1.2.3", "10MB", "1e", "abc", "1 Gi", "."] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }
}
