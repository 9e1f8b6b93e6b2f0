//! Keep-alive connection over TcpStream (placeholder until the raw client lands: same API).

use crate::error::{ErrorKind, RequestError};
use crate::variant::{Outcome, Variant, VariantConfig};

/// Placeholder with the final API.
#[derive(Debug)]
pub struct RawClient {
    _cfg: VariantConfig,
}

impl RawClient {
    pub fn new(cfg: VariantConfig) -> RawClient {
        RawClient { _cfg: cfg }
    }
}

impl Variant for RawClient {
    fn get(&mut self, _url: &str) -> Result<Outcome, RequestError> {
        Err(RequestError::new(ErrorKind::Other, "raw client not implemented yet"))
    }
}
