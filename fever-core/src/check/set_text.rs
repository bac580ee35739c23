//! Text that shows a collection of strings, such as an exception message built with
//! `f"invalid {chars}"` from a set: `{'o', 'n', 'p'}`. Iterating a set of strings follows the
//! per-process hash seed, so the same message lists the items in another order in another
//! process. [`same_but_item_order`] tells such texts apart from real differences.

/// `old` and `new` differ, but only in the order of the quoted items of some sets they show
/// (`{'a', 'b'}`, also inside `frozenset(...)`). Lists and tuples (`['a', 'b']`) keep their
/// order: in a text it is usually meant (arguments, a command line).
pub fn same_but_item_order(old: &str, new: &str) -> bool {
    old != new && sorted_items(old) == sorted_items(new)
}

/// `text` with the items of every set of two or more quoted strings sorted.
fn sorted_items(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('{') {
        out.push_str(&rest[..at]);
        let open = &rest[at..];
        if let Some((mut items, len)) = quoted_list(open) {
            items.sort_unstable();
            out.push_str(&open[..1]);
            out.push_str(&items.join(", "));
            out.push_str(&open[len - 1..len]);
            rest = &open[len..];
        } else {
            out.push_str(&open[..1]);
            rest = &open[1..];
        }
    }
    out.push_str(rest);
    out
}

/// The quoted items of the set `text` starts with (at its `{`) and the length of the set up to
/// its `}`; `None` unless it holds two or more quoted strings only.
fn quoted_list(text: &str) -> Option<(Vec<&str>, usize)> {
    let close = b'}';
    let bytes = text.as_bytes();
    let mut at = 1;
    let mut items = Vec::new();
    loop {
        while bytes.get(at) == Some(&b' ') {
            at += 1;
        }
        let len = quoted(&text[at..])?;
        items.push(&text[at..at + len]);
        at += len;
        match bytes.get(at)? {
            b',' => at += 1,
            c if *c == close => break,
            _ => return None,
        }
    }
    (items.len() >= 2).then_some((items, at + 1))
}

/// The length of the Python string repr (`'...'` or `"..."`, backslash escapes) `text` starts
/// with.
fn quoted(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let quote = *bytes.first().filter(|q| matches!(q, b'\'' | b'"'))?;
    let mut at = 1;
    loop {
        match *bytes.get(at)? {
            b'\\' => at += 2,
            c if c == quote => return Some(at + 1),
            _ => at += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_of_strings_shown_in_another_order_is_the_same_text() {
        assert!(same_but_item_order(
            "got invalid chars {'o', 'n', 'p', 'e'} in 'nope'",
            "got invalid chars {'e', 'p', 'n', 'o'} in 'nope'",
        ));
        assert!(same_but_item_order(
            "keys frozenset({'b', \"a'\"})",
            "keys frozenset({\"a'\", 'b'})",
        ));
        // Brackets and commas inside the quoted items are part of them.
        assert!(same_but_item_order("{'a}', 'b, c'}", "{'b, c', 'a}'}"));
    }

    #[test]
    fn other_differences_are_not_an_order() {
        // Equal texts do not differ.
        assert!(!same_but_item_order("{'a', 'b'}", "{'a', 'b'}"));
        // Other items, other text around, unquoted items.
        assert!(!same_but_item_order("{'a', 'b'}", "{'a', 'c'}"));
        assert!(!same_but_item_order("x {'a', 'b'}", "y {'b', 'a'}"));
        assert!(!same_but_item_order("[1, 2]", "[2, 1]"));
        // The order of a list or tuple is meant.
        assert!(!same_but_item_order("['a', 'b']", "['b', 'a']"));
        assert!(!same_but_item_order(
            "connect('host', 'user')",
            "connect('user', 'host')"
        ));
        assert!(!same_but_item_order("abc", "acb"));
        // An unclosed bracket or quote is left as it is.
        assert!(!same_but_item_order("{'a', 'b'", "{'b', 'a'"));
        assert!(!same_but_item_order("['a, 'b']", "['b, 'a']"));
    }
}
