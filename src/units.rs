//! How numbers are written, for programs and for people: the leaf every other layer may import
//! (it imports nothing of the crate). Counts held as f64 (parameters, tokens, bytes, FLOPs) are written as integers in the
//! JSON reports, so that a reader never sees `70553698304.0` or `70553698304.37` bytes, or
//! `1.6e19` FLOPs.

/// Largest integer an f64 holds exactly (2^53): beyond it a count is written as the float it
/// is (`1.2e21` FLOPs), which JSON readers take as a number all the same.
const EXACT_INTEGER_LIMIT: f64 = 9.007_199_254_740_992e15;

/// A count held as f64 written as the integer it is (`70553698304`, not `70553698304.0`);
/// anything else as the number it is.
pub fn whole_number<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.fract() == 0.0 && v.abs() < EXACT_INTEGER_LIMIT {
        s.serialize_i64(*v as i64)
    } else {
        s.serialize_f64(*v)
    }
}

/// 2^64: a non-negative count below it is written as a u64.
const U64_LIMIT: f64 = 18_446_744_073_709_551_616.0;

/// A count the model computes in f64 (bytes, FLOPs, tokens), which may carry a fraction of a
/// unit from its arithmetic: written as the nearest integer. Beyond 2^53 that integer is the
/// f64's own value (`16154271125889613824` FLOPs): its last digits are no more precise than the
/// float, but a reader sees a count, and parsing it gives the same f64 back. From 2^64 on (past
/// what JSON readers and `serde_json::Value` hold as integers) it is written as the float.
pub fn rounded_count<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    let rounded = v.round();
    if (0.0..U64_LIMIT).contains(&rounded) {
        s.serialize_u64(rounded as u64)
    } else if rounded < 0.0 && rounded.abs() < EXACT_INTEGER_LIMIT {
        s.serialize_i64(rounded as i64)
    } else {
        s.serialize_f64(*v)
    }
}

/// [`rounded_count`] of a count that may be absent (`null`).
pub fn rounded_count_or_null<S: serde::Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(count) => rounded_count(count, s),
        None => s.serialize_none(),
    }
}

/// A count with thousands separators: "131,072", "33,554,432".
pub fn human_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// A rate or other count held as f64, rounded, with thousands separators.
pub fn human_rounded(v: f64) -> String {
    if v.is_finite() && (0.0..1.8e19).contains(&v) {
        human_count(v.round() as u64)
    } else {
        format!("{v:.3e}")
    }
}

/// Energy in the unit that fits it, to three or four significant figures: "4,140 MWh",
/// "598.6 GWh", "1.23 TWh".
pub fn human_mwh(mwh: f64) -> String {
    match mwh.abs() {
        x if x >= 1e6 => format!("{:.2} TWh", mwh / 1e6),
        x if x >= 1e4 => format!("{:.1} GWh", mwh / 1e3),
        x if x >= 10.0 => format!("{} MWh", human_rounded(mwh)),
        _ => format!("{mwh:.2} MWh"),
    }
}

/// Seconds in the unit a reader takes in at a glance.
pub fn human_duration(s: f64) -> String {
    if !s.is_finite() {
        return format!("{s}");
    }
    match s {
        s if s < 1e-3 => format!("{:.1} us", s * 1e6),
        s if s < 1.0 => format!("{:.1} ms", s * 1e3),
        s if s < 120.0 => format!("{s:.3} s"),
        s if s < 7200.0 => format!("{:.1} min", s / 60.0),
        s if s < 172_800.0 => format!("{:.1} h", s / 3600.0),
        s => format!("{:.1} days", s / 86_400.0),
    }
}

/// Bytes in GB (decimal, as datasheets state HBM).
pub fn human_bytes(b: f64) -> String {
    format!("{:.2} GB", b / 1e9)
}

/// Megawatts to three significant figures at most ("283 MW", "2.95 MW"), gigawatts from 1 GW
/// ("5.00 GW").
pub fn human_mw(mw: f64) -> String {
    match mw.abs() {
        x if x >= 1000.0 => format!("{:.2} GW", mw / 1000.0),
        x if x >= 100.0 => format!("{mw:.0} MW"),
        x if x >= 10.0 => format!("{mw:.1} MW"),
        _ => format!("{mw:.2} MW"),
    }
}

/// Dollars with a magnitude suffix.
pub fn human_usd(v: f64) -> String {
    match v.abs() {
        x if x >= 1e9 => format!("${:.2}B", v / 1e9),
        x if x >= 1e6 => format!("${:.2}M", v / 1e6),
        x if x >= 1e3 => format!("${:.1}k", v / 1e3),
        _ => format!("${v:.2}"),
    }
}

#[cfg(test)]
mod tests {
    #[derive(serde::Serialize)]
    struct Counts {
        #[serde(serialize_with = "super::rounded_count")]
        bytes: f64,
        #[serde(serialize_with = "super::rounded_count")]
        flops: f64,
        #[serde(serialize_with = "super::rounded_count")]
        exaflops: f64,
        #[serde(serialize_with = "super::whole_number")]
        parameters: f64,
        #[serde(serialize_with = "super::rounded_count_or_null")]
        memory: Option<f64>,
        #[serde(serialize_with = "super::rounded_count_or_null")]
        unknown: Option<f64>,
    }

    #[test]
    fn people_read_counts_with_separators_and_energy_in_its_unit() {
        assert_eq!(super::human_count(0), "0");
        assert_eq!(super::human_count(999), "999");
        assert_eq!(super::human_count(131_072), "131,072");
        assert_eq!(super::human_count(33_554_432), "33,554,432");
        assert_eq!(super::human_rounded(2_393_174.4), "2,393,174");
        assert_eq!(super::human_mwh(4140.2), "4,140 MWh");
        assert_eq!(super::human_mwh(598_600.0), "598.6 GWh");
        assert_eq!(super::human_mwh(1.234e6), "1.23 TWh");
        assert_eq!(super::human_mwh(2.5), "2.50 MWh");
    }

    #[test]
    fn counts_are_written_as_integers_up_to_2_to_the_64() {
        let c = Counts {
            bytes: 70_553_698_304.37,
            flops: 1.6154271125889614e19,
            exaflops: 1.25e21,
            parameters: 8.0e9,
            memory: Some(25_730_749_440.0),
            unknown: None,
        };
        let expected = r#"{"bytes":70553698304,"flops":16154271125889613824,"exaflops":1.25e+21,"parameters":8000000000,"memory":25730749440,"unknown":null}"#;
        assert_eq!(serde_json::to_string(&c).unwrap(), expected);
        // serde_json's Value (which the CSV of a sweep reads estimates through) takes every one.
        let parsed: serde_json::Value = serde_json::from_str(expected).unwrap();
        assert_eq!(serde_json::to_value(&c).unwrap(), parsed);
    }
}
