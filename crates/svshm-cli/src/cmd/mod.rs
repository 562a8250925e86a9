//! One module per subcommand.

pub mod attach;
pub mod create;
pub mod demo;
pub mod dump;
pub mod ipcmk;
pub mod ipcrm;
pub mod ipcs;
pub mod limits;
pub mod lock;
pub mod ls;
pub mod lsipc;
pub mod read;
pub mod rm;
pub mod service;
pub mod set;
pub mod shell;
pub mod stat;
pub mod top;
pub mod topic;
pub mod usage;
pub mod who;
pub mod write;

/// Writes what a util-linux-style command buffered for stdout (a closed
/// stdout is not an error, as everywhere in svshm).
pub fn write_stdout(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// `svshm ipcrm` and `svshm ipcmk` parse their arguments like the C tools
/// (getopt), not through clap: if the command line is one of them, runs it and
/// returns its exit status. `help` renders a subcommand's `--help`.
pub fn run_util_linux_style(help: &dyn Fn(&str) -> String) -> Option<u8> {
    let mut args = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned());
    let which = args.next()?;
    let rest: Vec<String> = args.collect();
    match which.as_str() {
        "ipcrm" => Some(ipcrm::main(rest, &|| help("ipcrm"))),
        "ipcmk" => Some(ipcmk::main(rest, &|| help("ipcmk"))),
        _ => None,
    }
}
