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
"""

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
