//! Strings that came from a file, shown without letting them act on the terminal.

/// `s` with every control character (newlines, tabs, ANSI escape sequences' ESC, …) written as
/// an escape (`\n`, `\u{1b}`), so that a key can neither break an error onto two lines nor
/// clear the screen or forge a table row. Everything else is kept as it is.
///
/// ```
/// assert_eq!(specnorm::text::escaped("fc.weight"), "fc.weight");
/// assert_eq!(specnorm::text::escaped("a\nb\u{1b}[2J"), "a\\nb\\u{1b}[2J");
/// ```
pub fn escaped(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}
