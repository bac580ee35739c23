//! Objects that are not exact built-ins: classes, functions and modules (by name), enum
//! members, exceptions, instances of Python classes (by their `__dict__` and `__slots__`,
//! never their methods) and C subclasses of built-ins.

use fever_core::snapshot::{ObjectKind, RefKind, Sink};
use pyo3::ffi::{self, PyObject, PyTypeObject};

use super::classfacts::ClassFacts;
use super::pytype::{self, Probe};
use super::typefacts::{self, Facts, Reduction};
use super::walker::{left_out, Builtin, Walker};

impl<S: Sink> Walker<'_, '_, S> {
    /// Anything that is not an exact built-in.
    pub(super) unsafe fn other(&mut self, obj: *mut PyObject, tp: *mut PyTypeObject) {
        // SAFETY: GIL held, live object of type `tp`.
        unsafe {
            let Some(probe) = self.probe else {
                self.enc
                    .opaque(&std::ffi::CStr::from_ptr((*tp).tp_name).to_string_lossy());
                return;
            };
            if ffi::PyType_Check(obj) != 0 {
                let name = probe.type_name(obj.cast());
                self.enc
                    .reference(RefKind::Class, name.module, name.qualname);
            } else if ffi::PyFunction_Check(obj) != 0 {
                let name = Probe::function_name(obj);
                self.enc
                    .reference(RefKind::Function, name.module, name.qualname);
            } else if tp == &raw mut pytype::PyMethod_Type {
                let func = pytype::PyMethod_Function(obj);
                let name = if ffi::PyFunction_Check(func) != 0 {
                    Probe::function_name(func)
                } else {
                    probe.type_name(ffi::Py_TYPE(func))
                };
                self.enc
                    .reference(RefKind::Method, name.module, name.qualname);
            } else if ffi::PyCFunction_Check(obj) != 0 {
                self.builtin_function(obj);
            } else if ffi::PyModule_Check(obj) != 0 {
                let name = ffi::PyModule_GetNameObject(obj);
                self.enc.reference(
                    RefKind::Module,
                    crate::code_object::utf8(name).unwrap_or("?"),
                    "",
                );
                ffi::Py_XDECREF(name);
                ffi::PyErr_Clear();
            } else if ffi::PyExceptionInstance_Check(obj) != 0 {
                self.exception(obj, tp, probe);
            } else if probe.is_python_class(tp) {
                self.object(obj, tp, probe);
            } else if let Some(base) = Builtin::base_of(tp) {
                // A C subclass of a built-in (OrderedDict, numpy.float64): its built-in part.
                let name = probe.type_name(tp);
                self.enc
                    .begin_object(ObjectKind::Subclass, name.module, name.qualname, false);
                self.builtin(obj, base);
                self.enc.end(0);
            } else if tp == &raw mut ffi::PyMemoryView_Type {
                self.memoryview(obj);
            } else {
                let facts = type_facts(tp, probe);
                let reducible = facts.reduce != Reduction::Never;
                if !(reducible && self.reduced(obj, tp, probe, facts)) {
                    let mut name = std::mem::take(&mut self.name);
                    probe.type_name(tp).full_into(&mut name);
                    self.repr_if(obj, &name, facts.safe_repr);
                    self.name = name;
                    if reducible {
                        // Not reduced this time (too long, or its reduction failed): it may be
                        // after the call.
                        self.enc.changeable();
                    }
                }
            }
        }
    }

    /// An instance of a C type whose [`Facts::reduce`] says so, by what its own (C)
    /// `__reduce_ex__(2)` gives: the callable that makes it, its arguments, its state, the
    /// items it is filled with, and its repr when that is C code of a known module (`repr`:
    /// for renderings), recorded as a [`ObjectKind::Reduced`] object. `false` (nothing written)
    /// when this object cannot be pickled or is large (over [`REDUCED_MAX_LEN`] items: its
    /// arguments would copy them all).
    unsafe fn reduced(
        &mut self,
        obj: *mut PyObject,
        tp: *mut PyTypeObject,
        probe: &Probe,
        facts: Facts,
    ) -> bool {
        // SAFETY: GIL held; C code only (the type's own reduction, checked), errors cleared.
        unsafe {
            let name = probe.type_name(tp);
            // Asked only of a type with a length: `PyObject_Size` of any other builds a
            // `TypeError` to say so.
            let len = if typefacts::has_len(tp) {
                ffi::PyObject_Size(obj)
            } else {
                -1
            };
            if len < 0 {
                ffi::PyErr_Clear();
            } else if len > REDUCED_MAX_LEN {
                return false;
            }
            let reduction = reduction_of(obj, facts.reduce, probe);
            if reduction.is_null() {
                ffi::PyErr_Clear();
                return false;
            }
            let n = if ffi::PyTuple_Check(reduction) != 0 {
                ffi::PyTuple_GET_SIZE(reduction)
            } else {
                0
            };
            let item = |i: isize| {
                if i < n {
                    let v = ffi::PyTuple_GET_ITEM(reduction, i);
                    (v != ffi::Py_None()).then_some(v)
                } else {
                    None
                }
            };
            let callable = item(0).filter(|&c| {
                ffi::PyType_Check(c) != 0
                    || ffi::PyCFunction_Check(c) != 0
                    || ffi::PyFunction_Check(c) != 0
            });
            let args = item(1).filter(|&a| ffi::PyTuple_Check(a) != 0);
            // Dict items (a mapping filled after it is made) are not recorded.
            let (Some(callable), Some(args), (2..=4, None)) = (callable, args, (n, item(4))) else {
                ffi::Py_DECREF(reduction);
                return false;
            };
            if let Err(stop) = self.enter(obj) {
                self.stopped_at(stop, name);
                ffi::Py_DECREF(reduction);
                return true;
            }
            self.enc
                .begin_object(ObjectKind::Reduced, name.module, name.qualname, true);
            let mut fields = Fields {
                shown: 0,
                omitted: 0,
            };
            self.field(&mut fields, "callable", callable);
            self.field(&mut fields, "args", args);
            if let Some(state) = item(2) {
                self.field(&mut fields, "state", state);
            }
            if let Some(items) = item(3) {
                self.items_field(&mut fields, items);
            }
            // A repr that runs no Python code (datetime, decimal) is kept for renderings.
            if facts.safe_repr {
                let text = ffi::PyObject_Repr(obj);
                if text.is_null() {
                    ffi::PyErr_Clear();
                } else {
                    self.field(&mut fields, "repr", text);
                    ffi::Py_DECREF(text);
                }
            }
            self.enc.end(fields.omitted);
            self.leave();
            ffi::Py_DECREF(reduction);
            true
        }
    }

    /// The `listitems` field of a reduction: the items of the iterable `items` (an iterator,
    /// consumed), written as the list of them would be, without making that list. An item that
    /// fails to come ends the list there.
    unsafe fn items_field(&mut self, fields: &mut Fields, items: *mut PyObject) {
        // SAFETY: GIL held; `items` is live (the reduction holds it); errors cleared.
        unsafe {
            if !self.room(fields.shown) {
                fields.omitted += 1;
                return;
            }
            let iter = ffi::PyObject_GetIter(items);
            if iter.is_null() {
                ffi::PyErr_Clear();
                fields.omitted += 1;
                return;
            }
            self.enc.field("listitems");
            fields.shown += 1;
            self.iterated_list(iter);
            ffi::Py_DECREF(iter);
        }
    }

    unsafe fn builtin_function(&mut self, obj: *mut PyObject) {
        // SAFETY: GIL held; a PyCFunctionObject.
        unsafe {
            let f = obj.cast::<ffi::PyCFunctionObject>();
            let name = if (*f).m_ml.is_null() || (*(*f).m_ml).ml_name.is_null() {
                "?"
            } else {
                std::ffi::CStr::from_ptr((*(*f).m_ml).ml_name)
                    .to_str()
                    .unwrap_or("?")
            };
            let module = crate::code_object::utf8((*f).m_module).unwrap_or("");
            let bound = !(*f).m_self.is_null() && ffi::PyModule_Check((*f).m_self) == 0;
            let kind = if bound {
                RefKind::Method
            } else {
                RefKind::Builtin
            };
            self.enc.reference(kind, module, name);
        }
    }

    /// An instance of a Python class: its built-in part (for subclasses of built-ins), then its
    /// `__dict__` and `__slots__`.
    unsafe fn object(&mut self, obj: *mut PyObject, tp: *mut PyTypeObject, probe: &Probe) {
        // SAFETY: GIL held; `tp` is a Python class and `obj` its instance.
        unsafe {
            let name = probe.type_name(tp);
            let class = ClassFacts::of(tp, probe);
            let dict = instance_dict(obj, tp);
            if class.is_enum {
                if let Some(member) = probe.enum_member(dict) {
                    let qualname = format!("{}.{member}", name.qualname);
                    self.enc
                        .reference(RefKind::EnumMember, name.module, &qualname);
                    ffi::Py_XDECREF(dict);
                    return;
                }
            }
            if let Err(stop) = self.enter(obj) {
                self.stopped_at(stop, name);
                ffi::Py_XDECREF(dict);
                return;
            }
            let named_fields = if class.base == Some(Builtin::Tuple) {
                class.named_fields(obj)
            } else {
                None
            };
            self.enc.begin_object(
                class.kind(named_fields.is_some()),
                name.module,
                name.qualname,
                class.complete,
            );
            let mut fields = Fields {
                shown: 0,
                omitted: 0,
            };
            if let Some(names) = named_fields {
                for i in 0..ffi::PyTuple_GET_SIZE(names) {
                    let field =
                        crate::code_object::utf8(ffi::PyTuple_GET_ITEM(names, i)).unwrap_or("?");
                    self.field(&mut fields, field, ffi::PyTuple_GET_ITEM(obj, i));
                }
            } else if let Some(base) = class.base {
                self.contents(obj, base);
            }
            if !dict.is_null() {
                self.dict_fields(&mut fields, dict);
                ffi::Py_DECREF(dict);
            }
            for slot in &class.slots {
                let value = slot.value(obj, tp);
                if value.is_null() {
                    continue;
                }
                if let Some(name) = slot.name() {
                    self.field(&mut fields, name, value);
                }
                ffi::Py_DECREF(value);
            }
            self.enc.end(fields.omitted);
            self.leave();
        }
    }

    /// Writes one field of an object, or counts it when there is no [room](Walker::room).
    unsafe fn field(&mut self, fields: &mut Fields, name: &str, value: *mut PyObject) {
        if self.room(fields.shown) {
            self.enc.field(name);
            // SAFETY: GIL held; `value` is live (callers hold it).
            unsafe { self.value(value) };
            fields.shown += 1;
        } else {
            fields.omitted += 1;
        }
    }

    unsafe fn dict_fields(&mut self, fields: &mut Fields, dict: *mut PyObject) {
        // SAFETY: GIL held; `dict` is a dict we hold; entries are held while written.
        unsafe {
            let mut pos: ffi::Py_ssize_t = 0;
            let mut key = std::ptr::null_mut();
            let mut value = std::ptr::null_mut();
            while ffi::PyDict_Next(dict, &raw mut pos, &raw mut key, &raw mut value) != 0 {
                let Some(name) = crate::code_object::utf8(key) else {
                    continue;
                };
                ffi::Py_INCREF(key);
                ffi::Py_INCREF(value);
                self.field(fields, name, value);
                ffi::Py_DECREF(key);
                ffi::Py_DECREF(value);
            }
        }
    }

    unsafe fn exception(&mut self, obj: *mut PyObject, tp: *mut PyTypeObject, probe: &Probe) {
        // SAFETY: GIL held; `obj` is an exception instance.
        unsafe {
            let name = probe.type_name(tp);
            if let Err(stop) = self.enter(obj) {
                self.stopped_at(stop, name);
                return;
            }
            let args = pytype::PyException_GetArgs(obj);
            let args = if !args.is_null() && ffi::PyTuple_Check(args) != 0 {
                args
            } else {
                ffi::Py_XDECREF(args);
                ffi::PyErr_Clear();
                std::ptr::null_mut()
            };
            // str() only when it is C code over plain values (BaseException.__str__ calls str()
            // of args[0], which could be anything).
            let message = if probe.has_c_str(tp) && (args.is_null() || all_plain(args)) {
                ffi::PyObject_Str(obj)
            } else {
                std::ptr::null_mut()
            };
            if message.is_null() {
                ffi::PyErr_Clear();
            }
            let limit = self.limits.max_str_bytes;
            self.enc.begin_exception(
                name.module,
                name.qualname,
                crate::code_object::utf8(message),
                limit,
            );
            ffi::Py_XDECREF(message);
            let mut omitted = 0;
            if !args.is_null() {
                let n = ffi::PyTuple_GET_SIZE(args);
                let mut i = 0;
                while i < n && self.room(i) {
                    self.value(ffi::PyTuple_GET_ITEM(args, i));
                    i += 1;
                }
                omitted = left_out(n, i);
                ffi::Py_DECREF(args);
            }
            self.enc.end(omitted);
            self.leave();
        }
    }
}

/// Fields written and left out so far in an object.
struct Fields {
    shown: isize,
    omitted: u64,
}

/// The instance `__dict__` of an instance of a Python class (new reference), or NULL (error
/// cleared). Reads the dict slot directly; a `__dict__` property is not consulted.
unsafe fn instance_dict(obj: *mut PyObject, tp: *mut PyTypeObject) -> *mut PyObject {
    // SAFETY: GIL held; `tp` is `obj`'s type.
    unsafe {
        if ffi::PyType_HasFeature(tp, ffi::Py_TPFLAGS_MANAGED_DICT) == 0 && (*tp).tp_dictoffset == 0
        {
            return std::ptr::null_mut();
        }
        let dict = ffi::PyObject_GenericGetDict(obj, std::ptr::null_mut());
        if dict.is_null() || ffi::PyDict_Check(dict) == 0 {
            ffi::Py_XDECREF(dict);
            ffi::PyErr_Clear();
            return std::ptr::null_mut();
        }
        dict
    }
}

/// Items past which a C object is not recorded by its reduction ([`Walker::reduced`]).
const REDUCED_MAX_LEN: isize = 4096;

/// What the walker does with instances of the C type `tp` (not a Python class), found once
/// per type ([`typefacts`]).
unsafe fn type_facts(tp: *mut PyTypeObject, probe: &Probe) -> Facts {
    // SAFETY: GIL held, live type (caller); the lookups run C code only.
    unsafe {
        typefacts::facts(tp, || {
            let name = probe.type_name(tp);
            Facts {
                // `itertools`' reductions are deprecated (a warning the program would see).
                reduce: match (name.module, name.qualname) {
                    ("itertools", _) => Reduction::Never,
                    // The immutable type's own `__reduce__`: what it makes is known.
                    ("collections", "deque") => match c_reduction(tp, probe) {
                        Reduction::Reduce(_) => Reduction::Deque,
                        other => other,
                    },
                    _ => c_reduction(tp, probe),
                },
                safe_repr: super::walker::safe_repr_type(tp, &name.full()) && probe.has_c_repr(tp),
            }
        })
    }
}

/// How instances of `tp` are recorded by their reduction ([`Reduction`]): only when `tp`'s
/// `__reduce_ex__` and `__reduce__` are C code (no Python function of the program runs to take a
/// snapshot) that can succeed: `object`'s own two, which `tp` inherits, raise `cannot pickle`
/// with protocol 2 for a type that cannot make instances (no `tp_new`: generators, coroutines,
/// most iterators of C code).
unsafe fn c_reduction(tp: *mut PyTypeObject, probe: &Probe) -> Reduction {
    // SAFETY: GIL held; attribute lookups on types, errors cleared. A method descriptor found on
    // a type is the one in its MRO's dicts (kept as borrowed, see [`Reduction`]).
    unsafe {
        let lookup = |owner: *mut PyObject, name: *mut PyObject| {
            let found = ffi::PyObject_GetAttr(owner, name);
            if found.is_null() {
                ffi::PyErr_Clear();
            }
            found
        };
        let object = (&raw mut ffi::PyBaseObject_Type).cast::<PyObject>();
        let ex = lookup(tp.cast(), probe.reduce_ex_name());
        let plain = lookup(tp.cast(), probe.reduce_name());
        let object_ex = lookup(object, probe.reduce_ex_name());
        let object_plain = lookup(object, probe.reduce_name());
        let c_code = |m: *mut PyObject| {
            !m.is_null()
                && ffi::PyFunction_Check(m) == 0
                && !tp_is(m, &raw mut pytype::PyMethod_Type)
        };
        let descriptor = |m: *mut PyObject| tp_is(m, &raw mut ffi::PyMethodDescr_Type);
        let inherited = ex == object_ex && plain == object_plain;
        let how = if !(c_code(ex) && c_code(plain)) || (inherited && (*tp).tp_new.is_none()) {
            Reduction::Never
        } else if ex == object_ex && plain != object_plain && descriptor(plain) {
            Reduction::Reduce(plain)
        } else if descriptor(ex) {
            Reduction::ReduceEx(ex)
        } else {
            Reduction::ByName
        };
        for found in [ex, plain, object_ex, object_plain] {
            ffi::Py_XDECREF(found);
        }
        how
    }
}

/// `obj`'s reduction made as `how` says (new reference), or NULL (maybe with an error set).
unsafe fn reduction_of(obj: *mut PyObject, how: Reduction, probe: &Probe) -> *mut PyObject {
    // SAFETY: GIL held; `obj` live; a cached method is alive while its type's tag holds, and
    // is held during the call.
    unsafe {
        let protocol = ffi::PyLong_FromLong(2);
        if protocol.is_null() {
            return std::ptr::null_mut();
        }
        let args = [obj, protocol];
        let call = |method: *mut PyObject, nargs: usize| {
            ffi::Py_INCREF(method);
            let reduction =
                ffi::PyObject_Vectorcall(method, args.as_ptr(), nargs, std::ptr::null_mut());
            ffi::Py_DECREF(method);
            reduction
        };
        let reduction = match how {
            Reduction::Never => std::ptr::null_mut(),
            Reduction::Reduce(method) => call(method, 1),
            Reduction::ReduceEx(method) => call(method, 2),
            Reduction::Deque => deque_reduction(obj, probe),
            Reduction::ByName => ffi::PyObject_VectorcallMethod(
                probe.reduce_ex_name(),
                args.as_ptr(),
                2,
                std::ptr::null_mut(),
            ),
        };
        ffi::Py_DECREF(protocol);
        reduction
    }
}

/// What `deque.__reduce__` makes of the exact deque `obj` (new reference), or NULL (maybe with
/// an error set): `(deque, (), None, iter(obj))`, or `(deque, ((), maxlen), None, iter(obj))`
/// when bounded. The state is None: an exact deque has no `__dict__` and no slots.
unsafe fn deque_reduction(obj: *mut PyObject, probe: &Probe) -> *mut PyObject {
    // SAFETY: GIL held; `obj` is a live exact deque: `maxlen` is its C getter, its iterator C
    // code; every new reference is released or held by the result.
    unsafe {
        let maxlen = ffi::PyObject_GetAttr(obj, probe.maxlen_name());
        let empty = ffi::PyTuple_New(0);
        let iter = ffi::PyObject_GetIter(obj);
        let args = if maxlen.is_null() || empty.is_null() {
            std::ptr::null_mut()
        } else if maxlen == ffi::Py_None() {
            ffi::Py_INCREF(empty);
            empty
        } else {
            ffi::PyTuple_Pack(2, empty, maxlen)
        };
        let reduction = if args.is_null() || iter.is_null() {
            std::ptr::null_mut()
        } else {
            ffi::PyTuple_Pack(
                4,
                ffi::Py_TYPE(obj).cast::<PyObject>(),
                args,
                ffi::Py_None(),
                iter,
            )
        };
        for p in [maxlen, empty, iter, args] {
            ffi::Py_XDECREF(p);
        }
        reduction
    }
}

/// Whether `obj` is exactly of type `tp`.
unsafe fn tp_is(obj: *mut PyObject, tp: *mut PyTypeObject) -> bool {
    // SAFETY: GIL held; `obj` is live.
    unsafe { ffi::Py_TYPE(obj) == tp }
}

/// Every item of tuple `args` is a None, bool, int, float or str (exactly).
unsafe fn all_plain(args: *mut PyObject) -> bool {
    // SAFETY: GIL held; `args` is a tuple.
    unsafe {
        (0..ffi::PyTuple_GET_SIZE(args)).all(|i| {
            let item = ffi::PyTuple_GET_ITEM(args, i);
            let tp = ffi::Py_TYPE(item);
            item == ffi::Py_None()
                || tp == &raw mut ffi::PyBool_Type
                || tp == &raw mut ffi::PyLong_Type
                || tp == &raw mut ffi::PyFloat_Type
                || tp == &raw mut ffi::PyUnicode_Type
        })
    }
}
