//! svshm channel transports (stream, messages, zero-copy). Placeholder until
//! svshm-channel builds.

use super::{Kind, Rx, Tx, Wait};
use anyhow::{Result, bail};

/// Opens the sending end of an svshm channel.
pub fn open_tx(
    kind: Kind,
    _name: &str,
    _capacity: usize,
    _max_message: usize,
    _wait: Wait,
) -> Result<Box<dyn Tx>> {
    bail!("{}: svshm-channel is not integrated yet", kind.name())
}

/// Opens the receiving end of an svshm channel.
pub fn open_rx(
    kind: Kind,
    _name: &str,
    _capacity: usize,
    _max_message: usize,
    _wait: Wait,
) -> Result<Box<dyn Rx>> {
    bail!("{}: svshm-channel is not integrated yet", kind.name())
}
