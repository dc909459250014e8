//! A twin of a stack's data plane on this machine: packets, not only configuration.
//!
//! `verify` reasons over route tables, NATs and security groups; on the emulator the function never
//! runs. The twin is built from what `cargo fixedip`'s reader observes in the account (never from
//! the plan): a network namespace per device (the function in each of its subnets, each NAT
//! gateway, each NAT instance), a router applying the route tables, an internet gateway mapping
//! private addresses to Elastic IPs, "the internet" with a what-is-my-IP server, and a namespace
//! per AWS service a gateway endpoint reaches ([`wiring`] has the mapping, with what follows AWS).
//! Then the **real function binary** runs in each of its subnets behind a local Lambda runtime
//! API and answers with the address the internet saw ([`Twin::invoke`]).
//!
//! NAT instances run their **own** setup: the forwarding sysctls and the nftables ruleset their
//! user data writes (`cat > … <<TAG` files), applied inside their namespace with `sysctl -w` and
//! `nft -f` only, since running the script itself would change the host (`sysctl --system`,
//! `systemctl`). Packages the script would install are not installed: the twin has them.
//!
//! Needs root (network namespaces) and iproute2 and nftables (`scripts/twin-tools.sh`); without
//! them [`Twin::build`] fails with what is missing. Namespaces are removed on drop.

mod apply;
mod servers;
pub mod wiring;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fixedip_core::verify::{EgressNetwork, FunctionAttachment};

pub use servers::Outcome;
use wiring::{DeviceKind, Wiring};

/// How long one invocation may take: the example gives up on a fetch after 5 s.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(20);
/// Where AWS services answer (plain HTTP here, on HTTPS's port, so that security group rules for 443
/// apply as they would).
const SERVICE_PORT: u16 = 443;
/// Where the function finds the runtime API, inside its namespace (as on Lambda).
const RUNTIME_API: &str = "127.0.0.1:9001";

/// A built twin; its servers stop and its namespaces are removed when it is dropped.
pub struct Twin {
    wiring: Wiring,
    /// The internet's and the services' servers.
    servers: Vec<tokio::task::JoinHandle<()>>,
    namespaces: apply::Namespaces,
}

impl Drop for Twin {
    fn drop(&mut self) {
        for server in &self.servers {
            server.abort();
        }
    }
}

impl Twin {
    /// Builds the twin of `network` for `function`, and starts its servers on the current tokio
    /// runtime. A NAT instance runs the setup of `nat_user_data` (the user data fixedip launches
    /// it with, or a test's own).
    pub fn build(
        network: &EgressNetwork,
        function: &FunctionAttachment,
        nat_user_data: &str,
    ) -> Result<Twin, String> {
        preflight()?;
        static TWINS: AtomicUsize = AtomicUsize::new(0);
        let prefix = format!(
            "fxt{}-{}-",
            std::process::id(),
            TWINS.fetch_add(1, Ordering::SeqCst)
        );
        let wiring = Wiring::of(network, function);
        let mut namespaces = apply::Namespaces::new(prefix);
        namespaces.build(&wiring)?;
        let mut twin = Twin {
            wiring,
            servers: Vec::new(),
            namespaces,
        };
        if twin.wiring.internet_gateway {
            let internet = twin.namespaces.name("i");
            let listener = servers::listen_in(&internet, SocketAddr::from(([0, 0, 0, 0], 80)))?;
            twin.servers.push(servers::what_is_my_ip(listener));
        }
        for (i, prefix) in twin.wiring.services.values().enumerate() {
            let namespace = twin.namespaces.name(&format!("s{i}"));
            let address = apply::service_address(*prefix);
            let listener =
                servers::listen_in(&namespace, SocketAddr::from((address, SERVICE_PORT)))?;
            twin.servers.push(servers::aws_service(listener));
        }
        for device in &twin.wiring.devices {
            if let DeviceKind::NatInstance {
                source_dest_check, ..
            } = &device.kind
            {
                let namespace = twin.namespaces.name(&device.name);
                run_nat_setup(&namespace, nat_user_data)?;
                if *source_dest_check {
                    // AWS drops what the instance forwards while the check is on.
                    apply::nft(
                        &namespace,
                        "table ip fixedip_check {\n  chain forward {\n    type filter hook forward priority -10; policy drop;\n  }\n}\n",
                    )?;
                }
            }
        }
        Ok(twin)
    }

    /// Where the twin's AWS service `name` (`s3`, `dynamodb`) answers, if a gateway endpoint of
    /// the network's routes reaches it, on HTTPS's port as AWS's endpoints: a probe for
    /// [`Twin::egress_ip`].
    pub fn service_address(&self, name: &str) -> Option<SocketAddrV4> {
        let prefix = self.wiring.services.get(name)?;
        Some(SocketAddrV4::new(
            apply::service_address(*prefix),
            SERVICE_PORT,
        ))
    }

    /// The wiring the twin was built from.
    pub fn wiring(&self) -> &Wiring {
        &self.wiring
    }

    /// Runs `binary` (a Lambda function built for this machine) in the function's namespace of
    /// `subnet_id`, invokes it once with `event`, and returns what it answered.
    /// The function fetches its what-is-my-IP service at `probe` (one of [`Twin::probes`], or a
    /// [`Twin::service_address`]).
    pub async fn invoke(
        &self,
        subnet_id: &str,
        probe: SocketAddrV4,
        binary: &Path,
        event: serde_json::Value,
    ) -> Result<Outcome, String> {
        let device = self
            .wiring
            .function_devices
            .get(subnet_id)
            .ok_or_else(|| format!("the function is not attached to {subnet_id}"))?;
        let namespace = self.namespaces.name(device);
        let (server, outcome) = servers::runtime_api(
            servers::listen_in(&namespace, RUNTIME_API.parse().unwrap())?,
            event,
        );
        let mut function = tokio::process::Command::new("ip")
            .args(["netns", "exec", &namespace])
            .arg(binary)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_FUNCTION_NAME", "twin")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_RUNTIME_API", RUNTIME_API)
            .env("FIXEDIP_WHATISMYIP_URL", format!("http://{probe}/"))
            .kill_on_drop(true)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        let answer = tokio::time::timeout(INVOKE_TIMEOUT, outcome).await;
        let _ = function.kill().await;
        // The listener closes when the aborted task is dropped: wait for it, so that the next
        // invocation in this namespace can listen on the same port.
        server.abort();
        let _ = server.await;
        match answer {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(_)) => Err("the runtime API stopped".to_owned()),
            Err(_) => Err(format!(
                "the function answered nothing within {INVOKE_TIMEOUT:?}"
            )),
        }
    }

    /// The address the internet saw when the function ran in `subnet_id` and fetched the
    /// what-is-my-IP service at `probe`, or why there was none.
    pub async fn egress_ip(
        &self,
        subnet_id: &str,
        probe: SocketAddrV4,
        binary: &Path,
    ) -> Result<Ipv4Addr, String> {
        let event = serde_json::json!({"fixedip": "probe"});
        match self.invoke(subnet_id, probe, binary, event).await? {
            Ok(answer) => answer["ip"]
                .as_str()
                .and_then(|ip| ip.parse().ok())
                .ok_or_else(|| format!("no address in the answer {answer}")),
            // The runtime's error document: `{"errorType": …, "errorMessage": …}`.
            Err(error) => Err(serde_json::from_str::<serde_json::Value>(&error)
                .ok()
                .and_then(|e| e["errorMessage"].as_str().map(str::to_owned))
                .unwrap_or(error)),
        }
    }

    /// [`Twin::egress_ip`] from every subnet the function is attached to, towards every probe:
    /// by (subnet, probe).
    pub async fn egress_ips(
        &self,
        binary: &Path,
    ) -> BTreeMap<(String, SocketAddrV4), Result<Ipv4Addr, String>> {
        let mut seen = BTreeMap::new();
        for subnet in self.wiring.function_devices.keys() {
            for probe in self.probes() {
                let ip = self.egress_ip(subnet, probe, binary).await;
                seen.insert((subnet.clone(), probe), ip);
            }
        }
        seen
    }

    /// The what-is-my-IP server on the internet, on HTTP's port as checkip.amazonaws.com, at
    /// each of [`Wiring::probes`].
    pub fn probes(&self) -> Vec<SocketAddrV4> {
        let probes = self.wiring.probes.iter();
        probes.map(|ip| SocketAddrV4::new(*ip, 80)).collect()
    }
}

/// What the twin needs from the machine, checked before anything is made.
fn preflight() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("the data-plane twin makes network namespaces: run the tests as root".into());
    }
    for (tool, args) in [("ip", ["-V"]), ("nft", ["--version"])] {
        apply::run(tool, &args).map_err(|e| {
            format!("{e}\nthe data-plane twin needs iproute2 and nftables: scripts/twin-tools.sh installs them")
        })?;
    }
    remove_namespaces_of_dead_runs();
    Ok(())
}

/// A test process killed mid-run (a timeout's SIGKILL) leaves its namespaces: those whose process
/// (`fxt<pid>-…`) is gone are removed before a new twin is built.
fn remove_namespaces_of_dead_runs() {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix("fxt")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = apply::run("ip", &["netns", "del", &name]);
            }
        }
    }
}

/// The files a user data script writes with `cat > PATH <<TAG … TAG`, by path, in order.
pub fn files_written(user_data: &str) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut lines = user_data.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line.trim().strip_prefix("cat > ") else {
            continue;
        };
        let Some((path, tag)) = rest.split_once("<<") else {
            continue;
        };
        let tag = tag.trim().trim_matches('\'').trim_matches('"');
        let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != tag).collect();
        files.push((path.trim().to_owned(), body.join("\n") + "\n"));
    }
    files
}

/// Applies a NAT instance's own setup in its namespace: the `net.*` sysctls of the sysctl.d files
/// its user data writes, and the nftables ruleset it writes, with the outbound interface (the
/// script's `$OUT`, the default route's) being the namespace's `eth0`.
fn run_nat_setup(namespace: &str, user_data: &str) -> Result<(), String> {
    let files = files_written(user_data);
    if files.is_empty() {
        return Err("the NAT instance's user data writes no configuration file".into());
    }
    for (path, body) in files {
        if path.contains("sysctl.d/") {
            for line in body.lines().filter(|l| !l.trim().is_empty()) {
                let (key, value) = line
                    .split_once('=')
                    .ok_or_else(|| format!("{path}: {line}"))?;
                if key.trim().starts_with("net.") {
                    apply::sysctl(namespace, key.trim(), value.trim())?;
                }
            }
        } else if path.contains("nftables") {
            apply::nft(namespace, &body.replace("$OUT", "eth0"))?;
        }
    }
    Ok(())
}
