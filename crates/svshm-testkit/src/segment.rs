//! Segments a test creates: removed however the test ends.

use svshm::Segment;

/// Removes segment `.0` when dropped (IPC_RMID; errors ignored: it may be
/// gone already).
#[derive(Debug)]
pub struct SegmentGuard(pub i32);

impl Drop for SegmentGuard {
    fn drop(&mut self) {
        let _ = Segment::from_id(self.0).remove();
    }
}

/// Whether a segment with id `id` exists (`/proc/sysvipc/shm`).
pub fn segment_exists(id: i32) -> bool {
    svshm::proc_segments()
        .expect("read /proc/sysvipc/shm")
        .iter()
        .any(|s| s.id == id)
}

/// Whether segment `id` no longer exists.
pub fn segment_gone(id: i32) -> bool {
    !segment_exists(id)
}
