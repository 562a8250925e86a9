//! One module per subcommand.

pub mod attach;
pub mod create;
pub mod demo;
pub mod dump;
pub mod ipcs;
pub mod limits;
pub mod lock;
pub mod ls;
pub mod lsipc;
pub mod read;
pub mod rm;
pub mod set;
pub mod stat;
pub mod top;
pub mod usage;
pub mod who;
pub mod write;
