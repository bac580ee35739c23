//! Where a code object's parameters sit in its `co_varnames`: positional (positional-only
//! first), keyword-only, `*args`, `**kwargs`, then the other locals. One layout for every reader
//! of parameters (the tracer's argument names, `fever check`'s rebuilt calls).

use std::ops::Range;

/// A code object's parameter counts and kinds (`co_posonlyargcount`, `co_argcount`,
/// `co_kwonlyargcount`, and the `CO_VARARGS` / `CO_VARKEYWORDS` flags).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParameterLayout {
    /// Positional-only parameters (the first of the positional ones).
    pub positional_only: usize,
    /// Positional parameters, positional-only included.
    pub positional: usize,
    /// Keyword-only parameters.
    pub keyword_only: usize,
    /// It has `*args`.
    pub varargs: bool,
    /// It has `**kwargs`.
    pub varkw: bool,
}

impl ParameterLayout {
    /// The indices of the keyword-only parameters.
    pub fn keyword_only(&self) -> Range<usize> {
        self.positional..self.positional + self.keyword_only
    }

    /// The index of `*args`, if there is one.
    pub fn varargs(&self) -> Option<usize> {
        self.varargs.then_some(self.positional + self.keyword_only)
    }

    /// The index of `**kwargs`, if there is one.
    pub fn varkw(&self) -> Option<usize> {
        self.varkw
            .then_some(self.positional + self.keyword_only + usize::from(self.varargs))
    }

    /// The indices of every parameter in signature order: positional, `*args`, keyword-only,
    /// `**kwargs`.
    pub fn signature_order(&self) -> impl Iterator<Item = usize> {
        (0..self.positional)
            .chain(self.varargs())
            .chain(self.keyword_only())
            .chain(self.varkw())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_in_signature_order() {
        // def f(a, b, /, c, *rest, d, e, **options): co_varnames is a b c d e rest options.
        let layout = ParameterLayout {
            positional_only: 2,
            positional: 3,
            keyword_only: 2,
            varargs: true,
            varkw: true,
        };
        assert_eq!(layout.varargs(), Some(5));
        assert_eq!(layout.varkw(), Some(6));
        assert_eq!(layout.keyword_only(), 3..5);
        assert_eq!(
            layout.signature_order().collect::<Vec<_>>(),
            [0, 1, 2, 5, 3, 4, 6]
        );
        // def g(a, **options): no *args, so **kwargs comes right after the positional ones.
        let layout = ParameterLayout {
            positional: 1,
            varkw: true,
            ..ParameterLayout::default()
        };
        assert_eq!((layout.varargs(), layout.varkw()), (None, Some(1)));
        assert_eq!(layout.signature_order().collect::<Vec<_>>(), [0, 1]);
    }
}
