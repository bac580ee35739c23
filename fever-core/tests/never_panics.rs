//! Every save goes through decoding, indexing and planning, whatever its content: random bytes
//! and random mutations of real Python must never make them panic.

use fever_core::{decode_source, plan_reload, Index};

const SEEDS: [&str; 3] = [
    "import os\n\nX = 1\n\n@deco(a=[1, 2])\ndef f(a, b=2):\n    s = f'{a!r:>{b}} {{x}} {\"k\"}'\n    return s\n\nclass C(Base):\n    '''Doc\n    string.'''\n    attr: int = 3\n    def m(self):\n        return super().m()  # comment\n\nif __name__ == '__main__':\n    f(1)\n",
    "async def g():\n    async with x as y:\n        await y\n\ttry:\n        pass\n    except* E:\n        raise\nmatch v:\n    case [1, *rest]:\n        pass\n",
    "x = (1 +\n     2) \\\n    + 3\ns = r'\\' + b\"\\x00\" + '''\n(\n'''\nclass E(Exception): pass\ndef h(): return [i for i in range(3)]\n",
];

/// A small deterministic generator (xorshift64*), so failures are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }
}

fn check(old: &str, bytes: &[u8]) {
    let text = decode_source(bytes).unwrap_or_else(|_| String::from_utf8_lossy(bytes).into_owned());
    let old_index = Index::build(old);
    let new_index = Index::build(&text);
    let plan = plan_reload(&old_index, &new_index);
    for change in &plan.changes {
        let _ = format!("{change:?}");
    }
    for item in &new_index.items {
        assert!(item.span.end <= text.len() && item.start_line <= item.end_line);
        let _ = item.text(&text);
    }
}

#[test]
fn random_mutations_of_python_source() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let alphabet = b"()[]{}'\"\\#:=@\n\r\t fdefclassif\xc3\xa9\xff\x00";
    for case in 0..20_000 {
        let seed = SEEDS[case % SEEDS.len()];
        let mut bytes = seed.as_bytes().to_vec();
        for _ in 0..=rng.below(6) {
            let at = rng.below(bytes.len() + 1);
            match rng.below(3) {
                0 if at < bytes.len() => {
                    bytes.remove(at);
                }
                1 if at < bytes.len() => bytes[at] = alphabet[rng.below(alphabet.len())],
                _ => bytes.insert(at, alphabet[rng.below(alphabet.len())]),
            }
        }
        check(seed, &bytes);
    }
}

#[test]
fn random_bytes() {
    let mut rng = Rng(42);
    for _ in 0..5_000 {
        let len = rng.below(300);
        let bytes: Vec<u8> = (0..len)
            .map(|_| u8::try_from(rng.below(256)).unwrap())
            .collect();
        check(SEEDS[0], &bytes);
    }
}
