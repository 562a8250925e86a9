//! The queries every endpoint answers about its ring: how much is queued,
//! whether it is empty or full, whether the peer is gone.

/// `len`, `is_empty`, `is_full` and `is_peer_closed` over the endpoint's ring
/// side (`prod` or `cons`) and `link`. `$min_free`: the fewest free bytes an
/// operation needs (a byte for a stream, a frame header for messages).
macro_rules! queue_queries {
    ($side:ident, $min_free:expr,
     len: $len_doc:literal, empty: $empty_doc:literal,
     full: $full_doc:literal, closed: $closed_doc:literal) => {
        #[doc = $len_doc]
        ///
        /// A snapshot: the other side may be moving as this returns.
        pub fn len(&self) -> usize {
            self.$side.queued() as usize
        }

        #[doc = $empty_doc]
        pub fn is_empty(&self) -> bool {
            self.len() == 0
        }

        #[doc = $full_doc]
        pub fn is_full(&self) -> bool {
            self.$side.capacity() - self.$side.queued() < $min_free
        }

        #[doc = $closed_doc]
        pub fn is_peer_closed(&self) -> bool {
            self.$side.peer_closed() || self.link.peer_gone()
        }
    };
}
pub(crate) use queue_queries;
