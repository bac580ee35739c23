//! Tests of the snapshot model as a whole: round trips, hash properties, rendering, and
//! property tests that feed random and mutated bytes to the decoder and renderers.

use proptest::prelude::*;

use super::*;

/// Encodes with `write` and returns the bytes and the summary.
fn snap(write: impl FnOnce(&mut Encoder<'_>)) -> (Vec<u8>, Snapped) {
    let mut out = Vec::new();
    let mut enc = Encoder::new(&mut out);
    write(&mut enc);
    let summary = enc.finish();
    (out, summary)
}

fn hash_of(write: impl FnOnce(&mut Encoder<'_>)) -> u64 {
    snap(write).1.hash
}

/// Decodes, checks that re-encoding gives the same bytes, hash and flags, and returns the value.
fn round_trip(bytes: &[u8], summary: Snapped) -> Value {
    let value = decode(bytes).expect("decodes");
    let mut again = Vec::new();
    let resummary = value.encode(&mut again);
    assert_eq!(again, bytes, "re-encoding gives the same bytes");
    assert_eq!(resummary, summary);
    assert_eq!(value.hash(), summary.hash);
    assert_eq!(value.is_faithful(), summary.faithful);
    value
}

fn point(enc: &mut Encoder<'_>, x: i64, y: i64, x_first: bool) {
    enc.begin_object(ObjectKind::Dataclass, "geo", "Point", true);
    if x_first {
        enc.field("x");
        enc.int(x);
        enc.field("y");
        enc.int(y);
    } else {
        enc.field("y");
        enc.int(y);
        enc.field("x");
        enc.int(x);
    }
    enc.end(0);
}

#[test]
fn every_kind_of_value_round_trips() {
    let (bytes, summary) = snap(|enc| {
        enc.begin_args();
        enc.field("a");
        enc.begin_list();
        enc.none();
        enc.bool(true);
        enc.int(-3);
        enc.big_int(true, &[1, 0, 0, 0, 0, 0, 0, 0, 0, 7]);
        enc.float(2.5);
        enc.complex(1.0, -2.0);
        enc.str("héllo");
        enc.str_limited("a long string", 4);
        enc.bytes(BytesKind::ByteArray, b"\x00\x01");
        enc.bytes_hashed(BytesKind::Bytes, 3 << 20, 0x1234);
        enc.end(5);
        enc.field("b");
        enc.begin_dict();
        enc.str("k");
        enc.begin_tuple();
        enc.int(1);
        enc.end(0);
        enc.begin_frozenset();
        enc.int(2);
        enc.end(0);
        enc.begin_set();
        enc.end(0);
        enc.end(0);
        enc.field("c");
        enc.begin_object(ObjectKind::Subclass, "m", "MyList", true);
        enc.begin_list();
        enc.cycle(2);
        enc.end(0);
        enc.field("tag");
        enc.depth_limit("dict");
        enc.end(0);
        enc.field("d");
        enc.begin_exception("builtins", "ValueError", Some("bad"), 100);
        enc.str("bad");
        enc.end(0);
        enc.field("e");
        enc.array(&ArrayInfo {
            type_name: "numpy.ndarray",
            dtype: "float64",
            shape: &[2, 3],
            content: ArrayContent::Data(&[0; 48]),
        });
        enc.field("f");
        enc.reference(RefKind::EnumMember, "colors", "Color.RED");
        enc.field("g");
        enc.repr("datetime.date", "datetime.date(2024, 1, 2)", 10);
        enc.field("h");
        enc.unrepresentable("Weird");
        enc.field("i");
        enc.opaque("_thread.lock");
        enc.end(0);
    });
    assert!(summary.mutable);
    assert!(!summary.faithful);
    let value = round_trip(&bytes, summary);
    let Value::Args(args) = value else {
        panic!("arguments at the root")
    };
    assert_eq!(args.entries.len(), 9);
    let Value::List(list) = &args.entries[0].1 else {
        panic!("a list")
    };
    assert_eq!(list.omitted, 5);
    assert_eq!(
        list.items[7],
        Value::Str(Text::Truncated {
            prefix: "a lo".into(),
            omitted_chars: 9,
            hash: content_hash(b"a long string"),
        })
    );
}

#[test]
fn hash_only_sink_gives_the_same_summary() {
    fn write<S: Sink>(enc: &mut Encoder<'_, S>) {
        enc.begin_args();
        enc.field("a");
        enc.begin_list();
        enc.big_int(false, &[9; 12]);
        enc.str_limited("a long string", 4);
        enc.bytes(BytesKind::ByteArray, b"\x00\x01");
        enc.end(2);
        enc.field("b");
        enc.begin_dict();
        enc.str("k");
        enc.begin_object(ObjectKind::Dataclass, "m", "P", true);
        enc.field("x");
        enc.float(0.5);
        enc.end(0);
        enc.end(0);
        enc.field("c");
        enc.opaque("_thread.lock");
        enc.end(0);
    }
    let (bytes, written) = snap(write);
    let mut nothing = HashOnly;
    let mut enc = Encoder::new(&mut nothing);
    write(&mut enc);
    assert_eq!(enc.finish(), written);
    assert_eq!(round_trip(&bytes, written).hash(), written.hash);
}

#[test]
fn faithful_and_mutable_flags() {
    let (_, s) = snap(|enc| {
        enc.begin_tuple();
        enc.int(1);
        enc.str("x");
        enc.end(0);
    });
    assert!(s.faithful && !s.mutable);
    let (_, s) = snap(|enc| {
        enc.begin_list();
        enc.end(0);
    });
    assert!(s.faithful && s.mutable);
    let (_, s) = snap(|enc| {
        enc.begin_tuple();
        enc.int(1);
        enc.end(3);
    });
    assert!(!s.faithful && !s.mutable);
    let (_, s) = snap(|enc| enc.str_limited("ééé", 3));
    assert!(!s.faithful);
    let (_, s) = snap(|enc| enc.reference(RefKind::Function, "m", "f.<locals>.g"));
    assert!(!s.faithful);
    let (_, s) = snap(|enc| enc.reference(RefKind::Function, "m", "C.f"));
    assert!(s.faithful);
    let (_, s) = snap(|enc| enc.unrepresentable("T"));
    assert!(!s.faithful && s.mutable);
    // Known by type alone: not faithful, but no change a re-hash could see.
    for s in [
        snap(|enc| enc.opaque("_thread.lock")).1,
        snap(|enc| enc.depth_limit("list")).1,
        snap(|enc| {
            enc.begin_tuple();
            enc.cycle(1);
            enc.end(0);
        })
        .1,
    ] {
        assert!(!s.faithful && !s.complete && !s.mutable);
    }
    let (_, s) = snap(|enc| {
        enc.opaque("array.array");
        enc.changeable();
    });
    assert!(!s.faithful && s.mutable);
}

#[test]
fn complete_means_the_hash_covers_everything() {
    let (_, s) = snap(|enc| enc.bytes_hashed(BytesKind::Bytes, 3 << 20, 0x1234));
    assert!(s.complete && !s.faithful);
    let (_, s) = snap(|enc| enc.str_limited("ééé", 3));
    assert!(s.complete && !s.faithful);
    let (_, s) = snap(|enc| {
        enc.begin_list();
        enc.int(1);
        enc.end(3);
    });
    assert!(!s.complete);
    for opaque in [
        snap(|enc| enc.opaque("socket")).1,
        snap(|enc| enc.repr("Lock", "<lock>", 100)).1,
        snap(|enc| enc.depth_limit("list")).1,
        snap(|enc| enc.reference(RefKind::Function, "m", "f.<locals>.g")).1,
    ] {
        assert!(!opaque.complete);
    }
    let (_, s) = snap(|enc| {
        enc.begin_tuple();
        enc.int(1);
        enc.str("x");
        enc.end(0);
    });
    assert!(s.complete && s.faithful);
}

#[test]
fn dict_set_and_field_hashes_ignore_order() {
    let dict = |pairs: &[(&str, i64)]| {
        hash_of(|enc| {
            enc.begin_dict();
            for (k, v) in pairs {
                enc.str(k);
                enc.int(*v);
            }
            enc.end(0);
        })
    };
    assert_eq!(dict(&[("a", 1), ("b", 2)]), dict(&[("b", 2), ("a", 1)]));
    assert_ne!(dict(&[("a", 1), ("b", 2)]), dict(&[("a", 2), ("b", 1)]));
    assert_ne!(dict(&[("a", 1)]), dict(&[("a", 1), ("b", 2)]));
    let set = |items: &[i64]| {
        hash_of(|enc| {
            enc.begin_set();
            for &i in items {
                enc.int(i);
            }
            enc.end(0);
        })
    };
    assert_eq!(set(&[1, 2, 3]), set(&[3, 1, 2]));
    assert_ne!(set(&[1, 2]), set(&[1, 3]));
    assert_eq!(
        hash_of(|enc| point(enc, 1, 2, true)),
        hash_of(|enc| point(enc, 1, 2, false))
    );
    assert_ne!(
        hash_of(|enc| point(enc, 1, 2, true)),
        hash_of(|enc| point(enc, 2, 1, true))
    );
}

#[test]
fn list_tuple_and_argument_hashes_keep_order() {
    let seq = |tuple: bool, items: &[i64]| {
        hash_of(|enc| {
            if tuple {
                enc.begin_tuple();
            } else {
                enc.begin_list();
            }
            for &i in items {
                enc.int(i);
            }
            enc.end(0);
        })
    };
    assert_ne!(seq(false, &[1, 2]), seq(false, &[2, 1]));
    assert_ne!(seq(false, &[1, 2]), seq(true, &[1, 2]));
    assert_eq!(seq(true, &[1, 2]), seq(true, &[1, 2]));
    assert_ne!(seq(false, &[1]), seq(false, &[1, 1]));
    let args = |names: [&str; 2], values: [i64; 2]| {
        hash_of(|enc| {
            enc.begin_args();
            for (name, value) in names.iter().zip(values) {
                enc.field(name);
                enc.int(value);
            }
            enc.end(0);
        })
    };
    assert_ne!(args(["x", "y"], [1, 2]), args(["x", "y"], [2, 1]));
    assert_ne!(args(["x", "y"], [1, 2]), args(["x", "z"], [1, 2]));
    assert_ne!(args(["x", "y"], [1, 2]), args(["y", "x"], [2, 1]));
}

#[test]
fn scalar_types_stay_apart() {
    let hashes = [
        hash_of(|e| e.int(1)),
        hash_of(|e| e.bool(true)),
        hash_of(|e| e.float(1.0)),
        hash_of(|e| e.str("1")),
        hash_of(|e| e.bytes(BytesKind::Bytes, b"1")),
        hash_of(|e| e.bytes(BytesKind::ByteArray, b"1")),
        hash_of(|e| e.float(-0.0)),
        hash_of(|e| e.float(0.0)),
        hash_of(|e| e.int(0)),
        hash_of(|e| {
            e.none();
        }),
    ];
    for (i, a) in hashes.iter().enumerate() {
        for b in &hashes[i + 1..] {
            assert_ne!(a, b);
        }
    }
}

#[test]
fn hashes_cover_whole_contents_even_when_not_copied() {
    let long = "x".repeat(10_000);
    assert_eq!(
        hash_of(|e| e.str(&long)),
        hash_of(|e| e.str_limited(&long, 16))
    );
    let mut other = long.clone();
    other.push('y');
    assert_ne!(
        hash_of(|e| e.str_limited(&long, 16)),
        hash_of(|e| e.str_limited(&other, 16))
    );
    let data = vec![7u8; 5000];
    assert_eq!(
        hash_of(|e| e.bytes(BytesKind::Bytes, &data)),
        hash_of(|e| e.bytes_hashed(BytesKind::Bytes, 5000, content_hash(&data)))
    );
    let array = |content| {
        hash_of(|e| {
            e.array(&ArrayInfo {
                type_name: "numpy.ndarray",
                dtype: "uint8",
                shape: &[5000],
                content,
            });
        })
    };
    assert_eq!(
        array(ArrayContent::Data(&data)),
        array(ArrayContent::Hashed {
            nbytes: 5000,
            hash: content_hash(&data)
        })
    );
}

#[test]
fn big_ints_have_one_encoding() {
    assert_eq!(
        snap(|e| e.big_int(false, &[0, 0, 5])).0,
        snap(|e| e.int(5)).0
    );
    assert_eq!(
        snap(|e| e.big_int(true, &[0x80, 0, 0, 0, 0, 0, 0, 0])).0,
        snap(|e| e.int(i64::MIN)).0
    );
    let (bytes, summary) = snap(|e| e.big_int(false, &[0x80, 0, 0, 0, 0, 0, 0, 0]));
    assert_eq!(
        round_trip(&bytes, summary),
        Value::BigInt {
            negative: false,
            magnitude: vec![0x80, 0, 0, 0, 0, 0, 0, 0]
        }
    );
    assert_eq!(render_short(&bytes, 80), "9223372036854775808");
    // A small int written as BIG_INT is not canonical.
    assert!(decode(&[VERSION, 0x04, 0, 1, 5]).is_err());
}

#[test]
fn str_is_cut_at_a_character_boundary() {
    let (bytes, summary) = snap(|e| e.str_limited("aé€😀z", 4));
    let value = round_trip(&bytes, summary);
    assert_eq!(
        value,
        Value::Str(Text::Truncated {
            prefix: "aé".into(),
            omitted_chars: 3,
            hash: content_hash("aé€😀z".as_bytes()),
        })
    );
    assert_eq!(render_short(&bytes, 80), "'aé'…+3");
}

#[test]
fn decode_rejects_malformed_snapshots() {
    let (good, _) = snap(|e| e.int(1));
    assert_eq!(decode(&[]), Err(SnapshotError::UnexpectedEnd));
    assert_eq!(decode(&[9, 0]), Err(SnapshotError::BadVersion(9)));
    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(decode(&trailing), Err(SnapshotError::TrailingBytes(1)));
    assert!(matches!(
        decode(&[VERSION, 0x77]),
        Err(SnapshotError::BadTag { tag: 0x77, .. })
    ));
    // ARGS only at the root.
    assert!(decode(&[VERSION, 0x10, 0x17, 0xff, 0, 0xff, 0]).is_err());
    // A dict whose last key has no value.
    assert!(decode(&[VERSION, 0x14, 0x00, 0xff, 0]).is_err());
    let mut deep = vec![VERSION];
    deep.extend(vec![0x10; MAX_NESTING + 1]);
    deep.push(0);
    deep.extend([0xff, 0].repeat(MAX_NESTING + 1));
    assert_eq!(decode(&deep), Err(SnapshotError::TooDeep));
    // A length far beyond the input allocates nothing and fails.
    assert_eq!(
        decode(&[VERSION, 0x07, 0xff, 0xff, 0xff, 0xff, 0x0f]),
        Err(SnapshotError::UnexpectedEnd)
    );
}

fn ints(enc: &mut Encoder<'_>, n: i64, omitted: u64) {
    enc.begin_list();
    for i in 1..=n {
        enc.int(i);
    }
    enc.end(omitted);
}

#[test]
fn short_rendering_is_python_like() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (snap(|e| ints(e, 2, 998)).0, "[1, 2, …+998]"),
        (
            snap(|e| {
                e.begin_dict();
                e.str("a");
                e.int(1);
                e.end(0);
            })
            .0,
            "{'a': 1}",
        ),
        (snap(|e| point(e, 1, 2, true)).0, "Point(x=1, y=2)"),
        (
            snap(|e| {
                e.array(&ArrayInfo {
                    type_name: "numpy.ndarray",
                    dtype: "float64",
                    shape: &[1000, 3],
                    content: ArrayContent::Hashed {
                        nbytes: 24000,
                        hash: 0xabc,
                    },
                });
            })
            .0,
            "ndarray(float64, shape=(1000, 3), xxh3=0000000000000abc)",
        ),
        (
            snap(|e| e.unrepresentable("Foo")).0,
            "<unrepresentable Foo>",
        ),
        (
            snap(|e| e.opaque("socket.socket")).0,
            "<socket.socket object>",
        ),
        (
            snap(|e| {
                e.begin_tuple();
                e.float(1.0);
                e.end(0);
            })
            .0,
            "(1.0,)",
        ),
        (
            snap(|e| {
                e.begin_set();
                e.end(0);
            })
            .0,
            "set()",
        ),
        (
            snap(|e| e.bytes_hashed(BytesKind::Bytes, 2 << 20, 1)).0,
            "<bytes len=2097152 xxh3=0000000000000001>",
        ),
        (
            snap(|e| e.reference(RefKind::Class, "builtins", "int")).0,
            "<class 'int'>",
        ),
        (snap(|e| e.depth_limit("list")).0, "[…]"),
        (
            snap(|e| {
                e.begin_exception("builtins", "KeyError", Some("'k'"), 10);
                e.str("k");
                e.end(0);
            })
            .0,
            "KeyError('k')",
        ),
        (
            snap(|e| {
                e.begin_object(ObjectKind::Subclass, "m", "Counter", true);
                e.begin_dict();
                e.str("a");
                e.int(2);
                e.end(0);
                e.end(0);
            })
            .0,
            "Counter({'a': 2})",
        ),
        (b"\x01\x99".to_vec(), "<corrupt snapshot>"),
    ];
    for (bytes, want) in cases {
        assert_eq!(render_short(&bytes, 200), want);
    }
}

#[test]
fn short_rendering_respects_the_width() {
    let (bytes, _) = snap(|e| ints(e, 100, 0));
    for width in [0, 1, 2, 5, 17, 40] {
        let line = render_short(&bytes, width);
        assert_eq!(line.chars().count(), width, "{line}");
        if width > 0 {
            assert!(line.ends_with('…'));
        }
    }
    assert_eq!(render_short(&bytes, 6), "[1, 2…");
    let (s, _) = snap(|e| e.str(&"é".repeat(1000)));
    assert_eq!(render_short(&s, 5), "'ééé…");
}

fn args_xy() -> Vec<u8> {
    snap(|e| {
        e.begin_args();
        e.field("x");
        e.int(1);
        e.field("y");
        e.str("a");
        e.field("*rest");
        e.begin_tuple();
        e.end(0);
        e.end(0);
    })
    .0
}

#[test]
fn arguments_render_as_a_parameter_list() {
    let bytes = args_xy();
    assert_eq!(render_args_short(&bytes, 80), "x=1, y='a', *rest=()");
    assert_eq!(render_short(&bytes, 80), "(x=1, y='a', *rest=())");
    assert_eq!(render_args_short(&bytes, 8), "x=1, y=…");
    assert_eq!(render_args_short(&snap(|e| e.int(3)).0, 80), "3");
    assert_eq!(render_args_short(b"", 80), "<corrupt snapshot>");
}

#[test]
fn pretty_rendering_has_one_element_per_line() {
    let (bytes, _) = snap(|e| {
        e.begin_dict();
        e.str("b");
        ints(e, 2, 3);
        e.str("s");
        e.begin_set();
        e.str("z");
        e.str("a");
        e.end(0);
        e.str("p");
        point(e, 1, 2, true);
        e.str("e");
        e.begin_tuple();
        e.end(0);
        e.end(0);
    });
    let want = "\
{
    'b': [
        1,
        2,
        …+3
    ],
    's': {
        'a',
        'z',
    },
    'p': Point(
        x=1,
        y=2,
    ),
    'e': (),
}
";
    assert_eq!(render_pretty(&decode(&bytes).unwrap()), want);
    assert_eq!(
        render_pretty(&decode(&args_xy()).unwrap()),
        "x=1\ny='a'\n*rest=()\n"
    );
}

/// Values the decoder accepts, for property tests.
fn arb_value() -> impl Strategy<Value = Value> {
    let text = prop_oneof![
        ".{0,12}".prop_map(Text::Full),
        (".{0,6}", any::<u64>(), any::<u64>()).prop_map(|(prefix, omitted_chars, hash)| {
            Text::Truncated {
                prefix,
                omitted_chars,
                hash,
            }
        }),
    ];
    let kind = prop_oneof![
        Just(BytesKind::Bytes),
        Just(BytesKind::ByteArray),
        Just(BytesKind::MemoryView)
    ];
    let leaf = prop_oneof![
        Just(Value::None),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        (
            any::<bool>(),
            1u8..,
            proptest::collection::vec(any::<u8>(), 8..20)
        )
            .prop_map(|(negative, first, mut rest)| {
                rest.insert(0, first);
                Value::BigInt {
                    negative,
                    magnitude: rest,
                }
            }),
        any::<f64>().prop_map(Value::Float),
        (any::<f64>(), any::<f64>()).prop_map(|(re, im)| Value::Complex { re, im }),
        text.clone().prop_map(Value::Str),
        (kind.clone(), proptest::collection::vec(any::<u8>(), 0..16)).prop_map(|(kind, data)| {
            Value::Bytes {
                kind,
                blob: Blob::Data(data),
            }
        }),
        (kind, any::<u64>(), any::<u64>()).prop_map(|(kind, len, hash)| Value::Bytes {
            kind,
            blob: Blob::Hashed { len, hash }
        }),
        (
            "[a-z.]{0,8}",
            "[a-z0-9]{0,6}",
            proptest::collection::vec(0u64..5, 0..3),
            any::<u64>()
        )
            .prop_map(|(type_name, dtype, shape, hash)| Value::Array(Array {
                type_name,
                dtype,
                shape,
                data: ArrayData::Hashed { nbytes: 8, hash },
            })),
        (0u8..6, "[a-z]{0,5}", "[a-z.<>]{0,8}").prop_map(|(k, module, qualname)| Value::Ref {
            kind: RefKind::from_byte(k).unwrap(),
            module,
            qualname
        }),
        ("[a-z]{0,5}", text).prop_map(|(type_name, text)| Value::Repr { type_name, text }),
        "[a-z]{0,5}".prop_map(|type_name| Value::Unrepresentable { type_name }),
        "[a-z]{0,5}".prop_map(|type_name| Value::Opaque { type_name }),
        "[a-z]{0,5}".prop_map(|type_name| Value::DepthLimit { type_name }),
        any::<u64>().prop_map(|levels| Value::Cycle { levels }),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let seq = (proptest::collection::vec(inner.clone(), 0..5), 0u64..3)
            .prop_map(|(items, omitted)| Seq { items, omitted });
        let fields = (
            proptest::collection::vec(("[a-z]{0,4}", inner.clone()), 0..4),
            0u64..2,
        )
            .prop_map(|(entries, omitted)| Fields { entries, omitted });
        prop_oneof![
            seq.clone().prop_map(Value::List),
            seq.clone().prop_map(Value::Tuple),
            seq.clone().prop_map(Value::Set),
            seq.clone().prop_map(Value::FrozenSet),
            (
                proptest::collection::vec((inner.clone(), inner.clone()), 0..4),
                0u64..2
            )
                .prop_map(|(entries, omitted)| Value::Dict(Map { entries, omitted })),
            (0u8..5, any::<bool>(), inner, fields).prop_map(|(k, complete, base, fields)| {
                let kind = ObjectKind::from_byte(k).unwrap();
                Value::Object(Object {
                    kind,
                    module: "m".into(),
                    qualname: "C".into(),
                    complete,
                    base: (kind == ObjectKind::Subclass).then(|| Box::new(base)),
                    fields,
                })
            }),
            (proptest::option::of(".{0,5}"), seq).prop_map(|(message, args)| {
                Value::Exception(Exception {
                    module: "builtins".into(),
                    qualname: "E".into(),
                    message: message.map(Text::Full),
                    args,
                })
            }),
        ]
    })
}

/// What the one-line renderers give, the long way: decode the whole tree, then render it.
fn short_from_tree(bytes: &[u8], max_chars: usize, bare_args: bool) -> String {
    match decode(bytes) {
        Ok(Value::Args(fields)) if bare_args => {
            let mut line = render::Line::new(max_chars);
            line.named_entries(&fields);
            line.finish()
        }
        Ok(value) => render_value_short(&value, max_chars),
        Err(_) => render::cut(render::CORRUPT, max_chars),
    }
}

/// The renderers that read the bytes give what rendering the decoded tree gives, at every
/// width (cut in the same place, with the same mark), also for bytes that do not decode.
fn same_as_from_tree(bytes: &[u8]) {
    for width in [0, 1, 2, 7, 20, 60, 120, 400] {
        assert_eq!(
            render_short(bytes, width),
            short_from_tree(bytes, width, false),
            "render_short at {width} of {bytes:02x?}"
        );
        assert_eq!(
            render_args_short(bytes, width),
            short_from_tree(bytes, width, true),
            "render_args_short at {width} of {bytes:02x?}"
        );
    }
}

/// A value, or arguments whose values are values.
fn arb_snapshot() -> impl Strategy<Value = Value> {
    prop_oneof![
        arb_value(),
        (
            proptest::collection::vec(("[a-z*]{0,6}", arb_value()), 0..5),
            0u64..2
        )
            .prop_map(|(entries, omitted)| Value::Args(Fields { entries, omitted })),
    ]
}

#[test]
fn budgeted_rendering_of_big_arguments_stops_at_the_budget_with_the_same_text() {
    // Like `benches/show_stream.py`'s calls: a long string and a list of 16 long strings.
    let (bytes, _) = snap(|enc| {
        enc.begin_args();
        enc.field("i");
        enc.int(123_456);
        enc.field("text");
        enc.str(&format!("item-{}", "123456".repeat(60)));
        enc.field("parts");
        enc.begin_list();
        for k in 0..16 {
            enc.str(&format!("{k}").repeat(9));
        }
        enc.end(0);
        enc.end(0);
    });
    assert_eq!(
        render_args_short(&bytes, 40),
        "i=123456, text='item-123456123456123456…"
    );
    assert_eq!(
        render_short(&bytes, 1000),
        short_from_tree(&bytes, 1000, false)
    );
    same_as_from_tree(&bytes);
    // Bytes that stop decoding past the budget still render as corrupt, as before.
    let mut broken = bytes.clone();
    let last = broken.len() - 3;
    broken[last] = 0xfd;
    assert_eq!(render_args_short(&broken, 40), "<corrupt snapshot>");
    same_as_from_tree(&broken);
    for n in 0..bytes.len() {
        same_as_from_tree(&bytes[..n]);
    }
}

/// Decoding and rendering any bytes must not panic, and the renderers that read the bytes
/// agree with the tree's; whatever decodes re-encodes to the same bytes (the encoding is
/// canonical).
fn check_bytes(bytes: &[u8]) {
    let short = render_short(bytes, 60);
    assert!(short.chars().count() <= 60);
    same_as_from_tree(bytes);
    if let Ok(value) = decode(bytes) {
        let _ = render_pretty(&value);
        let mut again = Vec::new();
        value.encode(&mut again);
        assert_eq!(again, bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn values_round_trip(value in arb_value()) {
        let mut bytes = Vec::new();
        let summary = value.encode(&mut bytes);
        let decoded = decode(&bytes).unwrap();
        let mut again = Vec::new();
        prop_assert_eq!(decoded.encode(&mut again), summary);
        prop_assert_eq!(&again, &bytes);
        prop_assert_eq!(decoded.is_faithful(), summary.faithful);
        let _ = render_pretty(&decoded);
        prop_assert!(render_short(&bytes, 40).chars().count() <= 40);
    }

    #[test]
    fn budgeted_rendering_is_the_rendering_of_the_tree(value in arb_snapshot()) {
        let mut bytes = Vec::new();
        value.encode(&mut bytes);
        same_as_from_tree(&bytes);
    }

    #[test]
    fn random_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        check_bytes(&bytes);
        if !bytes.is_empty() {
            bytes[0] = VERSION;
            check_bytes(&bytes);
        }
    }

    #[test]
    fn mutated_encodings_never_panic(
        value in arb_snapshot(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
    ) {
        let mut bytes = Vec::new();
        value.encode(&mut bytes);
        for (at, byte, op) in edits {
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ => bytes.truncate(i.max(1)),
            }
            check_bytes(&bytes);
        }
    }
}
