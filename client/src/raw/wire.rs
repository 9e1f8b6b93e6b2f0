//! Pure HTTP/1.1 response reader (placeholder: being written).
