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
pub(crate) fn apply(spec: &FieldSpec, alphabet: &Alphabet, value: &str, view: View) -> String {
    match view {
        View::Plaintext => value.to_owned(),
        View::Redacted => REDACTED.to_owned(),
        View::Masked => {
            let total = value
                .chars()
                .filter(|&c| alphabet.numeral(c).is_some() || c.is_alphanumeric())
                .count();
            let mut seen = 0;
            value
                .chars()
                .map(|c| {
                    if alphabet.numeral(c).is_some() || c.is_alphanumeric() {
                        seen += 1;
                        let keep = (spec.mask_keep_first > 0 && seen <= spec.mask_keep_first)
                            || (spec.mask_keep_last > 0
                                && seen > total.saturating_sub(spec.mask_keep_last));
                        if keep { c } else { '*' }
                    } else {
                        c
                    }
                })
                .collect()
        }
    }
}
