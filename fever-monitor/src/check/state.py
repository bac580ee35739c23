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
- `patched_by_callers(function, callers)`: the function, or a function its code names, reads an
  attribute that the code that made the call patches by a dotted target (`mock.patch("pkg.mod.
  helper")`, `monkeypatch.setattr("pkg.mod.NAME", ...)`, a `@mock.patch` decorator), the target
  resolved as `mock` does: the longest module prefix, then attributes (through a chain of
  modules and classes: "pkg.main.cli.run" is the `run` of the module `pkg.main` imports as `cli`).
"""

import functools
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


# Names in a caller's code that say a dotted string in it is a target it patches.
_PATCHERS = frozenset(("patch", "setattr", "delattr"))
# How many functions `_reached` follows from the re-invoked one.
_REACH = 200


def _targets(caller):
    """The targets `caller` patches: `(dotted target as written, holder object, attribute)`."""
    found = []
    for patching in _patchings(caller):
        getter, attribute = getattr(patching, "getter", None), getattr(patching, "attribute", None)
        if not isinstance(attribute, str):
            continue
        if isinstance(getter, functools.partial):
            # mock.patch("pkg.mod.name"): the getter imports "pkg.mod"; resolve it without.
            if getter.args and isinstance(getter.args[0], str):
                holder = _resolve(getter.args[0])
                if holder is not None:
                    found.append((f"{getter.args[0]}.{attribute}", holder, attribute))
        elif isinstance(getter, types.FunctionType) and not getter.__code__.co_argcount:
            # mock.patch.object(holder, "name"): the getter returns the holder it was given.
            holder = getter()
            name = getattr(holder, "__name__", type(holder).__name__)
            found.append((f"{name}.{attribute}", holder, attribute))
    code = getattr(caller, "__code__", None)
    if code is None or not _names(code, set()) & _PATCHERS:
        return found
    for target in _strings(code):
        parts = target.split(".")
        if len(parts) < 2 or not all(part.isidentifier() for part in parts):
            continue
        holder = _resolve(".".join(parts[:-1]))
        if holder is not None:
            found.append((target, holder, parts[-1]))
    return found


def _patchings(caller):
    """The `mock.patch` decorators of `caller`: the `patchings` of the objects its module holds
    under its qualified name that wrap it (`__wrapped__`)."""
    parts = caller.__qualname__.split(".")
    if "<locals>" in parts:
        return []
    held = caller.__globals__.get(parts[0])
    for part in parts[1:]:
        held = getattr(held, "__dict__", {}).get(part)
    found = []
    for _ in range(16):
        if held is None or held is caller:
            break
        # From the namespace: an object's __getattr__ (a Mock's) would make up any attribute.
        namespace = getattr(held, "__dict__", None)
        if not isinstance(namespace, dict):
            break
        patchings = namespace.get("patchings")
        if isinstance(patchings, list):
            found.extend(patchings)
        held = namespace.get("__wrapped__")
    return found


def _strings(code):
    """The string constants of a code object and the code nested in it, in order, once each."""
    found = {}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found.update(dict.fromkeys(_strings(const)))
        elif isinstance(const, str):
            found[const] = None
    return list(found)


def _resolve(dotted):
    """The object `dotted` names as `mock.patch` resolves it (the longest prefix that is a
    module, then attributes), from the modules already imported (nothing is imported); None
    when it names none."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        module = sys.modules.get(".".join(parts[:end]))
        if module is None:
            continue
        found = module
        for part in parts[end:]:
            namespace = getattr(found, "__dict__", None)
            if not isinstance(namespace, (dict, types.MappingProxyType)) or part not in namespace:
                return None
            found = namespace[part]
        return found
    return None


def _function(value):
    """The Python function a module or class attribute `value` runs, if any."""
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    while not isinstance(value, types.FunctionType) and hasattr(value, "__wrapped__"):
        value = value.__wrapped__
    return value if isinstance(value, types.FunctionType) else None


def _owner(function):
    """The class a method `function` is defined in (found by its qualified name), or None."""
    parts = function.__qualname__.split(".")
    if len(parts) < 2 or "<locals>" in parts:
        return None
    owner = function.__globals__.get(parts[0])
    for part in parts[1:-1]:
        owner = getattr(owner, "__dict__", {}).get(part)
    return owner if isinstance(owner, type) else None


def _reached(function):
    """`function` and the Python functions its code names, transitively (at most `_REACH`):
    module globals, attributes of the modules and classes it names, and methods of its own
    class (`self.helper()`); each with the names its code uses and its class."""
    queue = [function]
    seen = {id(function)}
    for current in queue:
        if len(queue) >= _REACH:
            break
        names = _names(current.__code__, set())
        namespace = current.__globals__
        owner = _owner(current)
        values = [namespace[name] for name in names if name in namespace]
        holders = [v for v in values if isinstance(v, (type, types.ModuleType))]
        if owner is not None:
            holders.extend(owner.__mro__)
        for holder in holders:
            held = getattr(holder, "__dict__", {})
            values.extend(held[name] for name in names if name in held)
        for value in values:
            found = _function(value)
            if found is not None and id(found) not in seen:
                seen.add(id(found))
                queue.append(found)
    return queue


def _reads(function, holder, attribute):
    """Whether the code of `function` reads `attribute` of `holder`: a global of its own module,
    an attribute of a module or class it names, or of its own class (or a base)."""
    names = _names(function.__code__, set())
    if attribute not in names:
        return False
    namespace = function.__globals__
    if getattr(holder, "__dict__", None) is namespace:
        return True
    if any(namespace.get(name) is holder for name in names):
        return True
    owner = _owner(function)
    return isinstance(holder, type) and owner is not None and holder in owner.__mro__


def patched_by_callers(function, callers):
    """`(target, caller)` when `function`, or a function it reaches, reads an attribute that one
    of `callers` (functions, innermost first) patches by `target`; else None."""
    if _function(function) is None:
        return None
    targets = [(target, caller) for caller in callers for target in _targets(caller)]
    if not targets:
        return None
    reached = _reached(_function(function))
    for (target, holder, attribute), caller in targets:
        if any(_reads(each, holder, attribute) for each in reached):
            return target, f"{caller.__module__}.{caller.__qualname__}"
    return None
