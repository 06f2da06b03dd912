//! An automaton over the term dictionary for `contains`, `starts_with` and `ends_with`.
//!
//! Terms of a JSON field are `path \0 type value`; the automaton first consumes that fixed prefix
//! (so the dictionary walk stays inside one path), then matches the lower-cased value byte by
//! byte: a prefix check, or Knuth-Morris-Pratt for substrings and suffixes. Byte-wise matching of
//! UTF-8 equals character-wise matching. Cost is one pass over the path's distinct values per
//! index segment, with no n-gram postings to store.

use tantivy_fst::Automaton;

/// Which part of the value must equal the needle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextMatch {
    /// Anywhere.
    Contains,
    /// At the start.
    StartsWith,
    /// At the end.
    EndsWith,
}

/// Matches dictionary keys `prefix + value` whose value relates to `needle` as `mode` says.
#[derive(Debug, Clone)]
pub struct TextAutomaton {
    prefix: Vec<u8>,
    needle: Vec<u8>,
    /// KMP failure function: longest proper prefix of `needle[..=i]` that is also its suffix.
    failure: Vec<usize>,
    mode: TextMatch,
}

/// Where the automaton stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Consumed this many bytes of the key prefix.
    Prefix(usize),
    /// In the value, with this many needle bytes matched.
    Value(usize),
    /// The value matches whatever follows.
    Found,
    /// No continuation can match.
    Dead,
}

impl TextAutomaton {
    /// An automaton for values under `prefix` (the JSON path's term bytes) against `needle`.
    pub fn new(prefix: Vec<u8>, needle: &str, mode: TextMatch) -> Self {
        let needle = needle.as_bytes().to_vec();
        let mut failure = vec![0; needle.len()];
        let mut k = 0;
        for i in 1..needle.len() {
            while k > 0 && needle[i] != needle[k] {
                k = failure[k - 1];
            }
            if needle[i] == needle[k] {
                k += 1;
            }
            failure[i] = k;
        }
        Self {
            prefix,
            needle,
            failure,
            mode,
        }
    }

    fn value_start(&self) -> State {
        if self.needle.is_empty() {
            State::Found
        } else {
            State::Value(0)
        }
    }

    fn step_kmp(&self, mut matched: usize, byte: u8) -> usize {
        if matched == self.needle.len() {
            matched = self.failure[matched - 1];
        }
        while matched > 0 && self.needle[matched] != byte {
            matched = self.failure[matched - 1];
        }
        if self.needle[matched] == byte {
            matched + 1
        } else {
            0
        }
    }
}

impl Automaton for TextAutomaton {
    type State = State;

    fn start(&self) -> State {
        if self.prefix.is_empty() {
            self.value_start()
        } else {
            State::Prefix(0)
        }
    }

    fn is_match(&self, state: &State) -> bool {
        match *state {
            State::Found => true,
            State::Value(matched) => {
                self.mode == TextMatch::EndsWith && matched == self.needle.len()
            }
            State::Prefix(_) | State::Dead => false,
        }
    }

    fn can_match(&self, state: &State) -> bool {
        *state != State::Dead
    }

    fn will_always_match(&self, state: &State) -> bool {
        *state == State::Found
    }

    fn accept(&self, state: &State, byte: u8) -> State {
        match *state {
            State::Dead => State::Dead,
            State::Found => State::Found,
            State::Prefix(consumed) => {
                if self.prefix[consumed] != byte {
                    State::Dead
                } else if consumed + 1 == self.prefix.len() {
                    self.value_start()
                } else {
                    State::Prefix(consumed + 1)
                }
            }
            State::Value(matched) => match self.mode {
                TextMatch::StartsWith => {
                    if self.needle[matched] != byte {
                        State::Dead
                    } else if matched + 1 == self.needle.len() {
                        State::Found
                    } else {
                        State::Value(matched + 1)
                    }
                }
                TextMatch::Contains => {
                    let matched = self.step_kmp(matched, byte);
                    if matched == self.needle.len() {
                        State::Found
                    } else {
                        State::Value(matched)
                    }
                }
                TextMatch::EndsWith => State::Value(self.step_kmp(matched, byte)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(automaton: &TextAutomaton, key: &[u8]) -> bool {
        let mut state = automaton.start();
        for &byte in key {
            state = automaton.accept(&state, byte);
        }
        automaton.is_match(&state)
    }

    fn agrees_with_str(value: &str, needle: &str) {
        let key = [b"p\0s".as_slice(), value.as_bytes()].concat();
        for (mode, expected) in [
            (TextMatch::Contains, value.contains(needle)),
            (TextMatch::StartsWith, value.starts_with(needle)),
            (TextMatch::EndsWith, value.ends_with(needle)),
        ] {
            let automaton = TextAutomaton::new(b"p\0s".to_vec(), needle, mode);
            assert_eq!(
                run(&automaton, &key),
                expected,
                "{mode:?} {value:?} {needle:?}"
            );
        }
    }

    #[test]
    fn agrees_with_std_on_tricky_cases() {
        for (value, needle) in [
            ("aaab", "aab"),
            ("abababc", "ababc"),
            ("abcabd", "abd"),
            ("abab", "ab"),
            ("aab", ""),
            ("", ""),
            ("", "a"),
            ("ümlaut", "mla"),
            ("x@example.com", "@example.com"),
            ("aaaa", "aaa"),
        ] {
            agrees_with_str(value, needle);
        }
    }

    #[test]
    fn other_paths_never_match() {
        let automaton = TextAutomaton::new(b"p\0s".to_vec(), "a", TextMatch::Contains);
        assert!(!run(&automaton, b"q\0sa"));
        assert!(!run(&automaton, b"p\0"));
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_std(value in "[ab]{0,8}", needle in "[ab]{0,4}") {
            agrees_with_str(&value, &needle);
        }
    }
}
