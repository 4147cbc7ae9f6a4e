//! The share URL: view state in the URL fragment, so a link reopens the same
//! view: `#q=<selector>&range=<minutes>m`. Unknown keys are ignored; a bad
//! value falls back to the default instead of breaking the page.
//!
//! It lives here, next to the messages, because it is a contract of the same
//! kind: links written by one build are read by later ones.

/// The state a share URL carries today.
#[derive(Clone, Debug, PartialEq)]
pub struct ViewState {
    /// Series selector.
    pub selector: String,
    /// Range length in minutes.
    pub range_minutes: u32,
}

/// The ranges the picker offers, in minutes.
pub const RANGES_MINUTES: [u32; 5] = [5, 15, 60, 180, 360];

impl Default for ViewState {
    fn default() -> Self {
        ViewState {
            selector: "process_resident_memory_bytes".to_string(),
            range_minutes: 15,
        }
    }
}

impl ViewState {
    /// Reads a fragment (with or without the leading `#`).
    pub fn from_fragment(fragment: &str) -> Self {
        let mut state = ViewState::default();
        let fragment = fragment.strip_prefix('#').unwrap_or(fragment);
        for (k, v) in form_pairs(fragment) {
            match k.as_str() {
                "q" if !v.trim().is_empty() => state.selector = v,
                "range" => {
                    if let Some(m) = v.strip_suffix('m').and_then(|m| m.parse().ok())
                        && RANGES_MINUTES.contains(&m)
                    {
                        state.range_minutes = m;
                    }
                }
                _ => {}
            }
        }
        state
    }

    /// The fragment for this state, starting with `#`.
    pub fn to_fragment(&self) -> String {
        format!(
            "#q={}&range={}m",
            encode(&self.selector),
            self.range_minutes
        )
    }
}

fn form_pairs(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Percent-encodes everything but unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-decodes; malformed escapes are kept as written, invalid UTF-8 is replaced.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_tolerates_garbage() {
        let s = ViewState {
            selector: r#"up{job="a b",x=~".+"}"#.into(),
            range_minutes: 60,
        };
        assert_eq!(ViewState::from_fragment(&s.to_fragment()), s);
        assert_eq!(
            ViewState::from_fragment("#range=7m&q=&%zz"),
            ViewState::default()
        );
        assert_eq!(
            ViewState::from_fragment("q=%"),
            ViewState {
                selector: "%".into(),
                ..ViewState::default()
            }
        );
    }
}
