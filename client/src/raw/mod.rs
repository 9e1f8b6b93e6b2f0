//! The hand-rolled HTTP/1.1 client: the control in the experiment. `wire` is the pure
//! response parser (no sockets); `conn` is the thin connection layer over `std::net::TcpStream`.

pub mod conn;
pub mod wire;
