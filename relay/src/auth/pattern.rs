//! Channel patterns of a token's `channels` and `publish` claims: an exact channel name, or a
//! prefix ending in `*` (`resources/*` allows `resources/posts`; `*` alone allows every channel).

use serde::Deserialize;

/// A list of channel patterns; an empty list allows nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Patterns(Vec<String>);

impl Patterns {
    pub fn new<S: Into<String>>(patterns: impl IntoIterator<Item = S>) -> Self {
        Patterns(patterns.into_iter().map(Into::into).collect())
    }

    /// Whether one of the patterns allows `channel`.
    pub fn allows(&self, channel: &str) -> bool {
        self.0
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => channel.starts_with(prefix),
                None => pattern == channel,
            })
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_names_and_prefixes() {
        let p = Patterns::new(["resources/*", "chat"]);
        assert!(p.allows("resources/posts"));
        assert!(p.allows("resources/"));
        assert!(!p.allows("resources"), "the prefix includes the slash");
        assert!(p.allows("chat"));
        assert!(!p.allows("chat/2"), "an exact name is not a prefix");
        assert!(!p.allows("secret"));
        assert!(Patterns::new(["*"]).allows("$revalidate"));
        assert!(!Patterns::default().allows("anything"));
    }
}
