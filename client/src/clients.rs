//! Which HTTP clients leakprobe can drive (`VariantName`) and how each is built for a run's
//! workers. The one place that knows every variant; the run loop only sees `dyn Variant`.

use crate::raw::conn::RawClient;
use crate::ureq_client::UreqClient;
use crate::variant::{Variant, VariantConfig};

/// Which client a run drives.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum VariantName {
    Ureq,
    Raw,
}

/// Builds one client per worker. Whatever the workers must share (ureq's `Agent` and its
/// pool) is created once, when the builder is made.
pub type Builder = Box<dyn Fn() -> Box<dyn Variant> + Send>;

impl VariantName {
    /// Every variant, in the order `compare` runs them by default.
    pub const ALL: [VariantName; 2] = [VariantName::Ureq, VariantName::Raw];

    /// The subcommand and file-name form (`ureq`, `raw`).
    pub fn as_str(self) -> &'static str {
        match self {
            VariantName::Ureq => "ureq",
            VariantName::Raw => "raw",
        }
    }

    /// The builder of this variant's per-worker clients. ureq: one `Agent` (one pool) shared by
    /// every worker, as an application would share it; raw: one connection per worker.
    pub fn builder(self, cfg: &VariantConfig) -> Builder {
        match self {
            VariantName::Ureq => {
                let shared = UreqClient::new(cfg);
                Box::new(move || Box::new(shared.clone()))
            }
            VariantName::Raw => {
                let cfg = cfg.clone();
                Box::new(move || Box::new(RawClient::new(cfg.clone())))
            }
        }
    }
}
