//! Views of a detokenized value: plaintext, masked (`***-**-6789`) or redacted.

use super::alphabet::Alphabet;
use super::spec::FieldSpec;

/// What a caller may see of a value.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum View {
    /// The value itself.
    #[default]
    Plaintext,
    /// Alphabet characters replaced by `*`, except those the field's mask keeps.
    Masked,
    /// `[REDACTED]`.
    Redacted,
}

impl View {
    /// Parses `plaintext`, `masked` or `redacted`.
    pub fn parse(s: &str) -> Option<View> {
        match s {
            "plaintext" | "plain" => Some(View::Plaintext),
            "masked" => Some(View::Masked),
            "redacted" => Some(View::Redacted),
            _ => None,
        }
    }
}

/// The text shown for a redacted value.
pub const REDACTED: &str = "[REDACTED]";

/// Applies `view` to `value` according to the field's mask.
///
/// The masked view never shows more than half of a value's maskable characters (letters,
/// digits and the field's alphabet), whatever the field's `mask_keep_first`/`mask_keep_last`
/// say: a value of 7 digits with `mask_keep_last = 8` shows its last 3. A value of one
/// character shows none. Separators (`-`, `@`, `.`) stay, as the format is not the secret.
pub(crate) fn apply(spec: &FieldSpec, alphabet: &Alphabet, value: &str, view: View) -> String {
    match view {
        View::Plaintext => value.to_owned(),
        View::Redacted => REDACTED.to_owned(),
        View::Masked => {
            let total = value
                .chars()
                .filter(|&c| alphabet.numeral(c).is_some() || c.is_alphanumeric())
                .count();
            let (keep_first, keep_last) = shown(spec, total);
            let mut seen = 0;
            value
                .chars()
                .map(|c| {
                    if alphabet.numeral(c).is_some() || c.is_alphanumeric() {
                        seen += 1;
                        let keep = (keep_first > 0 && seen <= keep_first)
                            || (keep_last > 0 && seen > total.saturating_sub(keep_last));
                        if keep { c } else { '*' }
                    } else {
                        c
                    }
                })
                .collect()
        }
    }
}

/// How many leading and trailing maskable characters a masked value of `total` such
/// characters shows: what the field asks for, capped so that at least half stay hidden.
pub(crate) fn shown(spec: &FieldSpec, total: usize) -> (usize, usize) {
    let cap = total / 2;
    let first = spec.mask_keep_first.min(cap);
    let last = spec.mask_keep_last.min(cap - first);
    (first, last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::spec::{FieldSpec, TokenKind};

    #[test]
    fn never_more_than_half_is_shown_whatever_the_field_asks() {
        for total in 0..40 {
            for first in 0..40 {
                for last in 0..40 {
                    let mut spec = FieldSpec::new("f", TokenKind::Vaulted);
                    spec.mask_keep_first = first;
                    spec.mask_keep_last = last;
                    let (f, l) = shown(&spec, total);
                    assert!(2 * (f + l) <= total, "{total} {first} {last}: {f} {l}");
                    assert!(f <= first && l <= last);
                }
            }
        }
    }
}
