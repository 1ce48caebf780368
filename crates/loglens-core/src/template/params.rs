//! Parameter extraction: given a template and a message of that template, the text each `<*>`
//! stands for. The template is compiled once into an anchored regex (literal text escaped,
//! white space matching any run of white space, each `<*>` a lazy group).

use regex::Regex;

use super::mask::WILDCARD;

/// A template compiled for extracting parameters from many messages.
#[derive(Debug, Clone)]
pub struct TemplatePattern {
    /// `None` only if the compiled pattern would exceed the regex size limit.
    regex: Option<Regex>,
}

impl TemplatePattern {
    /// Compiles `template` (text with `<*>` for each variable part).
    pub fn new(template: &str) -> TemplatePattern {
        let mut pattern = String::with_capacity(template.len() * 2 + 8);
        pattern.push_str(r"(?s)^\s*");
        for (i, token) in template.split_whitespace().enumerate() {
            if i > 0 {
                pattern.push_str(r"\s+");
            }
            for (j, literal) in token.split(WILDCARD).enumerate() {
                if j > 0 {
                    pattern.push_str("(.*?)");
                }
                pattern.push_str(&regex::escape(literal));
            }
        }
        pattern.push_str(r"\s*$");
        // Every piece is escaped or fixed syntax, so only the size limit can make this fail.
        TemplatePattern {
            regex: Regex::new(&pattern).ok(),
        }
    }

    /// The parameters of `message` in order, or `None` when the message does not fit the
    /// template. A `<*>` that replaced several words yields them as one parameter.
    pub fn parameters<'m>(&self, message: &'m str) -> Option<Vec<&'m str>> {
        let caps = self.regex.as_ref()?.captures(message)?;
        Some(
            caps.iter()
                .skip(1)
                .map(|m| m.map_or("", |m| m.as_str()))
                .collect(),
        )
    }
}

/// The parameters of `message` under `template` (see [`TemplatePattern::parameters`]); compile
/// a [`TemplatePattern`] instead when extracting from many messages.
pub fn parameters<'m>(template: &str, message: &'m str) -> Option<Vec<&'m str>> {
    TemplatePattern::new(template).parameters(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_each_wildcard_in_order() {
        assert_eq!(
            parameters(
                "Took <*> seconds to build instance <*>",
                "Took 12.5 seconds to build instance a1"
            ),
            Some(vec!["12.5", "a1"])
        );
        assert_eq!(
            parameters("uid=<*> euid=<*>", "uid=0  euid=500"),
            Some(vec!["0", "500"])
        );
        assert_eq!(
            parameters("[instance: <*>] done", "[instance: x-1] done"),
            Some(vec!["x-1"])
        );
    }

    #[test]
    fn a_wildcard_can_span_words_and_be_empty() {
        assert_eq!(
            parameters("<*> close, <*> sent", "h:80 close, 1190 bytes (1.16 KB) sent"),
            Some(vec!["h:80", "1190 bytes (1.16 KB)"])
        );
        assert_eq!(parameters("rhost=<*> user", "rhost= user"), Some(vec![""]));
    }

    #[test]
    fn a_message_of_another_template_gives_none() {
        assert_eq!(parameters("open <*> done", "close x done"), None);
        assert_eq!(parameters("a.b <*>", "aXb 1"), None);
    }
}
