//! Reading TOML files into typed sections with messages that name the line, the section and the
//! key, for scenario and catalog files alike.

use serde::de::DeserializeOwned;

/// Parse `text` into `T`. On error, the message names the line, the section and the key (an
/// unknown key says so and lists the known ones), never a Rust type path alone.
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    let value: toml::Value = toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())?;
    let typed: Result<T, _> = serde_path_to_error::deserialize(value);
    let e = match typed {
        Ok(t) => return Ok(t),
        Err(e) => e,
    };
    // Parse again straight from the text for the line number of the offending span.
    let line = match toml::from_str::<T>(text) {
        Err(direct) => direct
            .span()
            .map(|span| format!("line {}: ", text[..span.start].matches('\n').count() + 1))
            .unwrap_or_default(),
        Ok(_) => String::new(),
    };
    let path = e.path().to_string();
    let inner = e.inner().to_string();
    let inner = inner.lines().next().unwrap_or("").to_string();
    let (section, key) = match path.rsplit_once('.') {
        Some((section, key)) => (Some(section), key),
        None => (None, path.as_str()),
    };
    // serde lists the known names as "expected `a`, `b` or `c`" (or "expected one of ...").
    let suggestion = |expected: &str| {
        let known = expected.split('`').skip(1).step_by(2);
        crate::error::did_you_mean(key, known)
    };
    Err(match (inner.strip_prefix("unknown field "), section) {
        (Some(rest), None) => {
            let expected = rest.split_once(", ").map_or("", |x| x.1);
            format!(
                "{line}unknown section [{key}]{}; {expected}",
                suggestion(expected)
            )
        }
        (Some(rest), Some(section)) => {
            let expected = rest.split_once(", ").map_or("", |x| x.1);
            format!(
                "{line}unknown key `{key}` in [{section}]{}; {expected}",
                suggestion(expected)
            )
        }
        (None, Some(section)) => format!("{line}[{section}] {key}: {inner}"),
        (None, None) => format!("{line}{key}: {inner}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct File {
        layout: Option<Layout>,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Layout {
        tp: Option<u32>,
    }

    #[test]
    fn unknown_key_names_line_section_and_choices() {
        let msg = parse::<File>("[layout]\ntpp = 2\n").unwrap_err();
        assert_eq!(
            msg,
            "line 2: unknown key `tpp` in [layout] (did you mean `tp`?); expected `tp`"
        );
    }

    /// Regression: a dotted key `a.b = 1` was reported as unknown key `b` in `[layout.a]`.
    #[test]
    fn a_dotted_key_is_reported_by_its_first_part_in_its_section() {
        let msg = parse::<File>("[layout]\ntp.x = 2\n").unwrap_err();
        assert!(msg.starts_with("line 2: [layout] tp: invalid type: map"), "{msg}");
        let msg = parse::<File>("[layout]\nt.p = 2\n").unwrap_err();
        assert!(msg.starts_with("line 2: unknown key `t` in [layout]"), "{msg}");
    }

    #[test]
    fn unknown_section_is_named() {
        let msg = parse::<File>("[layuot]\ntp = 2\n").unwrap_err();
        assert_eq!(
            msg,
            "line 1: unknown section [layuot] (did you mean `layout`?); expected `layout`"
        );
    }

    #[test]
    fn bad_value_names_section_and_key() {
        let msg = parse::<File>("[layout]\ntp = -4\n").unwrap_err();
        assert_eq!(
            msg,
            "line 2: [layout] tp: invalid value: integer `-4`, expected u32"
        );
    }

    #[test]
    fn syntax_error_keeps_toml_position() {
        let msg = parse::<File>("[layout\n").unwrap_err();
        assert!(msg.contains("line 1"), "{msg}");
    }
}
