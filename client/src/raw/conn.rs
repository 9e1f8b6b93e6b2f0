//! Keep-alive connection over TcpStream (placeholder: being written).
