//! The flags of `taojie chat`, and the client options they make.
use clap::Args;

use crate::chat::ClientOptions;
use crate::flags::in_place;
use crate::secure::flags::ClientKeyArgs;

/// Flags of `taojie chat`.
#[derive(Args, Debug, Clone)]
#[command(
    mut_args(in_place("key", |a| a.help(
        "Join a broker started with --key: the shared key, and the chat encrypted"
    ))),
    mut_args(in_place("identity", |a| a.help(
        "Join a broker that takes identity keys, with yours (`taojie keygen --identity FILE`)"
    ))),
)]
pub struct ChatArgs {
    /// The broker (or, with --udp, the hub) to join, e.g. 127.0.0.1:9006; several brokers
    /// joined by --nats, comma-separated. When the broker is gone the client connects again
    /// (to the next, or to the same one once it is back), under the same name and in the
    /// same room
    #[arg(value_parser = crate::addr::host_port_list)]
    pub addr: String,
    /// Your name in the chat
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// Use the UDP hub instead of the TCP broker
    #[arg(long)]
    pub udp: bool,
    /// Reach the broker through a proxy: socks5://, socks5h:// (names resolved by the proxy)
    /// or http:// (CONNECT), with USER:PASSWORD@ if it asks (never printed)
    #[arg(long, value_name = "URL", conflicts_with = "udp")]
    pub proxy: Option<crate::proxy_wire::ProxyUrl>,
    /// Key flags
    #[command(flatten)]
    pub keys: ClientKeyArgs,
}

impl From<ChatArgs> for ClientOptions {
    fn from(a: ChatArgs) -> Self {
        ClientOptions {
            addr: a.addr,
            name: a.name,
            udp: a.udp,
            keys: a.keys.into(),
            proxy: a.proxy,
        }
    }
}
