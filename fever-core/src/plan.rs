//! The difference between the index of the running text and the index of the saved text, as the
//! list of changes the reload engine applies.
//!
//! Definitions are matched by qualified name (and occurrence, for names defined twice such as a
//! property's getter and setter), statements by content hash, all through hash maps: the plan is
//! O(items) and never compares every item with every other.

use std::collections::HashMap;

use crate::source::{Definition, Index, Kind};

/// One thing to do to bring the running module in line with the saved file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A function's code changed: compile the new definition and assign its code to every function
    /// running the old one. `signature_changed` means defaults may differ too.
    Code {
        old: Definition,
        new: Definition,
        signature_changed: bool,
    },
    /// The same text at another line: shift the running code's line numbers.
    Moved { old: Definition, new: Definition },
    /// A function's decorators, a class's header or a class's shape changed: execute the
    /// definition again in its namespace (the name is rebound to the new object).
    Redefine {
        old: Definition,
        new: Definition,
        why: Redefinition,
    },
    /// A new function or class: execute it in its namespace.
    Added { new: Definition },
    /// A definition that is gone from the file: remove the name from its namespace.
    Deleted { old: Definition },
    /// A new or changed statement (module level or class body): execute it in its namespace.
    Statement { new: Definition },
}

/// Why a definition is executed again rather than patched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redefinition {
    /// A function's decorator list changed.
    Decorators,
    /// A class's decorators or bases changed.
    ClassHeader,
    /// The fields of a decorated class (`name: T` lines, which `@dataclass` and the like turn
    /// into `__init__`, `__repr__`, `__eq__`) or its `__slots__` changed: only a new class
    /// object has them.
    ClassShape,
}

/// The ordered changes for one file: additions, changes and statements in the order of the new
/// file (so a new helper exists before a statement that uses it runs), deletions last.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub changes: Vec<Change>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// Plans the changes that turn the code indexed by `old` into the code indexed by `new`.
pub fn plan_reload(old: &Index, new: &Index) -> Plan {
    plan_items(&old.items, &new.items)
}

/// [`plan_reload`] for module-level items.
pub(crate) fn plan_items(old: &[Definition], new: &[Definition]) -> Plan {
    let mut changes = Vec::new();
    let mut deleted = Vec::new();
    diff_block(old, new, &mut changes, &mut deleted);
    changes.extend(deleted.into_iter().map(|old| Change::Deleted { old }));
    Plan { changes }
}

fn diff_block(
    old: &[Definition],
    new: &[Definition],
    changes: &mut Vec<Change>,
    deleted: &mut Vec<Definition>,
) {
    // Named definitions by (qualname, occurrence), statements by hash (a multiset).
    let mut old_named: HashMap<(&str, usize), &Definition> = HashMap::new();
    let mut occurrences: HashMap<&str, usize> = HashMap::new();
    let mut old_statements: HashMap<u64, usize> = HashMap::new();
    for item in old {
        if item.kind == Kind::Statement {
            *old_statements.entry(item.hash).or_default() += 1;
        } else {
            let n = occurrences.entry(&item.qualname).or_default();
            old_named.insert((&item.qualname, *n), item);
            *n += 1;
        }
    }
    occurrences.clear();
    for item in new {
        if item.kind == Kind::Statement {
            match old_statements.get_mut(&item.hash) {
                Some(count) if *count > 0 => *count -= 1,
                _ => changes.push(Change::Statement { new: item.clone() }),
            }
            continue;
        }
        let n = occurrences.entry(&item.qualname).or_default();
        let key = (item.qualname.as_str(), *n);
        *n += 1;
        match old_named.remove(&key) {
            Some(before) if before.kind == item.kind => diff_pair(before, item, changes, deleted),
            Some(before) => {
                deleted.push(before.clone());
                changes.push(Change::Added { new: item.clone() });
            }
            None => changes.push(Change::Added { new: item.clone() }),
        }
    }
    let mut gone: Vec<&Definition> = old_named.into_values().collect();
    gone.sort_by_key(|d| d.start_line);
    deleted.extend(gone.into_iter().cloned());
}

fn diff_pair(
    old: &Definition,
    new: &Definition,
    changes: &mut Vec<Change>,
    deleted: &mut Vec<Definition>,
) {
    if old.hash == new.hash && old.start_line == new.start_line {
        return;
    }
    match new.kind {
        Kind::Function => {
            if old.hash == new.hash {
                changes.push(Change::Moved {
                    old: old.clone(),
                    new: new.clone(),
                });
            } else if old.decorators_hash != new.decorators_hash {
                changes.push(Change::Redefine {
                    old: old.clone(),
                    new: new.clone(),
                    why: Redefinition::Decorators,
                });
            } else {
                changes.push(Change::Code {
                    old: old.clone(),
                    new: new.clone(),
                    signature_changed: old.header_hash != new.header_hash,
                });
            }
        }
        Kind::Class => {
            if old.decorators_hash != new.decorators_hash || old.header_hash != new.header_hash {
                changes.push(Change::Redefine {
                    old: old.clone(),
                    new: new.clone(),
                    why: Redefinition::ClassHeader,
                });
            } else if shape(old) != shape(new) {
                changes.push(Change::Redefine {
                    old: old.clone(),
                    new: new.clone(),
                    why: Redefinition::ClassShape,
                });
            } else {
                diff_block(&old.children, &new.children, changes, deleted);
            }
        }
        Kind::Statement => unreachable!("statements are matched by hash"),
    }
}

/// What fixes a class object's layout at creation: its `__slots__` statement and, for a
/// decorated class, its annotated fields (hashes, in order).
fn shape(class: &Definition) -> Vec<u64> {
    let decorated = !class.decorators.is_empty();
    class
        .children
        .iter()
        .filter(|item| {
            item.kind == Kind::Statement
                && ((decorated && item.annotated) || item.keyword == "__slots__")
        })
        .map(|item| item.hash)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(old: &str, new: &str) -> Vec<String> {
        plan_reload(&Index::build(old), &Index::build(new))
            .changes
            .iter()
            .map(|change| match change {
                Change::Code {
                    new,
                    signature_changed,
                    ..
                } => format!("code {} sig={signature_changed}", new.qualname),
                Change::Moved { old, new } => format!(
                    "moved {} {}->{}",
                    new.qualname, old.start_line, new.start_line
                ),
                Change::Redefine { new, why, .. } => format!("redefine {} {why:?}", new.qualname),
                Change::Added { new } => format!("added {}", new.qualname),
                Change::Deleted { old } => format!("deleted {}", old.qualname),
                Change::Statement { new } => format!("statement line {}", new.start_line),
            })
            .collect()
    }

    const BASE: &str = "X = 1\n\ndef f():\n    return 1\n\nclass C:\n    a = 1\n    def m(self):\n        return 2\n\ndef g():\n    return 3\n";

    #[test]
    fn fields_of_a_decorated_class_and_slots_reshape_it() {
        let data = "@dataclass\nclass Item:\n    name: str\n    qty: int = 1\n    note = 'x'\n    def total(self):\n        return self.qty\n";
        for new in [
            data.replace("qty: int = 1", "qty: int = 2"),
            data.replace("qty: int = 1", "qty: int = 1\n    tags: list = None"),
            data.replace("    name: str\n", ""),
        ] {
            assert_eq!(plan(data, &new), ["redefine Item ClassShape"], "{new}");
        }
        // Other class-body statements and methods stay patches.
        assert_eq!(
            plan(data, &data.replace("note = 'x'", "note = 'y'")),
            ["statement line 5"]
        );
        assert_eq!(
            plan(
                data,
                &data.replace("return self.qty", "return 2 * self.qty")
            ),
            ["code Item.total sig=false"]
        );
        // An undecorated class's annotated attribute is a plain statement...
        let plain = data.replace("@dataclass\n", "");
        assert_eq!(
            plan(&plain, &plain.replace("qty: int = 1", "qty: int = 2")),
            ["statement line 3"]
        );
        // ...but `__slots__` fixes any class's layout.
        let slotted = "class P:\n    __slots__ = ('x',)\n";
        assert_eq!(
            plan(slotted, &slotted.replace("('x',)", "('x', 'y')")),
            ["redefine P ClassShape"]
        );
        // A lambda or a dict is not an annotation.
        let lambda = "@d\nclass L:\n    f = lambda x: x\n";
        assert_eq!(
            plan(lambda, &lambda.replace("x: x", "x: 2 * x")),
            ["statement line 3"]
        );
    }

    #[test]
    fn nothing_changed() {
        assert!(plan(BASE, BASE).is_empty());
        assert!(plan(BASE, &BASE.replace("\n\nclass", "\n# a comment\nclass")).is_empty());
    }

    #[test]
    fn changed_function_body() {
        assert_eq!(
            plan(BASE, &BASE.replace("return 1", "return 10")),
            ["code f sig=false"]
        );
        assert_eq!(
            plan(BASE, &BASE.replace("def f():", "def f(k=2):")),
            ["code f sig=true"]
        );
    }

    #[test]
    fn changed_method_and_class_attribute() {
        assert_eq!(
            plan(BASE, &BASE.replace("return 2", "return 20")),
            ["code C.m sig=false"]
        );
        assert_eq!(
            plan(BASE, &BASE.replace("a = 1", "a = 5")),
            ["statement line 7"]
        );
    }

    #[test]
    fn inserted_lines_move_what_follows() {
        let new = BASE.replace("X = 1\n", "X = 1\nY = 2\n");
        assert_eq!(
            plan(BASE, &new),
            [
                "statement line 2",
                "moved f 3->4",
                "moved C.m 8->9",
                "moved g 11->12"
            ]
        );
    }

    #[test]
    fn added_deleted_and_decorated() {
        let new = BASE.replace("def g():\n    return 3\n", "def h():\n    return 4\n");
        assert_eq!(plan(BASE, &new), ["added h", "deleted g"]);
        let new = BASE.replace("def f():", "@cache\ndef f():");
        assert_eq!(plan(BASE, &new)[0], "redefine f Decorators");
        let new = BASE.replace("class C:", "class C(Base):");
        assert_eq!(plan(BASE, &new)[0], "redefine C ClassHeader");
        let new = BASE.replace(
            "        return 2\n",
            "        return 2\n    def n(self):\n        return 5\n",
        );
        assert_eq!(plan(BASE, &new), ["added C.n", "moved g 11->13"]);
    }

    #[test]
    fn property_getter_and_setter_match_by_occurrence() {
        let old = "class C:\n    @property\n    def p(self):\n        return 1\n    @p.setter\n    def p(self, v):\n        pass\n";
        let new = old.replace("pass", "self.v = v");
        assert_eq!(plan(old, &new), ["code C.p sig=false"]);
    }

    #[test]
    fn function_turned_into_class() {
        assert_eq!(
            plan("def f():\n    pass\n", "class f:\n    pass\n"),
            ["added f", "deleted f"]
        );
    }
}
