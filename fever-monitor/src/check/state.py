"""Module state a re-invoked call depends on, for `fever check` to explain a difference.

A recorded call ran in the module state of its moment in the recording: a test may have added
to a module's table before making the call, or earlier calls may have filled a cache on a
module-level object. `fever check` runs the call in a freshly imported module, so such a call
can differ with nothing changed in the code. For a call that differs, these functions name the
cause, so that it is skipped with a reason instead of failing:

- `module_object(value)`: the call returned an object a module holds, directly or as an
  attribute of one of its classes (it did not make it), so the comparison is of that object's
  state, not of what the call did.
- `changed_by_callers(function, callers)`: the function reads a module-level mutable object (a
  table, a registry) that the code that made the call changes (a mutating method or
  `setattr`/`setitem` next to the name).
- `made_at_import(function, made)`: the values the function reads that a statement of their
  module's body bound while it reached random, the clock or another source of nondeterminism
  (`made`: what `sources.py` noted): each import makes others, and fever-core tells whether the
  call's result differs only in them.
"""

import ast
import dis
import sys
import types

_MUTATORS = frozenset((
    "add", "append", "clear", "difference_update", "discard", "extend", "insert",
    "intersection_update", "pop", "popitem", "remove", "reverse", "setdefault", "sort",
    "symmetric_difference_update", "update", "setattr", "setitem", "delattr", "delitem",
    "__setitem__", "__delitem__",
))
_NOT_STATE = (
    type(None), bool, int, float, complex, str, bytes, tuple, frozenset, range, type,
    types.FunctionType, types.BuiltinFunctionType, types.MethodType, types.ModuleType,
)
# id(value) -> (module name, global name, class attribute name or None), built on first use
# and checked on every use.
_held = None


def _index():
    global _held
    if _held is None:
        _held = {}
        for modname, module in list(sys.modules.items()):
            namespace = getattr(module, "__dict__", None)
            if not isinstance(namespace, dict):
                continue
            for key, value in list(namespace.items()):
                if key.startswith("__"):
                    continue
                if isinstance(value, type) and getattr(value, "__module__", None) == modname:
                    for attr, held in list(vars(value).items()):
                        if not isinstance(held, _NOT_STATE) and not attr.startswith("__"):
                            _held.setdefault(id(held), (modname, key, attr))
                elif not isinstance(value, _NOT_STATE):
                    _held.setdefault(id(value), (modname, key, None))
    return _held


def module_object(value):
    """`module.name` (or `module.Class.name`) when `value` is an object a module holds, or one
    of its classes, else None."""
    if isinstance(value, _NOT_STATE):
        return None
    found = _index().get(id(value))
    if found is None:
        return None
    modname, key, attr = found
    holder = getattr(sys.modules.get(modname), key, None)
    if attr is not None:
        # Read from the class's own namespace: getattr would run a descriptor's __get__.
        namespace = getattr(holder, "__dict__", None)
        if not isinstance(holder, type) or namespace.get(attr) is not value:
            return None
        return f"{modname}.{key}.{attr}"
    if holder is not value:
        return None
    return f"{modname}.{key}"


def _names(code, strings):
    """The names a code object (and the code nested in it) uses; `strings` gets its string
    constants (`monkeypatch.setattr(module, "NAME", ...)`)."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const, strings)
        elif isinstance(const, str):
            strings.add(const)
    return names


def changed_by_callers(function, callers):
    """`(module.NAME, caller)` when `function` reads a module-level mutable object NAME that
    one of `callers` (functions, innermost first) changes; else None."""
    code = getattr(function, "__code__", None)
    namespace = getattr(function, "__globals__", None)
    if code is None or namespace is None:
        return None
    read = [
        name for name in sorted(_names(code, set()))
        if name in namespace and not isinstance(namespace[name], _NOT_STATE)
    ]
    if not read:
        return None
    for caller in callers:
        caller_code = getattr(caller, "__code__", None)
        if caller_code is None:
            continue
        strings = set()
        names = _names(caller_code, strings)
        if not names & _MUTATORS:
            continue
        for name in read:
            if name in names or name in strings:
                module = namespace.get("__name__", "?")
                return f"{module}.{name}", f"{caller.__module__}.{caller.__qualname__}"
    return None


# file -> its top-level statements (empty if it cannot be read or parsed), parsed on first use.
_bodies = {}


def _body(file):
    if file not in _bodies:
        try:
            with open(file, "rb") as f:
                _bodies[file] = ast.parse(f.read(), file).body
        except (OSError, SyntaxError, ValueError):
            _bodies[file] = []
    return _bodies[file]


def _holding(statements, line):
    """The innermost statement of `statements` (and of the blocks of a compound one, not the
    bodies of functions and classes, which do not run there) whose lines hold `line`."""
    for statement in statements:
        if isinstance(statement, ast.match_case):
            # A case has no lines of its own: its body's.
            inner = _holding(statement.body, line)
            if inner is not None:
                return inner
            continue
        first = min([d.lineno for d in getattr(statement, "decorator_list", ())]
                    + [statement.lineno])
        if first <= line <= (statement.end_lineno or statement.lineno):
            if not isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                for block in ("body", "orelse", "finalbody", "handlers", "cases"):
                    inner = _holding(getattr(statement, block, None) or [], line)
                    if inner is not None:
                        return inner
            return statement
    return None


def _bound(node, names):
    """Adds to `names` the names `node` binds in its scope (not in nested functions, classes,
    lambdas or comprehensions, whose names are their own, but a class's or function's name)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        names.add(node.name)
        return
    if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        return
    if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
        names.add(node.id)
    elif isinstance(node, (ast.Subscript, ast.Attribute)) and isinstance(node.ctx, ast.Store):
        # `TABLE[key] = ...`, `CONFIG.seed = ...`: the object the name holds is changed.
        root = node.value
        while isinstance(root, (ast.Subscript, ast.Attribute)):
            root = root.value
        if isinstance(root, ast.Name):
            names.add(root.id)
    elif isinstance(node, ast.alias):
        names.add((node.asname or node.name).split(".")[0])
    elif isinstance(node, ast.ExceptHandler) and node.name:
        names.add(node.name)
    elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
        names.add(node.name)
    for child in ast.iter_child_nodes(node):
        _bound(child, names)


def _bound_at(file, line):
    """The names bound by the statement of `file`'s body holding `line`."""
    statement = _holding(_body(file), line)
    names = set()
    if statement is not None:
        _bound(statement, names)
    return names


def _globals_read(code, module_names, found):
    """Adds to `found` the global names `code` (and the code nested in it) loads, and the
    `(M, NAME)` pairs of `M.NAME` where M is one of `module_names` it loads as a global."""
    previous = None
    for instruction in dis.get_instructions(code):
        name = instruction.argval
        if instruction.opname in ("LOAD_GLOBAL", "LOAD_NAME") and isinstance(name, str):
            found.add(name)
        elif (instruction.opname == "LOAD_ATTR" and previous is not None
              and previous.opname == "LOAD_GLOBAL" and previous.argval in module_names):
            found.add((previous.argval, name))
        previous = instruction
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _globals_read(const, module_names, found)


def _shared(value):
    """Whether holding `value` under a name tells that the name was imported from where it was
    made: not a singleton, a small int or a short string, which anything may hold."""
    if value is None or isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) >= 1 << 32
    if isinstance(value, str):
        return len(value) >= 8
    return True


def made_at_import(function, made):
    """`(module.NAME, source, value)` for each NAME `function` loads (as its own global, as
    `module.NAME`, or as a global of its holding the very value, `from module import NAME`) that
    a statement of its module's body bound while it reached `source` (`made`: `(module name,
    file, line, source)`)."""
    code = getattr(function, "__code__", None)
    namespace = getattr(function, "__globals__", None)
    if code is None or namespace is None or not made:
        return []
    own = namespace.get("__name__")
    modules = {m: sys.modules.get(m) for m, _, _, _ in made}
    module_names = {n for n, v in namespace.items() if any(v is m for m in modules.values() if m)}
    read = set()
    _globals_read(code, module_names, read)
    out = []
    seen = set()
    for modname, file, line, source in made:
        module = modules[modname]
        if not isinstance(file, str) or not isinstance(line, int) or module is None:
            continue
        held = getattr(module, "__dict__", {})
        for name in sorted(_bound_at(file, line)):
            if name not in held or (modname, name) in seen:
                continue
            value = held[name]
            direct = name in read and (
                own == modname or (name in namespace and namespace[name] is value and _shared(value)))
            through = any((m, name) in read for m in module_names if namespace.get(m) is module)
            if direct or through:
                seen.add((modname, name))
                shown = modname.replace("__fever_main__", "__main__")
                out.append((f"{shown}.{name}", source, value))
    return out
