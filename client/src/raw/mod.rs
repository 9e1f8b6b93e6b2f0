//! The hand-rolled HTTP/1.1 client: the control in the experiment. `wire` is the pure wire format
//! (the request bytes, the head parser and the body reader; no sockets); `conn` is the thin
//! connection layer over `std::net::TcpStream` (sockets, deadlines, keep-alive reuse, reconnects).

pub mod conn;
pub mod wire;
