//! Glue to svshm's managed segments (`svshm::managed`): recognising and
//! describing them in `svshm stat`.

use crate::util::{Field, Obj, human_size};
use serde_json::json;
use svshm::managed::{MAGIC, Summary, peek};

/// The managed-segment header of a segment, if it starts with the managed
/// magic: `Some(Ok)` with what it holds, `Some(Err)` if it is one but its
/// header does not validate, `None` if it is not one (or cannot be read by
/// this user). Reading it attaches the segment read-only for a moment, which
/// sets its attach time and last pid.
pub fn inspect(info: &svshm::SegmentInfo) -> Option<Result<Summary, svshm::Error>> {
    if info.size < MAGIC.len() as u64 {
        return None;
    }
    let att = svshm::Segment::from_id(info.id).attach_read_only().ok()?;
    let mut magic = [0u8; MAGIC.len()];
    att.read_at(0, &mut magic).ok()?;
    (magic == MAGIC).then(|| peek(&att))
}

/// One line: state, heap, free space, names, recoveries.
pub fn describe(s: &Summary) -> String {
    let heap = s.heap_end - s.heap_start;
    format!(
        "{}, heap {} with {} free, {} of {} names, {} lock recover{}",
        s.state,
        human_size(heap),
        human_size(s.free_bytes),
        s.entries.len(),
        s.max_names,
        s.recoveries,
        if s.recoveries == 1 { "y" } else { "ies" }
    )
}

/// The named objects, one per line.
pub fn objects(s: &Summary) -> Vec<String> {
    s.entries
        .iter()
        .map(|e| {
            let tag = if e.tag == 0 {
                String::new()
            } else {
                format!(", tag {:#018x}", e.tag)
            };
            format!(
                "{:?}: {} bytes, align {}{tag}, at offset {}",
                e.name,
                e.size,
                e.align,
                e.offset.raw()
            )
        })
        .collect()
}

/// `--json` form: the summary, or `{"error": ...}` for a damaged header.
pub fn summary_obj(r: &Result<Summary, svshm::Error>) -> Obj {
    match r {
        Err(e) => Obj::new([("error", json!(e.to_string()))]),
        Ok(s) => {
            let mut o = Obj::new([
                ("state", json!(s.state)),
                ("total_size", json!(s.total_size)),
                ("heap_size", json!(s.heap_end - s.heap_start)),
                ("free_bytes", json!(s.free_bytes)),
                ("max_names", json!(s.max_names)),
                ("recoveries", json!(s.recoveries)),
            ]);
            o.push(
                "objects",
                Field::Objs(
                    s.entries
                        .iter()
                        .map(|e| {
                            Obj::new([
                                ("name", json!(e.name)),
                                ("offset", json!(e.offset.raw())),
                                ("size", json!(e.size)),
                                ("align", json!(e.align)),
                                ("tag", json!(e.tag)),
                            ])
                        })
                        .collect(),
                ),
            );
            o
        }
    }
}
