//! Snapshots of real Python objects, in an embedded interpreter: what they record, their
//! hashes, and that they run no user code and leave no error behind.

use std::ffi::CStr;

use fever_core::snapshot::{
    content_hash, decode, render_args_short, render_short, Blob, BytesKind, ObjectKind, Value,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::walker::parse_hex;
use super::*;

/// Runs `code` in a fresh namespace and hands it to `check`.
fn with_namespace(code: &CStr, check: impl FnOnce(Python<'_>, &Bound<'_, PyDict>)) {
    Python::initialize();
    Python::attach(|py| {
        let ns = PyDict::new(py);
        ns.set_item("__name__", "snaptest").unwrap();
        py.run(code, Some(&ns), None).expect("test code runs");
        check(py, &ns);
    });
}

fn get<'py>(ns: &Bound<'py, PyDict>, name: &str) -> Bound<'py, PyAny> {
    ns.get_item(name)
        .unwrap()
        .unwrap_or_else(|| panic!("{name} defined"))
}

/// Snapshots `obj` with `limits`, checking that no error is left set.
fn snap_with(obj: &Bound<'_, PyAny>, limits: &SnapshotLimits) -> (Vec<u8>, Snapped) {
    let mut out = Vec::new();
    // SAFETY: GIL held (a Bound), live object.
    let snapped = unsafe { snapshot_value(obj.as_ptr(), limits, &mut out) };
    // SAFETY: GIL held.
    assert!(unsafe { ffi::PyErr_Occurred() }.is_null(), "error left set");
    (out, snapped)
}

fn snap(obj: &Bound<'_, PyAny>) -> (Vec<u8>, Snapped) {
    snap_with(obj, &SnapshotLimits::default())
}

fn short(obj: &Bound<'_, PyAny>) -> String {
    render_short(&snap(obj).0, 200)
}

fn hash(obj: &Bound<'_, PyAny>) -> u64 {
    snap(obj).1.hash
}

#[test]
fn ints_floats_and_strings() {
    with_namespace(
        c"vals = [0, -5, 2**63 - 1, -2**63, 2**100, -2**70 - 1, 1.5, -0.0, 1e300, 'héllo', '', True, None, 3+4j]",
        |_, ns| {
            let (bytes, snapped) = snap(&get(ns, "vals"));
            assert!(snapped.faithful);
            assert_eq!(
                render_short(&bytes, 300),
                "[0, -5, 9223372036854775807, -9223372036854775808, 1267650600228229401496703205376, \
                 -1180591620717411303425, 1.5, -0.0, 1e+300, 'héllo', '', True, None, (3+4j)]"
            );
            let Ok(Value::List(list)) = decode(&bytes) else {
                panic!("a list")
            };
            assert_eq!(list.items[2], Value::Int(i64::MAX));
            assert!(matches!(list.items[4], Value::BigInt { negative: false, .. }));
        },
    );
}

#[test]
fn long_strings_are_cut_and_hashed_whole() {
    with_namespace(
        c"a = 'x' * 10000\nb = 'x' * 9999 + 'y'\nc = 'é' * 10000\nd = 'é' * 9999 + 'è'\nsur = 'a\\udc80'",
        |_, ns| {
            let (bytes, snapped) = snap(&get(ns, "a"));
            assert!(!snapped.faithful);
            assert!(bytes.len() < 1100, "{}", bytes.len());
            assert_eq!(render_short(&bytes, 12), "'xxxxxxxxxx…");
            assert!(render_short(&bytes, 5000).ends_with("'…+8976"));
            assert_ne!(hash(&get(ns, "a")), hash(&get(ns, "b")));
            let (bytes, _) = snap(&get(ns, "c"));
            assert!(bytes.len() < 1100);
            assert!(render_short(&bytes, 5000).ends_with("'…+9488"));
            assert_ne!(hash(&get(ns, "c")), hash(&get(ns, "d")));
            assert_eq!(short(&get(ns, "sur")), "'a\\udc80'");
        },
    );
}

#[test]
fn nested_containers() {
    with_namespace(
        c"v = {'a': [1, (2, 3.5)], 'b': {7}, 'c': frozenset(), 'd': bytearray(b'xy'), 'e': (1,)}",
        |_, ns| {
            let (bytes, snapped) = snap(&get(ns, "v"));
            assert!(snapped.faithful && snapped.mutable);
            assert_eq!(
                render_short(&bytes, 200),
                "{'a': [1, (2, 3.5)], 'b': {7}, 'c': frozenset(), 'd': bytearray(b'xy'), 'e': (1,)}"
            );
        },
    );
}

#[test]
fn mutable_is_false_for_immutable_values() {
    with_namespace(
        c"t = (1, 'a', (2.0, None), b'x', frozenset({1}))\nl = (1, [2])",
        |_, ns| {
            assert!(!snap(&get(ns, "t")).1.mutable);
            assert!(snap(&get(ns, "l")).1.mutable);
        },
    );
}

#[test]
fn hashes_follow_python_equality() {
    with_namespace(
        c"d1 = {'a': 1, 'b': [2, 3]}\nd2 = {'b': [2, 3], 'a': 1}\nd3 = {'a': 1, 'b': [3, 2]}\n\
          s1 = {'x', 'y', 'z'}\ns2 = {'z', 'y', 'x'}\nl1 = [1, 2]\nl2 = [2, 1]\nt1 = (1, 2)\n\
          i = 1\nb = True\nf = 1.0",
        |_, ns| {
            assert_eq!(hash(&get(ns, "d1")), hash(&get(ns, "d2")));
            assert_ne!(hash(&get(ns, "d1")), hash(&get(ns, "d3")));
            assert_eq!(hash(&get(ns, "s1")), hash(&get(ns, "s2")));
            assert_ne!(hash(&get(ns, "l1")), hash(&get(ns, "l2")));
            assert_ne!(hash(&get(ns, "l1")), hash(&get(ns, "t1")));
            let scalars = [
                hash(&get(ns, "i")),
                hash(&get(ns, "b")),
                hash(&get(ns, "f")),
            ];
            assert!(
                scalars[0] != scalars[1] && scalars[1] != scalars[2] && scalars[0] != scalars[2]
            );
        },
    );
}

#[test]
fn dataclasses_named_tuples_slots_and_subclasses() {
    with_namespace(
        c"from dataclasses import dataclass\nfrom collections import namedtuple, Counter, OrderedDict\n\
          @dataclass\nclass P:\n    x: int\n    y: int = 2\n\
          @dataclass(slots=True)\nclass S:\n    a: str\n\
          class Slotted:\n    __slots__ = ('u', 'v')\n    def __init__(self): self.u = 1\n\
          class MyList(list):\n    pass\n\
          N = namedtuple('N', 'a b')\n\
          class Plain:\n    def __init__(self): self.z = [1]\n\
          class OD(OrderedDict):\n    pass\n\
          ml = MyList([1, 2]); ml.tag = 'x'\n\
          vals = [P(1), S('s'), Slotted(), ml, N(1, 2), Counter('aab'), OrderedDict(k=1), Plain(), OD(a=1)]",
        |_, ns| {
            let (bytes, snapped) = snap(&get(ns, "vals"));
            assert_eq!(
                render_short(&bytes, 300),
                "[P(x=1, y=2), S(a='s'), Slotted(u=1), MyList([1, 2], tag='x'), N(a=1, b=2), \
                 Counter({'a': 2, 'b': 1}), OrderedDict({'k': 1}), Plain(z=[1]), OD({'a': 1})]"
            );
            // OrderedDict is a C type: its C-level state is not all recorded.
            assert!(!snapped.faithful);
            let Ok(Value::List(list)) = decode(&bytes) else {
                panic!("a list")
            };
            let kinds: Vec<_> = list
                .items
                .iter()
                .map(|v| match v {
                    Value::Object(o) => (o.kind, o.complete, o.module.as_str()),
                    other => panic!("{other:?}"),
                })
                .collect();
            assert_eq!(kinds[0], (ObjectKind::Dataclass, true, "snaptest"));
            assert_eq!(kinds[1], (ObjectKind::Dataclass, true, "snaptest"));
            assert_eq!(kinds[3], (ObjectKind::Subclass, true, "snaptest"));
            assert_eq!(kinds[4], (ObjectKind::NamedTuple, true, "snaptest"));
            assert_eq!(kinds[6], (ObjectKind::Subclass, false, "collections"));
            assert_eq!(kinds[8], (ObjectKind::Subclass, false, "snaptest"));
            assert!(list.items[0].is_faithful());
        },
    );
}

#[test]
fn class_facts_follow_the_class() {
    with_namespace(
        c"class S:\n    __slots__ = ('a', 'b')\n\
          class T(S):\n    __slots__ = ('c',)\n\
          class Copied:\n    stolen = S.a\n\
          class Holder:\n    pass\n\
          t = T(); t.a = 1; t.c = 3\n\
          c = Copied()\n\
          h = Holder(); h.x = 1",
        |py, ns| {
            let kind = |name: &str| match decode(&snap(&get(ns, name)).0) {
                Ok(Value::Object(o)) => o.kind,
                other => panic!("{other:?}"),
            };
            // Slots of the whole MRO in its order, an unset one skipped; the second time from
            // the cache.
            for _ in 0..2 {
                assert_eq!(short(&get(ns, "t")), "T(c=3, a=1)");
            }
            py.run(c"t.b = 2", Some(ns), None).unwrap();
            assert_eq!(short(&get(ns, "t")), "T(c=3, a=1, b=2)");
            // Another class's member descriptor is not read at its offset.
            assert_eq!(short(&get(ns, "c")), "Copied()");
            assert_eq!(kind("h"), ObjectKind::Plain);
            py.run(c"Holder.__dataclass_fields__ = {}", Some(ns), None)
                .unwrap();
            assert_eq!(kind("h"), ObjectKind::Dataclass, "the class changed");
        },
    );
}

#[test]
fn references_enums_and_exceptions() {
    with_namespace(
        c"import enum, os\nclass Color(enum.Enum):\n    RED = 1\n\
          def f(): pass\n\
          vals = [Color.RED, f, len, os, int, [].append, lambda: 0, ValueError('bad', 3), KeyError('k')]",
        |_, ns| {
            let (bytes, snapped) = snap(&get(ns, "vals"));
            assert_eq!(
                render_short(&bytes, 300),
                "[Color.RED, <function snaptest.f>, <built-in function len>, <module 'os'>, \
                 <class 'int'>, <bound method append>, <function snaptest.<lambda>>, \
                 ValueError('bad', 3), KeyError('k')]"
            );
            assert!(!snapped.faithful);
        },
    );
}

#[test]
fn exceptions_record_type_args_and_message() {
    with_namespace(c"e = ZeroDivisionError('division by zero')", |_, ns| {
        let mut out = Vec::new();
        // SAFETY: GIL held, live object.
        unsafe { snapshot_exception(get(ns, "e").as_ptr(), &SnapshotLimits::default(), &mut out) };
        let Ok(Value::Exception(e)) = decode(&out) else {
            panic!("an exception")
        };
        assert_eq!(
            (e.module.as_str(), e.qualname.as_str()),
            ("builtins", "ZeroDivisionError")
        );
        assert_eq!(e.message.unwrap().as_str(), "division by zero");
        assert_eq!(e.args.items.len(), 1);
    });
}

#[test]
fn user_repr_never_runs() {
    with_namespace(
        c"import io, sys, collections\n\
          class Bad:\n    def __repr__(self): raise ValueError('no repr')\n\
          class Loud:\n    def __init__(self): self.n = 1\n    def __repr__(self):\n        print('LOUD')\n        return 'Loud'\n\
          class Prop:\n    @property\n    def p(self):\n        print('PROP')\n        return 1\n\
          buf = io.StringIO()\n\
          vals = [Bad(), Loud(), Prop()]\n\
          dq = collections.deque([Bad(), Loud()])",
        |py, ns| {
            let sys = py.import("sys").unwrap();
            let saved = sys.getattr("stdout").unwrap();
            sys.setattr("stdout", get(ns, "buf")).unwrap();
            let text = short(&get(ns, "vals"));
            let deque = short(&get(ns, "dq"));
            sys.setattr("stdout", saved).unwrap();
            assert_eq!(text, "[Bad(), Loud(n=1), Prop()]");
            // deque's repr is C code that would call Bad's and Loud's reprs: it is not called;
            // the deque is recorded by its reduction, its items as any object.
            assert_eq!(deque, "deque([Bad(), Loud(n=1)])");
            let printed: String = get(ns, "buf").call_method0("getvalue").unwrap().extract().unwrap();
            assert_eq!(printed, "");
        },
    );
}

#[test]
fn c_types_are_recorded_by_repr() {
    with_namespace(
        c"import datetime, decimal, threading\nd = datetime.date(2024, 1, 2)\nq = decimal.Decimal('1.5')\nlock = threading.Lock()\no = object()",
        |_, ns| {
            assert_eq!(short(&get(ns, "d")), "datetime.date(2024, 1, 2)");
            assert_eq!(short(&get(ns, "q")), "Decimal('1.5')");
            assert!(short(&get(ns, "lock")).starts_with("<unlocked _thread.lock object at"));
            assert_eq!(short(&get(ns, "o")), "<object object>");
        },
    );
}

#[test]
fn iterators_by_reduction_generators_by_type_each_time() {
    with_namespace(
        c"def gen():\n    yield 1\ng = gen()\nit = iter([1, 2])\nm = map(str, [3])\nnxt = next(it)",
        |_, ns| {
            // The second snapshot of each reads the type's decisions from the cache.
            for _ in 0..2 {
                assert_eq!(short(&get(ns, "g")), "<generator object>");
                assert_eq!(short(&get(ns, "it")), "list_iterator([1, 2], state=1)");
                assert_eq!(
                    short(&get(ns, "m")),
                    "map(<class 'str'>, list_iterator([3], state=0))"
                );
            }
            // A generator is recorded by its type alone: nothing a re-hash after a call could
            // see change. An iterator's reduction can.
            assert!(!snap(&get(ns, "g")).1.mutable);
            assert!(snap(&get(ns, "it")).1.mutable);
        },
    );
}

/// What [`snapshot_value`] of a deque wrote before its reduction's items were iterated: the
/// deque's reduction with the items as the list of them (`list(iterator)`).
fn deque_as_list(obj: &Bound<'_, PyAny>, limits: &SnapshotLimits) -> (Vec<u8>, Snapped) {
    let reduction = obj.call_method1("__reduce_ex__", (2,)).unwrap();
    let (callable, args, state, items): (
        Bound<'_, PyAny>,
        Bound<'_, PyAny>,
        Bound<'_, PyAny>,
        Bound<'_, PyAny>,
    ) = reduction.extract().unwrap();
    assert!(state.is_none());
    let items =
        pyo3::types::PyList::new(obj.py(), items.try_iter().unwrap().map(Result::unwrap)).unwrap();
    let mut out = Vec::new();
    // SAFETY: GIL held (Bounds), live objects; what `Walker::reduced` does for a deque.
    let snapped = unsafe {
        let mut w = walker::Walker::new(&mut out, limits);
        w.enter(obj.as_ptr()).unwrap();
        w.enc
            .begin_object(ObjectKind::Reduced, "collections", "deque", true);
        w.enc.field("callable");
        w.value(callable.as_ptr());
        w.enc.field("args");
        w.value(args.as_ptr());
        // The fields past the item limit are counted, not written.
        let omitted = if limits.max_items > 2 {
            w.enc.field("listitems");
            w.value(items.as_ptr());
            0
        } else {
            1
        };
        w.enc.end(omitted);
        w.leave();
        w.enc.finish()
    };
    (out, snapped)
}

#[test]
fn reduction_items_are_written_as_their_list() {
    with_namespace(
        c"import collections\n\
          class Node:\n    def __init__(self, n): self.n = n\n\
          few = collections.deque([1, 'a', (2.5, [3])])\n\
          many = collections.deque(range(100))\n\
          nested = collections.deque([collections.deque([Node(collections.deque([1]))])])\n\
          looped = collections.deque([0]); looped.append([looped])\n\
          bounded = collections.deque([1, [2]], maxlen=5)\n\
          full = collections.deque(range(10), maxlen=3)",
        |_, ns| {
            let limits = [
                SnapshotLimits::default(),
                SnapshotLimits {
                    max_items: 2,
                    ..SnapshotLimits::default()
                },
                SnapshotLimits {
                    max_depth: 1,
                    ..SnapshotLimits::default()
                },
                SnapshotLimits {
                    max_depth: 3,
                    ..SnapshotLimits::default()
                },
            ];
            // Made by fever, not by `deque.__reduce__` (`Reduction::Deque`): the same bytes.
            for name in ["few", "many", "nested", "looped", "bounded", "full"] {
                let obj = get(ns, name);
                for limits in &limits {
                    let (bytes, snapped) = snap_with(&obj, limits);
                    let (expected, expected_snapped) = deque_as_list(&obj, limits);
                    assert_eq!(
                        render_short(&bytes, 500),
                        render_short(&expected, 500),
                        "{name} {limits:?}"
                    );
                    assert_eq!(bytes, expected, "{name} {limits:?}");
                    assert_eq!(snapped, expected_snapped, "{name} {limits:?}");
                }
            }
            assert_eq!(
                short(&get(ns, "looped")),
                "deque([0, [...]])",
                "the cycle is counted through the items' list"
            );
        },
    );
}

#[test]
fn cycles_and_depth_limits() {
    with_namespace(
        c"a = [1]\na.append(a)\nd = {}\nd['self'] = [d]\ndeep = [[[[[[[[[1]]]]]]]]]",
        |_, ns| {
            let (bytes, snapped) = snap(&get(ns, "a"));
            assert_eq!(render_short(&bytes, 80), "[1, ...]");
            assert!(!snapped.faithful);
            let Ok(Value::List(list)) = decode(&bytes) else {
                panic!("a list")
            };
            assert_eq!(list.items[1], Value::Cycle { levels: 1 });
            let (bytes, _) = snap(&get(ns, "d"));
            let Ok(Value::Dict(map)) = decode(&bytes) else {
                panic!("a dict")
            };
            assert_eq!(
                map.entries[0].1,
                Value::List(fever_core::snapshot::Seq {
                    items: vec![Value::Cycle { levels: 2 }],
                    omitted: 0
                })
            );
            assert_eq!(short(&get(ns, "deep")), "[[[[[[[…]]]]]]]");
            let shallow = SnapshotLimits {
                max_depth: 1,
                ..SnapshotLimits::default()
            };
            assert_eq!(
                render_short(&snap_with(&get(ns, "deep"), &shallow).0, 80),
                "[[…]]"
            );
        },
    );
}

#[test]
fn item_limits_count_what_is_left_out() {
    with_namespace(
        c"l = list(range(1000))\nd = {i: i for i in range(300)}",
        |_, ns| {
            let (bytes, snapped) = snap(&get(ns, "l"));
            assert!(!snapped.faithful);
            assert!(render_short(&bytes, 1000).ends_with("30, 31, …+968]"));
            assert!(render_short(&snap(&get(ns, "d")).0, 2000).ends_with("31: 31, …+268}"));
        },
    );
}

#[test]
fn big_buffers_are_hashed_not_copied() {
    with_namespace(
        c"big = bytes(range(256)) * 8192\nsmall = memoryview(b'abcdef')[::2]",
        |_, ns| {
            let (bytes, snapped) = snap(&get(ns, "big"));
            assert!(bytes.len() < 64, "{} bytes", bytes.len());
            assert!(!snapped.faithful);
            let data: Vec<u8> = (0..=255u8).cycle().take(2 << 20).collect();
            assert_eq!(
                decode(&bytes).unwrap(),
                Value::Bytes {
                    kind: BytesKind::Bytes,
                    blob: Blob::Hashed {
                        len: 2 << 20,
                        hash: content_hash(&data)
                    }
                }
            );
            assert_eq!(short(&get(ns, "small")), "memoryview(b'ace')");
        },
    );
}

#[test]
fn numpy_arrays_when_numpy_is_installed() {
    with_namespace(
        c"try:\n    import numpy as np\nexcept ImportError:\n    np = None\n\
          if np is not None:\n    a = np.arange(6, dtype=np.float64).reshape(2, 3)\n    t = a.T\n    big = np.zeros(300000)\n    o = np.array([1, 'x'], dtype=object)\n    class Sub(np.ndarray):\n        pass\n    s = np.zeros(2, dtype=np.uint8).view(Sub)",
        |_, ns| {
            if get(ns, "np").is_none() {
                eprintln!("numpy not installed: array snapshots not tested");
                return;
            }
            let (bytes, snapped) = snap(&get(ns, "a"));
            assert!(snapped.faithful && snapped.mutable);
            let Ok(Value::Array(array)) = decode(&bytes) else {
                panic!("an array")
            };
            assert_eq!((array.dtype.as_str(), array.shape.as_slice()), ("float64", &[2, 3][..]));
            // The transpose is read by strides, in C order.
            let Ok(Value::Array(t)) = decode(&snap(&get(ns, "t")).0) else {
                panic!("an array")
            };
            let want: Vec<u8> = [0.0f64, 3.0, 1.0, 4.0, 2.0, 5.0]
                .iter()
                .flat_map(|v| v.to_ne_bytes())
                .collect();
            assert_eq!(t.data, fever_core::snapshot::ArrayData::Data(want));
            let (bytes, snapped) = snap(&get(ns, "big"));
            assert!(!snapped.faithful && bytes.len() < 100);
            assert_eq!(
                render_short(&bytes, 200),
                format!("ndarray(float64, shape=(300000,), xxh3={:016x})", content_hash(&vec![0; 2_400_000]))
            );
            assert_eq!(short(&get(ns, "o")), "ndarray(|O, shape=(2,))");
            assert_eq!(
                short(&get(ns, "s")),
                format!("Sub(ndarray(uint8, shape=(2,), xxh3={:016x}))", content_hash(&[0, 0]))
            );
        },
    );
}

#[test]
fn arguments_skip_unbound_values_and_keep_a_pending_error() {
    with_namespace(c"x = 1\ny = 'a'", |py, ns| {
        let x = get(ns, "x");
        let y = get(ns, "y");
        // SAFETY: GIL held; a pending error set on purpose and checked after.
        unsafe { ffi::PyErr_SetString(ffi::PyExc_KeyError, c"pending".as_ptr()) };
        let mut out = Vec::new();
        // SAFETY: GIL held, live objects or NULL.
        let snapped = unsafe {
            snapshot_args(
                &["x", "unbound", "*rest"],
                &[x.as_ptr(), std::ptr::null_mut(), y.as_ptr()],
                &SnapshotLimits::default(),
                &mut out,
            )
        };
        let pending = PyErr::take(py).expect("the pending error is still set");
        assert!(pending.is_instance_of::<pyo3::exceptions::PyKeyError>(py));
        assert_eq!(render_args_short(&out, 80), "x=1, *rest='a'");
        assert!(!snapped.mutable && snapped.faithful);
    });
}

#[test]
fn rehashing_arguments_sees_mutation() {
    with_namespace(
        c"l = [1, {'a': 2}, 'x' * 2000, b'b', bytearray(8), (1.5, None)]\nit = iter(l)",
        |py, ns| {
            let l = get(ns, "l");
            let it = get(ns, "it");
            let names = ["l", "it"];
            let values = [l.as_ptr(), it.as_ptr()];
            let limits = SnapshotLimits::default();
            // SAFETY: GIL held, live objects.
            let rehash = || unsafe { args_summary(&names, &values, &limits) };
            let mut out = Vec::new();
            // SAFETY: as above.
            let written = unsafe { snapshot_args(&names, &values, &limits, &mut out) };
            let before = rehash();
            assert_eq!(
                before, written,
                "the summary without bytes is the snapshot's"
            );
            assert!(before.mutable);
            assert_eq!(rehash(), before);
            py.run(c"l[1]['a'] = 3", Some(ns), None).unwrap();
            assert_ne!(rehash().hash, before.hash);
        },
    );
}

/// How many values `value` holds, itself included (what the node budget counts).
fn values_in(value: &Value) -> usize {
    let all = |items: &[Value]| items.iter().map(values_in).sum::<usize>();
    1 + match value {
        Value::List(seq) | Value::Tuple(seq) | Value::Set(seq) | Value::FrozenSet(seq) => {
            all(&seq.items)
        }
        Value::Dict(map) => map
            .entries
            .iter()
            .map(|(k, v)| values_in(k) + values_in(v))
            .sum(),
        Value::Object(object) => {
            object.base.as_deref().map_or(0, values_in)
                + object
                    .fields
                    .entries
                    .iter()
                    .map(|(_, v)| values_in(v))
                    .sum::<usize>()
        }
        Value::Exception(exception) => all(&exception.args.items),
        Value::Args(fields) => fields.entries.iter().map(|(_, v)| values_in(v)).sum(),
        _ => 0,
    }
}

/// Linked nodes (like cachetools' `_Link`s) behind a dict of them, and a wide list of lists.
const LINKED: &CStr = c"
class Link:
    __slots__ = ('key', 'prev', 'next')
    def __init__(self, key):
        self.key = key

def chain(n):
    links = {}
    root = prev = Link('root')
    for i in range(n):
        link = Link(i)
        link.prev, prev.next = prev, link
        links[i] = prev = link
    return {'root': root, 'links': links}

cache = chain(100)
same = chain(100)
wide = [[i] * 32 for i in range(32)]
wide_later = [[i] * 32 for i in range(32)]
wide_later[31][5] = 'changed'
wide_early = [[i] * 32 for i in range(32)]
wide_early[0][5] = 'changed'
";

#[test]
fn the_node_budget_cuts_wide_and_deep_values() {
    with_namespace(LINKED, |_, ns| {
        let budget = SnapshotLimits {
            max_nodes: 200,
            ..SnapshotLimits::default()
        };
        let unbudgeted = SnapshotLimits {
            max_nodes: 0,
            ..SnapshotLimits::default()
        };
        let (full, full_snapped) = snap_with(&get(ns, "cache"), &unbudgeted);
        let (bytes, snapped) = snap_with(&get(ns, "cache"), &budget);
        let walked = values_in(&decode(&bytes).unwrap());
        assert!(walked <= 200, "{walked} values");
        let unbudgeted_values = values_in(&decode(&full).unwrap());
        assert!(unbudgeted_values > 500, "{unbudgeted_values}");
        assert!(!snapped.faithful && !snapped.complete && snapped.mutable);
        assert_ne!(snapped.hash, full_snapped.hash);
        // Stable: the same value, and an equal one, hash the same.
        assert_eq!(
            snap_with(&get(ns, "cache"), &budget),
            (bytes.clone(), snapped)
        );
        assert_eq!(snap_with(&get(ns, "same"), &budget).1.hash, snapped.hash);
        // Cut like the item limit cuts: the rest of each container is counted.
        let text = render_short(&bytes, 100_000);
        assert!(text.contains(", …+"), "{text}");

        let (bytes, snapped) = snap_with(&get(ns, "wide"), &budget);
        assert!(!snapped.faithful);
        assert!(values_in(&decode(&bytes).unwrap()) <= 200);
        let text = render_short(&bytes, 100_000);
        assert!(text.starts_with("[[0, 0, "), "{text}");
        assert!(text.ends_with("[…+32], …+25]"), "{text}");
        // What the budget cut is not compared; what it kept is.
        assert_eq!(
            snap_with(&get(ns, "wide_later"), &budget).1.hash,
            snapped.hash
        );
        assert_ne!(
            snap_with(&get(ns, "wide_early"), &budget).1.hash,
            snapped.hash
        );
    });
}

#[test]
fn values_within_the_node_budget_are_recorded_as_without_it() {
    with_namespace(LINKED, |_, ns| {
        let wide = get(ns, "wide");
        let unbudgeted = SnapshotLimits {
            max_nodes: 0,
            ..SnapshotLimits::default()
        };
        // 1 + 32 lists of 1 + 32 ints.
        let exact = SnapshotLimits {
            max_nodes: 1057,
            ..SnapshotLimits::default()
        };
        let (bytes, snapped) = snap_with(&wide, &unbudgeted);
        assert!(snapped.faithful);
        assert_eq!(snap_with(&wide, &exact), (bytes, snapped));
        let one_less = SnapshotLimits {
            max_nodes: 1056,
            ..exact
        };
        let (bytes, snapped) = snap_with(&wide, &one_less);
        assert!(!snapped.faithful);
        assert!(render_short(&bytes, 100_000).ends_with(", 31, …+1]]"));
    });
}

#[test]
fn arguments_past_the_node_budget_are_recorded_by_type() {
    with_namespace(LINKED, |py, ns| {
        let budget = SnapshotLimits {
            max_nodes: 50,
            ..SnapshotLimits::default()
        };
        let small = py.eval(c"[1, 2]", None, None).unwrap();
        let names = ["self", "key", "more"];
        let values = [
            get(ns, "cache").as_ptr(),
            get(ns, "same").as_ptr(),
            small.as_ptr(),
        ];
        let key = py.eval(c"7", None, None).unwrap();
        let values_with_key = [values[0], key.as_ptr(), small.as_ptr()];
        let mut out = Vec::new();
        // SAFETY: GIL held, live objects.
        let snapped = unsafe { snapshot_args(&names, &values_with_key, &budget, &mut out) };
        assert!(!snapped.faithful);
        let text = render_args_short(&out, 100_000);
        assert!(text.ends_with(", key=7, more=[…]"), "{text}");
        // SAFETY: as above.
        let summary = unsafe { args_summary(&names, &values_with_key, &budget) };
        assert_eq!(summary, snapped, "the re-hash walks the same values");
        let mut out = Vec::new();
        // SAFETY: as above.
        unsafe { snapshot_args(&names, &values, &budget, &mut out) };
        let text = render_args_short(&out, 100_000);
        assert!(text.ends_with(", key={…}, more=[…]"), "{text}");
    });
}

#[test]
fn hex_parsing() {
    assert_eq!(parse_hex("0x1ff", 8), Some((false, vec![0x01, 0xff])));
    assert_eq!(parse_hex("-0xab", 8), Some((true, vec![0xab])));
    assert_eq!(parse_hex("0x123456", 2), None);
    assert_eq!(parse_hex("12", 8), None);
}

/// The general path (the walker, with its guards) for `obj`, bypassing the scalar fast path.
fn snap_walked(obj: *mut ffi::PyObject, limits: &SnapshotLimits) -> (Vec<u8>, Snapped) {
    let mut out = Vec::new();
    // SAFETY: GIL held (callers), live object.
    let snapped = unsafe { guarded(&mut out, limits, |w| w.value(obj)) };
    (out, snapped)
}

#[test]
fn scalar_fast_path_matches_the_walker() {
    with_namespace(
        c"class I(int): pass
class S(str): pass
class F(float): pass
vals = [None, True, False, 0, 1, -1, -2, 7, 255, 2**31, -2**31, 2**63 - 1, -2**63, 2**63,
    -2**63 - 1, 2**200, -2**200, I(5), I(-1), 0.0, -0.0, 1.5, float('nan'), float('inf'),
    -float('inf'), 1e-310, F(2.5), '', 'a', 'hello', 'x' * 300, 'héllo', 'h\\udc80llo',
    '\\ud800', '\\U0001f600', 'é' * 300, S('sub'), b'by', 3+4j, (), [], {}]
args = [[], [None], [1, 'a', 2.5, True], [1, [2]], ['x' * 300, None, -1], [2**70], [S('s')],
    [float('nan'), 'h\\udc80']]",
        |_, ns| {
            let limits = SnapshotLimits {
                max_str_bytes: 16,
                ..SnapshotLimits::default()
            };
            let mut fast_taken = 0;
            for v in get(ns, "vals").try_iter().unwrap() {
                let obj = v.unwrap();
                let (bytes, snapped) = snap_with(&obj, &limits);
                assert_eq!(
                    (bytes, snapped),
                    snap_walked(obj.as_ptr(), &limits),
                    "{obj:?}"
                );
                let mut out = Vec::new();
                // SAFETY: GIL held, live object.
                if let Some(fast) = unsafe { scalar::value(obj.as_ptr(), &limits, &mut out) } {
                    // Read back as Python shows it (strs within the limit), not only as the
                    // walker writes it: the walker takes this same path for scalars.
                    let repr = obj.repr().unwrap().to_string();
                    if repr.len() <= limits.max_str_bytes {
                        assert_eq!(render_short(&out, 200), repr, "{obj:?}");
                    }
                    assert_eq!((out, fast), snap_walked(obj.as_ptr(), &limits), "{obj:?}");
                    fast_taken += 1;
                }
            }
            // None, bools, small ints, floats and exact ASCII strs take the fast path.
            assert_eq!(fast_taken, 23);
            for a in get(ns, "args").try_iter().unwrap() {
                let a = a.unwrap();
                let values: Vec<*mut ffi::PyObject> = std::iter::once(std::ptr::null_mut())
                    .chain(a.try_iter().unwrap().map(|v| v.unwrap().as_ptr()))
                    .collect();
                let names: Vec<String> = (0..values.len()).map(|i| format!("p{i}")).collect();
                let mut walked = vec![9];
                // SAFETY: GIL held, live values (kept alive by the list `a`).
                let walked_snapped = unsafe {
                    guarded(&mut walked, &limits, |w| {
                        w.enc.begin_args();
                        for (name, &value) in names.iter().zip(&values) {
                            if !value.is_null() {
                                w.enc.field(name);
                                w.value(value);
                            }
                        }
                        w.enc.end(0);
                    })
                };
                let mut out = vec![9];
                // SAFETY: as above.
                let snapped = unsafe { snapshot_args(&names, &values, &limits, &mut out) };
                assert_eq!((&out, snapped), (&walked, walked_snapped), "{a:?}");
                // SAFETY: as above.
                let summary = unsafe { args_summary(&names, &values, &limits) };
                assert_eq!(summary, walked_snapped, "{a:?}");
            }
        },
    );
}
