//! A strict checker of Prometheus text exposition format 0.0.4, for tests.
//!
//! Stricter than Prometheus where our output has no reason to use a freedom of the format: no
//! blank lines, no comments other than `# HELP`/`# TYPE`, both of them for every family before
//! its first sample, no timestamps, no trailing commas in label sets, histograms written as
//! the Go client writes them (buckets in rising `le` order ending at `+Inf`, then `_sum`, then
//! `_count`, one label set at a time).

/// A family as parsed, for tests to look values up in.
#[derive(Debug, Clone)]
pub struct Family {
    pub name: String,
    pub help: String,
    pub kind: String,
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// Validates every line of `text`; returns the families in order, or the first problem with its
/// line number.
pub fn check(text: &str) -> Result<Vec<Family>, String> {
    let body = text
        .strip_suffix('\n')
        .ok_or("the exposition must end with a line feed")?;
    let mut families: Vec<Family> = Vec::new();
    let mut series: Vec<String> = Vec::new();
    for (i, line) in body.split('\n').enumerate() {
        let at = |problem: String| format!("line {}: {problem}: {line:?}", i + 1);
        if let Some(rest) = line.strip_prefix("# ") {
            metadata(rest, &mut families).map_err(at)?;
        } else {
            let sample = parse_sample(line).map_err(at)?;
            let family = families
                .last_mut()
                .ok_or_else(|| at("sample before any # TYPE".into()))?;
            admit(family, &sample).map_err(at)?;
            let key = series_key(&sample);
            if series.contains(&key) {
                return Err(at("duplicate series".into()));
            }
            series.push(key);
            family.samples.push(sample);
        }
    }
    for family in &families {
        if family.samples.is_empty() {
            return Err(format!("family {} has no samples", family.name));
        }
        if family.kind == "histogram" {
            check_histogram(family)?;
        }
    }
    Ok(families)
}

fn metadata(rest: &str, families: &mut Vec<Family>) -> Result<(), String> {
    let (keyword, rest) = rest
        .split_once(' ')
        .ok_or("a comment that is neither HELP nor TYPE")?;
    let (name, value) = rest.split_once(' ').ok_or("metadata without a value")?;
    check_metric_name(name)?;
    let position = families.iter().position(|f| f.name == name);
    let family = match position {
        Some(p) if p + 1 != families.len() => {
            return Err(format!("family {name} resumed after another"))
        }
        Some(p) => &mut families[p],
        None => {
            families.push(Family {
                name: name.into(),
                help: String::new(),
                kind: String::new(),
                samples: Vec::new(),
            });
            families.last_mut().ok_or("unreachable")?
        }
    };
    if !family.samples.is_empty() {
        return Err("metadata after the family's samples".into());
    }
    match keyword {
        "HELP" if family.help.is_empty() => family.help = unescape(value, false)?,
        "TYPE" if family.kind.is_empty() => {
            if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&value) {
                return Err(format!("unknown type {value}"));
            }
            if family.help.is_empty() {
                return Err("TYPE before HELP".into());
            }
            family.kind = value.into();
        }
        "HELP" | "TYPE" => return Err(format!("second {keyword} for {name}")),
        _ => return Err(format!("unknown comment {keyword}")),
    }
    Ok(())
}

/// Checks that a sample belongs to the family being written and carries the right labels.
fn admit(family: &Family, sample: &Sample) -> Result<(), String> {
    if family.kind.is_empty() {
        return Err(format!("sample of {} before its TYPE", family.name));
    }
    let suffix = sample
        .name
        .strip_prefix(family.name.as_str())
        .ok_or("sample outside the current family")?;
    let has_le = sample.labels.iter().any(|(name, _)| name == "le");
    match (family.kind.as_str(), suffix) {
        ("histogram", "_bucket") if has_le => {}
        ("histogram", "_bucket") => return Err("bucket without le".into()),
        ("histogram", "_sum" | "_count") if !has_le => {}
        (_, "") if !has_le && family.kind != "histogram" => {}
        _ => return Err("sample name or labels do not fit the family".into()),
    }
    let integral = family.kind == "counter" || suffix == "_bucket" || suffix == "_count";
    if integral && (sample.value.is_nan() || sample.value < 0.0) {
        return Err("a counter or bucket below zero or NaN".into());
    }
    Ok(())
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    check_metric_name(name)?;
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        rest = parse_labels(after_brace, &mut labels)?;
    }
    let value_text = rest.strip_prefix(' ').ok_or("no space before the value")?;
    Ok(Sample {
        name: name.into(),
        labels,
        value: parse_value(value_text)?,
    })
}

/// Parses `name="value",...}` and returns what follows the closing brace.
fn parse_labels<'a>(
    mut rest: &'a str,
    labels: &mut Vec<(String, String)>,
) -> Result<&'a str, String> {
    loop {
        let (name, after_name) = rest.split_once("=\"").ok_or("label without =\"")?;
        check_label_name(name)?;
        if labels.iter().any(|(seen, _)| seen == name) {
            return Err(format!("label {name} twice"));
        }
        let mut end = None;
        let mut escaped = false;
        for (i, c) in after_name.char_indices() {
            match (escaped, c) {
                (false, '\\') => escaped = true,
                (false, '"') => {
                    end = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let end = end.ok_or("unterminated label value")?;
        labels.push((name.into(), unescape(&after_name[..end], true)?));
        rest = &after_name[end + 1..];
        if let Some(after) = rest.strip_prefix('}') {
            return Ok(after);
        }
        rest = rest
            .strip_prefix(',')
            .ok_or("labels not separated by a comma")?;
        if rest.starts_with('}') {
            return Err("trailing comma in labels".into());
        }
    }
}

/// Label values may escape `\`, `"` and line feed; help texts only `\` and line feed.
fn unescape(text: &str, quotes: bool) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('\\') => out.push('\\'),
                Some('n') => out.push('\n'),
                Some('"') if quotes => out.push('"'),
                other => return Err(format!("bad escape \\{other:?}")),
            },
            '\n' => return Err("raw line feed".into()),
            '"' if quotes => return Err("unescaped quote".into()),
            _ => out.push(c),
        }
    }
    Ok(out)
}

fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" => return Ok(f64::INFINITY),
        "-Inf" => return Ok(f64::NEG_INFINITY),
        "NaN" => return Ok(f64::NAN),
        _ => {}
    }
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || b".eE+-".contains(&b));
    if !plain {
        return Err(format!(
            "value {text:?} is not a plain number (timestamps are not expected)"
        ));
    }
    text.parse()
        .map_err(|_| format!("value {text:?} does not parse"))
}

fn check_metric_name(name: &str) -> Result<(), String> {
    check_name(name, true).map_err(|()| format!("bad metric name {name:?}"))
}

fn check_label_name(name: &str) -> Result<(), String> {
    check_name(name, false).map_err(|()| format!("bad label name {name:?}"))?;
    if name.starts_with("__") {
        return Err(format!("label {name} is reserved"));
    }
    Ok(())
}

fn check_name(name: &str, colons: bool) -> Result<(), ()> {
    let allowed = |b: u8, first: bool| {
        b.is_ascii_alphabetic()
            || b == b'_'
            || (colons && b == b':')
            || (!first && b.is_ascii_digit())
    };
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(first) if allowed(first, true) && bytes.all(|b| allowed(b, false)) => Ok(()),
        _ => Err(()),
    }
}

fn series_key(sample: &Sample) -> String {
    let mut labels = sample.labels.clone();
    labels.sort();
    format!("{}{labels:?}", sample.name)
}

/// Per label set (without `le`): buckets with rising bounds and non-decreasing counts ending at
/// `+Inf`, then `_sum`, then `_count` equal to the `+Inf` bucket; label sets not interleaved.
fn check_histogram(family: &Family) -> Result<(), String> {
    let mut done: Vec<Vec<(String, String)>> = Vec::new();
    let mut samples = family.samples.iter().peekable();
    while let Some(first) = samples.peek() {
        let key = without_le(first);
        if done.contains(&key) {
            return Err(format!("{}: label set {key:?} interleaved", family.name));
        }
        let problem = |what: &str| format!("{} {key:?}: {what}", family.name);
        let mut bound = f64::NEG_INFINITY;
        let mut count = 0.0;
        while let Some(bucket) =
            samples.next_if(|s| s.name.ends_with("_bucket") && without_le(s) == key)
        {
            let le = bucket
                .labels
                .iter()
                .find(|(n, _)| n == "le")
                .map(|(_, v)| v.as_str())
                .unwrap_or("");
            let le = parse_value(le).map_err(|e| problem(&e))?;
            if le.is_nan() || le <= bound || bucket.value < count || bucket.value.fract() != 0.0 {
                return Err(problem("buckets not rising in le or not cumulative"));
            }
            bound = le;
            count = bucket.value;
        }
        if bound != f64::INFINITY {
            return Err(problem("no +Inf bucket"));
        }
        samples
            .next_if(|s| s.name.ends_with("_sum") && s.labels == key)
            .ok_or_else(|| problem("_sum missing"))?;
        let total = samples
            .next_if(|s| s.name.ends_with("_count") && s.labels == key)
            .ok_or_else(|| problem("_count missing"))?;
        if total.value != count {
            return Err(problem("_count differs from the +Inf bucket"));
        }
        done.push(key);
    }
    Ok(())
}

fn without_le(sample: &Sample) -> Vec<(String, String)> {
    sample
        .labels
        .iter()
        .filter(|(name, _)| name != "le")
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::check;

    const GOOD: &str = "# HELP a_total Things.\n# TYPE a_total counter\na_total{k=\"x\\\"y\\\\z\\n\"} 3\n\
        # HELP h Times.\n# TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 5.5\nh_count 2\n";

    #[test]
    fn accepts_a_well_formed_exposition() {
        let families = check(GOOD).unwrap();
        assert_eq!(families.len(), 2);
        assert_eq!(families[0].samples[0].labels[0].1, "x\"y\\z\n");
    }

    #[test]
    fn rejects_what_prometheus_or_our_contract_would_not_take() {
        let label = "a_total{k=\"x\\\"y\\\\z\\n\"} 3\n";
        let inf = "h_bucket{le=\"+Inf\"} 2\n";
        let cases = [
            (GOOD.replace("a_total{", "a-total{"), "bad metric name"),
            (GOOD.replace("\\\"y", "\"y"), "unescaped quote"),
            (GOOD.replace("\\\\z", "\\z"), "bad escape"),
            (GOOD.replace("} 3\n", "} three\n"), "value not a number"),
            (GOOD.replace("} 3\n", "} 3 1700000000\n"), "timestamp"),
            (
                GOOD.replace(inf, "h_bucket{le=\"+Inf\"} 0\n"),
                "not cumulative",
            ),
            (
                GOOD.replace("h_count 2", "h_count 3"),
                "+Inf differs from count",
            ),
            (GOOD.replace(inf, ""), "no +Inf"),
            (GOOD.replace("# HELP h Times.\n", ""), "TYPE without HELP"),
            (
                GOOD.replace("# HELP h Times.\n", "# HELP h Times.\n# HELP h Again.\n"),
                "HELP twice",
            ),
            (
                format!("{GOOD}a_total{{k=\"other\"}} 1\n"),
                "family interleaved",
            ),
            (format!("{GOOD}# HELP a_total Things.\n"), "family resumed"),
            (
                GOOD.replace(label, "a_total 3\na_total 4\n"),
                "duplicate series",
            ),
            (
                GOOD.replace("a_total{k=", "a_total{k=\"1\",k="),
                "label twice",
            ),
            (GOOD.replace("} 3\n", ",} 3\n"), "trailing comma"),
            (GOOD.replace("} 3\n", "} -1\n"), "negative counter"),
            (GOOD.replace("counter\n", "counter\n\n"), "blank line"),
            (GOOD.trim_end().to_string(), "no final line feed"),
        ];
        for (bad, because) in cases {
            assert_ne!(bad, GOOD, "the case {because} changed nothing");
            assert!(check(&bad).is_err(), "accepted: {because}");
        }
    }
}
