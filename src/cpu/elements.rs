//! A CPU tensor's elements: a buffer of its own, or a window on a data set's rows that a batch reads
//! in place.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

/// A tensor's elements, row-major. Evaluation's batches, consecutive samples in the set's order, are
/// [`Elements::Window`]s on the set's floats instead of copies of them. Writing to a window first
/// copies it into a buffer of its own, so no tensor ever changes a set.
#[derive(Clone)]
pub(super) enum Elements {
    /// A buffer of the tensor's own.
    Owned(Vec<f32>),
    /// `len` values of `set`, from `start`.
    Window {
        set: Arc<[f32]>,
        start: usize,
        len: usize,
    },
}

impl Deref for Elements {
    type Target = [f32];

    #[inline]
    fn deref(&self) -> &[f32] {
        match self {
            Elements::Owned(v) => v,
            Elements::Window { set, start, len } => &set[*start..*start + *len],
        }
    }
}

impl DerefMut for Elements {
    #[inline]
    fn deref_mut(&mut self) -> &mut [f32] {
        if let Elements::Window { set, start, len } = self {
            *self = Elements::Owned(set[*start..*start + *len].to_vec());
        }
        match self {
            Elements::Owned(v) => v,
            Elements::Window { .. } => unreachable!("a window was just made a buffer of its own"),
        }
    }
}

impl<'a> IntoIterator for &'a Elements {
    type Item = &'a f32;
    type IntoIter = std::slice::Iter<'a, f32>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a> IntoIterator for &'a mut Elements {
    type Item = &'a mut f32;
    type IntoIter = std::slice::IterMut<'a, f32>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter_mut()
    }
}

/// The values alone (a window's, not its whole set's).
impl std::fmt::Debug for Elements {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for Elements {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writing_to_a_window_copies_it_and_leaves_the_set_alone() {
        let set: Arc<[f32]> = Arc::from(vec![1.0, 2.0, 3.0, 4.0, 5.0]);
        let mut window = Elements::Window {
            set: Arc::clone(&set),
            start: 1,
            len: 3,
        };
        assert_eq!(&*window, &[2.0, 3.0, 4.0]);
        window[0] = 9.0;
        assert_eq!(&*window, &[9.0, 3.0, 4.0]);
        assert!(matches!(window, Elements::Owned(_)));
        assert_eq!(&*set, &[1.0, 2.0, 3.0, 4.0, 5.0]);
    }
}
