//! The seed article's facts that both test worlds (moto's in `common`, the
//! in-memory one in `memory_world`) are built from. Shared by both test crates.

/// Tokyo, where the seed article's appliance runs.
pub const REGION: &str = "ap-northeast-1";
/// The VPN clients' range, routed through the appliance.
pub const VPN_CIDR: &str = "10.242.2.0/24";
