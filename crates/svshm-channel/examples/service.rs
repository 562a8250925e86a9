//! A service: one server, four client processes (this program re-executed),
//! each calling it a few times. The server answers every request with who
//! called it — the uid and pid the kernel recorded for the client's
//! segments, not anything the client wrote — and serves all connections
//! from one thread with `Select`. One client is killed mid-session; the
//! server hears of it as that connection's event.
//!
//! ```sh
//! cargo run -p svshm-channel --example service
//! ```

use std::time::Duration;
use svshm_channel::{Client, Connection, Endpoint, Error, Options, Select, Server, TryRecvError};

const CLIENTS: usize = 4;
const CALLS: usize = 3;

fn opts() -> Options {
    Options::new().timeout(Some(Duration::from_secs(10)))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 3 && args[1] == "client" {
        return client(&args[2]);
    }
    let name = format!("service-example-{}", std::process::id());
    let mut server = Server::bind(&Endpoint::name(name.as_str()), &opts())?;
    let mut children = Vec::new();
    for _ in 0..CLIENTS {
        children.push(
            std::process::Command::new(std::env::current_exe()?)
                .args(["client", &name])
                .spawn()?,
        );
    }
    let mut conns: Vec<Connection> = Vec::new();
    let (mut accepted, mut ended, mut answered) = (0, 0, 0);
    while ended < CLIENTS {
        let ready = {
            let mut sel = Select::new();
            let accept = sel.accept(&server);
            for c in &conns {
                sel.recv(c.requests());
            }
            let i = sel.select_timeout(Duration::from_secs(10))?;
            (i != accept).then(|| i - 1)
        };
        let Some(i) = ready else {
            if let Some(c) = server.try_accept()? {
                println!("server: connection from {}", c.caller());
                accepted += 1;
                conns.push(c);
                if accepted == CLIENTS {
                    // Every client is in: kill the first one mid-session.
                    let _ = children[0].kill();
                }
            }
            continue;
        };
        let caller = conns[i].caller();
        match conns[i].try_recv() {
            Ok(req) => {
                let answer = format!(
                    "you asked {:?}; you are uid {} pid {}",
                    String::from_utf8_lossy(&req),
                    caller.uid,
                    caller.pid
                );
                conns[i].reply(answer.as_bytes())?;
                answered += 1;
            }
            Err(TryRecvError::Empty) => {}
            Err(TryRecvError::Disconnected) => {
                println!("server: {caller} closed its connection");
                conns.remove(i);
                ended += 1;
            }
            Err(TryRecvError::Failed(e @ (Error::PeerDied { .. } | Error::Aborted { .. }))) => {
                println!("server: {caller} is gone ({e})");
                conns.remove(i);
                ended += 1;
            }
            Err(TryRecvError::Failed(e)) => return Err(e.into()),
        }
    }
    for mut c in children {
        c.wait()?;
    }
    println!("server: {answered} calls answered from {CLIENTS} clients, one thread");
    Ok(())
}

/// A client process: a few calls, a pause between them, then a clean close.
fn client(name: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut c = Client::connect(&Endpoint::name(name), &opts())?;
    for n in 0..CALLS {
        std::thread::sleep(Duration::from_millis(30));
        let answer = c.call(format!("call {n}").as_bytes())?;
        println!(
            "client {}: {}",
            std::process::id(),
            String::from_utf8_lossy(&answer)
        );
    }
    c.close()?;
    Ok(())
}
