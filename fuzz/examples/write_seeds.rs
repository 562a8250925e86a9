//! Writes the hand-made seed inputs of every target to `DIR/<target>/seed-N`
//! (run.sh feeds them to the fuzzer with the committed corpus).

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("usage: write_seeds DIR"));
    for (target, seeds) in [
        ("header", svshm_fuzz::header::seeds()),
        ("frame", svshm_fuzz::frame::seeds()),
        ("offset", svshm_fuzz::offset::seeds()),
    ] {
        let d = dir.join(target);
        std::fs::create_dir_all(&d).unwrap();
        for (i, s) in seeds.iter().enumerate() {
            std::fs::write(d.join(format!("seed-{i:02}")), s).unwrap();
        }
    }
}
