//! The call cache's per-thread stack of project calls, each with the set of code entries it
//! reached: a bitset over entries, merged into the caller's when a call ends, so a call's
//! cache entry can be dropped when any code it ran changes.

/// A thread's calls in progress, each carrying a `F` (the monitor's start time, arguments...).
pub struct ReachedStack<F> {
    /// (code entry, payload) of each call, innermost last.
    frames: Vec<(usize, F)>,
    /// `reached[d]`: the code entries reached by the call at depth `d` (bit per entry).
    reached: Vec<Vec<u64>>,
}

impl<F> Default for ReachedStack<F> {
    fn default() -> Self {
        Self {
            frames: Vec::new(),
            reached: Vec::new(),
        }
    }
}

impl<F> ReachedStack<F> {
    /// A call of `code` starts.
    #[inline(always)]
    #[allow(clippy::inline_always)] // every call of the program runs it, in its callback
    pub fn push(&mut self, code: usize, frame: F) {
        let depth = self.frames.len();
        if self.reached.len() <= depth {
            self.reached.push(Vec::new());
        }
        // One or two words in most programs: stores, not a call to `memset`.
        match &mut self.reached[depth][..] {
            [] => {}
            [w] => *w = 0,
            words => words.fill(0),
        }
        self.frames.push((code, frame));
    }

    /// Ends the innermost call of `code` (and any calls above it that never reported their
    /// end); returns it with the code entries it reached, itself included (as bits, see
    /// [`bit_indices`]). `None` when no call of `code` is on the stack.
    #[inline(always)]
    #[allow(clippy::inline_always)] // every call of the program runs it, in its callback
    pub fn pop(&mut self, code: usize) -> Option<(F, &[u64])> {
        let at = self.frames.iter().rposition(|f| f.0 == code)?;
        while self.frames.len() > at + 1 {
            let depth = self.frames.len() - 1;
            if let Some((lost, _)) = self.frames.pop() {
                set_bit(&mut self.reached[depth], lost);
            }
            self.merge_into_parent(depth);
        }
        let (_, frame) = self.frames.pop()?;
        let depth = self.frames.len();
        set_bit(&mut self.reached[depth], code);
        self.merge_into_parent(depth);
        Some((frame, &self.reached[depth]))
    }

    #[inline]
    fn merge_into_parent(&mut self, depth: usize) {
        if depth == 0 {
            return;
        }
        let (parents, children) = self.reached.split_at_mut(depth);
        let (parent, child) = (&mut parents[depth - 1], &children[0]);
        // One word each in most programs (up to 64 code entries).
        if let ([p], [c]) = (&mut parent[..], &child[..]) {
            *p |= c;
            return;
        }
        if parent.len() < child.len() {
            parent.resize(child.len(), 0);
        }
        for (p, c) in parent.iter_mut().zip(child) {
            *p |= c;
        }
    }
}

#[inline]
fn set_bit(bits: &mut Vec<u64>, i: usize) {
    let word = i / 64;
    if bits.len() <= word {
        bits.resize(word + 1, 0);
    }
    bits[word] |= 1 << (i % 64);
}

/// The indices of the set bits.
pub fn bit_indices(bits: &[u64]) -> Vec<usize> {
    let mut out = Vec::new();
    for (w, &word) in bits.iter().enumerate() {
        let mut rest = word;
        while rest != 0 {
            let bit = rest.trailing_zeros() as usize;
            out.push(w * 64 + bit);
            rest &= rest - 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reached_sets_merge_into_callers() {
        let mut stack = ReachedStack::default();
        stack.push(0, ());
        stack.push(70, ());
        stack.push(3, ());
        let ((), reached) = stack.pop(3).unwrap();
        assert_eq!(bit_indices(reached), [3]);
        let ((), reached) = stack.pop(70).unwrap();
        assert_eq!(bit_indices(reached), [3, 70]);
        stack.push(5, ());
        // A call whose end was never reported is closed with the one below it.
        stack.push(9, ());
        let ((), reached) = stack.pop(5).unwrap();
        assert_eq!(bit_indices(reached), [5, 9]);
        let ((), reached) = stack.pop(0).unwrap();
        assert_eq!(bit_indices(reached), [0, 3, 5, 9, 70]);
        assert!(stack.pop(0).is_none());
        // A reused depth starts empty.
        stack.push(1, ());
        assert_eq!(bit_indices(stack.pop(1).unwrap().1), [1]);
    }

    #[test]
    fn payloads_come_back_with_their_calls() {
        let mut stack = ReachedStack::default();
        stack.push(2, "outer");
        stack.push(4, "inner");
        assert_eq!(stack.pop(4).map(|(f, _)| f), Some("inner"));
        assert_eq!(stack.pop(2).map(|(f, _)| f), Some("outer"));
    }
}
