//! The ringdns command: `ringdns [--conf FILE]` serves; `ringdns check --conf FILE` validates.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use ringdns::config::{self, LoadOptions};
use ringdns::control::{self, DriverChoice, RunOptions, data::DataSet};
use ringdns::net::conns::ConnLimits;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "ringdns",
    version,
    about = "DNS edge server: authoritative zones over UDP and TCP, configured by a Corefile"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    common: Common,
    /// Shard threads (default: one per CPU).
    #[arg(long, global = true)]
    shards: Option<usize>,
    /// I/O driver of the shards.
    #[arg(long, value_enum, default_value_t = DriverArg::Auto, global = true)]
    driver: DriverArg,
    /// Do not pin shards to CPUs.
    #[arg(long, global = true)]
    no_pin: bool,
    /// Default log level (RUST_LOG overrides it).
    #[arg(long, default_value = "info", global = true)]
    log_level: String,
    /// Open TCP connections allowed per shard.
    #[arg(long, default_value_t = ConnLimits::default().per_shard, global = true)]
    tcp_conns_per_shard: usize,
    /// Open TCP connections allowed per client /24 (IPv4) or /56 (IPv6), per shard.
    #[arg(long, default_value_t = ConnLimits::default().per_prefix, global = true)]
    tcp_conns_per_prefix: usize,
    /// TLS handshakes (DoT and DoH) in progress allowed per shard.
    #[arg(long, default_value_t = ConnLimits::default().handshakes_per_shard, global = true)]
    tls_handshakes_per_shard: usize,
    /// TLS handshakes in progress allowed per client /24 (IPv4) or /56 (IPv6), per shard.
    #[arg(long, default_value_t = ConnLimits::default().handshakes_per_prefix, global = true)]
    tls_handshakes_per_prefix: usize,
}

#[derive(clap::Args, Debug)]
struct Common {
    /// The Corefile (CoreDNS: -conf).
    #[arg(long, default_value = "Corefile", global = true)]
    conf: PathBuf,
    /// Default port of server blocks without one (CoreDNS: -dns.port).
    #[arg(long = "dns.port", default_value_t = 53, global = true)]
    dns_port: u16,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Validate the Corefile and the data it names, and print what would be served.
    Check,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum DriverArg {
    Auto,
    IoUring,
    Legacy,
}

/// CoreDNS' flags are written with one dash (`-conf`, `-dns.port`); accept both spellings.
fn coredns_flags(args: impl Iterator<Item = String>) -> Vec<String> {
    args.map(|a| match a.as_str() {
        "-conf" => "--conf".into(),
        "-dns.port" => "--dns.port".into(),
        _ if a.starts_with("-conf=") || a.starts_with("-dns.port=") => format!("-{a}"),
        _ => a,
    })
    .collect()
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(coredns_flags(std::env::args()));
    let _guard = ringdns::telemetry::init(&cli.log_level);
    let load = LoadOptions {
        dns_port: cli.common.dns_port,
    };
    match cli.command {
        Some(Cmd::Check) => check(&cli.common.conf, load),
        None => {
            ringdns::shard::exit_on_panic();
            let opts = RunOptions {
                conf: cli.common.conf,
                shards: cli
                    .shards
                    .filter(|n| *n > 0)
                    .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)),
                driver: match cli.driver {
                    DriverArg::Auto => DriverChoice::Auto,
                    DriverArg::IoUring => DriverChoice::IoUring,
                    DriverArg::Legacy => DriverChoice::Legacy,
                },
                pin: !cli.no_pin,
                load,
                conn_limits: ConnLimits {
                    per_shard: cli.tcp_conns_per_shard.max(1),
                    per_prefix: cli.tcp_conns_per_prefix.max(1),
                    handshakes_per_shard: cli.tls_handshakes_per_shard.max(1),
                    handshakes_per_prefix: cli.tls_handshakes_per_prefix.max(1),
                    ..ConnLimits::default()
                },
            };
            match control::run(opts) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{}", chain(&e));
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn check(conf: &std::path::Path, load: LoadOptions) -> ExitCode {
    let cfg = match config::load(conf, load) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}", chain(&e));
            return ExitCode::FAILURE;
        }
    };
    match DataSet::load(&cfg, None) {
        Ok(data) => {
            print!("{}", control::check::describe(&cfg, &data));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}", chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its sources on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}
