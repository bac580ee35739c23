"""A function defined inside another (`test_x.<locals>.f`), made again from its code, for
`fever check` to rebuild an argument the recording named but no module holds.

The enclosing function's code holds the nested function's code among its constants; a new
function of that code over the enclosing function's module globals is the function the
recording had exactly when nothing else made it: no closure (free variables: values of the
enclosing call), and no defaults, keyword defaults or annotations (`MAKE_FUNCTION` evaluated
them in the enclosing call). Anything else, or two codes of that name (a `def` in both branches
of an `if`, two lambdas), gives None.
"""

import dis
import types

# MAKE_FUNCTION's (3.12) or SET_FUNCTION_ATTRIBUTE's (3.13+) flags.
_MADE_WITH = ("MAKE_FUNCTION", "SET_FUNCTION_ATTRIBUTE")


def _codes(code):
    """`code` and the code objects nested in it, outermost first."""
    found = [code]
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found.extend(_codes(const))
    return found


def _plain(maker, target):
    """Whether `maker` makes its function of `target` with nothing evaluated at that moment:
    no defaults, keyword defaults, annotations or closure."""
    made = False
    after = False
    for instruction in dis.get_instructions(maker):
        if instruction.opname == "LOAD_CONST" and instruction.argval is target:
            made, after = True, True
            continue
        if after and instruction.opname in _MADE_WITH:
            if instruction.arg:
                return False
            continue
        after = False
    return made


def rebuild(enclosing, qualname):
    """The function `qualname` defined in the Python function `enclosing`, or None."""
    code = getattr(enclosing, "__code__", None)
    namespace = getattr(enclosing, "__globals__", None)
    if not isinstance(code, types.CodeType) or not isinstance(namespace, dict):
        return None
    codes = _codes(code)
    matching = [each for each in codes if each.co_qualname == qualname]
    if len(matching) != 1:
        return None
    target = matching[0]
    if target.co_freevars:
        return None
    makers = [each for each in codes if any(const is target for const in each.co_consts)]
    if len(makers) != 1 or not _plain(makers[0], target):
        return None
    function = types.FunctionType(target, namespace, target.co_name)
    function.__qualname__ = qualname
    return function
