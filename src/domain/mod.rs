//! What the gateway's records, prices and keys are: the types the server keeps and the console
//! shows, compiled for both.

mod keys;
mod price;
mod record;

pub use self::keys::{BudgetPeriod, CreatedKey, KeyInfo, KeySettings};
pub use self::price::{ModelPrice, cost_usd};
pub use self::record::{OTHER_MODEL, RequestRecord};
