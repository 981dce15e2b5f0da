//! Device configurations, one Virtualization class family per module, and the
//! runtime device handles a running [`VirtualMachine`](crate::VirtualMachine) hands out.

mod audio;
mod console;
mod directory_sharing;
mod entropy;
mod graphics;
mod graphics_display;
mod keyboard;
mod mac_address;
mod mac_devices;
mod memory_balloon;
mod network;
mod pointing;
mod serial;
mod socket;
mod spice_agent;
mod storage;
mod usb;
mod vmnet;
mod vmnet_error;

pub use audio::*;
pub use console::*;
pub use directory_sharing::*;
pub use entropy::*;
pub use graphics::*;
pub use graphics_display::*;
pub use keyboard::*;
pub use mac_address::*;
pub use mac_devices::*;
pub use memory_balloon::*;
pub use network::*;
pub use pointing::*;
pub use serial::*;
pub use socket::*;
pub use spice_agent::*;
pub use storage::*;
pub use usb::*;
pub use vmnet::*;
pub use vmnet_error::*;
