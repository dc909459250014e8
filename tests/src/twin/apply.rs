//! Builds a [`Wiring`] on this machine: network namespaces joined by veth pairs, with `ip` and
//! `nft` (iproute2 and nftables, installed by `scripts/twin-tools.sh`). Every namespace is named
//! with the twin's own prefix and deleted when the [`Namespaces`] are dropped, which removes their
//! links, routes and rulesets with them.

use std::net::Ipv4Addr;
use std::process::Command;

use super::wiring::{function_filter, Device, DeviceKind, Hop, Wiring, ROUTER};

/// The namespaces of one twin; deleted on drop.
#[derive(Debug)]
pub struct Namespaces {
    prefix: String,
    created: Vec<String>,
}

/// Runs a command; its failure is a failure of the twin, with what the tool said.
pub fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}: run scripts/twin-tools.sh to install it"))?;
    match output.status.success() {
        true => Ok(()),
        false => Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )),
    }
}

/// Loads an nftables ruleset into a namespace.
pub fn nft(namespace: &str, ruleset: &str) -> Result<(), String> {
    let file = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    std::fs::write(file.path(), ruleset).map_err(|e| e.to_string())?;
    let path = file.path().to_str().expect("a UTF-8 temporary path");
    run("ip", &["netns", "exec", namespace, "nft", "-f", path])
        .map_err(|e| format!("{e}\nruleset:\n{ruleset}"))
}

/// Sets a `net.*` sysctl inside a namespace (those are per namespace; nothing else is written).
pub fn sysctl(namespace: &str, key: &str, value: &str) -> Result<(), String> {
    assert!(
        key.starts_with("net."),
        "{key}: only net.* is per namespace"
    );
    run(
        "ip",
        &[
            "netns",
            "exec",
            namespace,
            "sysctl",
            "-qw",
            &format!("{key}={value}"),
        ],
    )
}

impl Namespaces {
    /// A fresh set, named `<prefix><name>`.
    pub fn new(prefix: String) -> Namespaces {
        Namespaces {
            prefix,
            created: Vec::new(),
        }
    }

    pub fn name(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn add(&mut self, name: &str) -> Result<String, String> {
        let full = self.name(name);
        run("ip", &["netns", "add", &full])?;
        self.created.push(full.clone());
        ip(&full, &["link", "set", "lo", "up"])?;
        // Asymmetric paths are the point (a NAT's traffic leaves on the link it came in on):
        // no reverse-path filter, whatever the host's defaults.
        sysctl(&full, "net.ipv4.conf.all.rp_filter", "0")?;
        sysctl(&full, "net.ipv4.conf.default.rp_filter", "0")?;
        // moto hands out Elastic IPs in 127.0.0.0/8: routed like any address here.
        sysctl(&full, "net.ipv4.conf.all.route_localnet", "1")?;
        sysctl(&full, "net.ipv4.conf.default.route_localnet", "1")?;
        Ok(full)
    }

    /// Builds every namespace of `wiring`, and returns what the devices need to be driven.
    pub fn build(&mut self, wiring: &Wiring) -> Result<(), String> {
        let router = self.add("r")?;
        ip(
            &router,
            &["addr", "add", &format!("{ROUTER}/32"), "dev", "lo"],
        )?;
        sysctl(&router, "net.ipv4.ip_forward", "1")?;
        sysctl(&router, "net.ipv4.conf.all.send_redirects", "0")?;

        for device in &wiring.devices {
            self.device(&router, device, wiring)?;
        }
        // Replies from the gateway and the services come in on links with no rule: the main table
        // reaches every device.
        for device in &wiring.devices {
            let link = format!("d-{}", device.name);
            ip(
                &router,
                &[
                    "route",
                    "add",
                    &format!("{}/32", device.address),
                    "dev",
                    &link,
                ],
            )?;
        }

        if wiring.internet_gateway {
            self.internet_gateway(&router, wiring)?;
        }
        for (i, (service, prefix)) in wiring.services.iter().enumerate() {
            let namespace = self.add(&format!("s{i}"))?;
            let (near, far) = (link_address(10 + i, 1), link_address(10 + i, 2));
            veth(&router, &format!("s-{service}"), &namespace, "vpc")?;
            ip(
                &router,
                &[
                    "addr",
                    "add",
                    &format!("{near}/30"),
                    "dev",
                    &format!("s-{service}"),
                ],
            )?;
            ip(
                &namespace,
                &["addr", "add", &format!("{far}/30"), "dev", "vpc"],
            )?;
            ip(
                &namespace,
                &[
                    "addr",
                    "add",
                    &format!("{}/32", service_address(*prefix)),
                    "dev",
                    "lo",
                ],
            )?;
            ip(
                &namespace,
                &["route", "add", "default", "via", &near.to_string()],
            )?;
        }

        for (table_number, (table, routes)) in wiring.tables.iter().enumerate() {
            let number = (100 + table_number).to_string();
            for route in routes {
                let destination = route.destination.to_string();
                let mut args = vec!["route", "add"];
                let (via, link);
                match &route.hop {
                    Hop::Device(name) => {
                        let device = wiring.device(name).expect("a device of the wiring");
                        via = device.address.to_string();
                        link = format!("d-{name}");
                        match route.destination.prefix_len() == 32
                            && route.destination.addr() == device.address
                        {
                            true => args.extend([destination.as_str(), "dev", &link]),
                            false => args.extend([
                                destination.as_str(),
                                "via",
                                &via,
                                "dev",
                                &link,
                                "onlink",
                            ]),
                        }
                    }
                    Hop::InternetGateway if wiring.internet_gateway => {
                        via = link_address(2, 2).to_string();
                        args.extend([destination.as_str(), "via", &via]);
                    }
                    Hop::Service(service) => {
                        let i = wiring.services.keys().position(|s| s == service);
                        via = link_address(10 + i.expect("a service of the wiring"), 2).to_string();
                        args.extend([destination.as_str(), "via", &via]);
                    }
                    Hop::InternetGateway | Hop::Blackhole => {
                        args.extend(["blackhole", destination.as_str()]);
                    }
                }
                args.extend(["table", &number]);
                ip(&router, &args).map_err(|e| format!("route table {table}: {e}"))?;
            }
            for (device, used) in &wiring.table_of {
                if used == table {
                    let link = format!("d-{device}");
                    ip(&router, &["rule", "add", "iif", &link, "lookup", &number])?;
                }
            }
        }
        Ok(())
    }

    fn device(&mut self, router: &str, device: &Device, wiring: &Wiring) -> Result<(), String> {
        let namespace = self.add(&device.name)?;
        let link = format!("d-{}", device.name);
        veth(router, &link, &namespace, "eth0")?;
        ip(
            &namespace,
            &[
                "addr",
                "add",
                &format!("{}/32", device.address),
                "dev",
                "eth0",
            ],
        )?;
        ip(
            &namespace,
            &["route", "add", &ROUTER.to_string(), "dev", "eth0"],
        )?;
        ip(
            &namespace,
            &[
                "route",
                "add",
                "default",
                "via",
                &ROUTER.to_string(),
                "dev",
                "eth0",
            ],
        )?;
        match &device.kind {
            DeviceKind::Function { egress } => {
                nft(&namespace, &function_filter(egress, &wiring.prefix_lists))?;
            }
            DeviceKind::NatGateway { .. } => {
                sysctl(&namespace, "net.ipv4.ip_forward", "1")?;
                sysctl(&namespace, "net.ipv4.conf.all.send_redirects", "0")?;
                // A NAT gateway translates to its own private address; the internet gateway maps
                // that to the Elastic IP.
                nft(
                    &namespace,
                    &format!(
                        "table ip fixedip_natgw {{\n  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    oifname \"eth0\" ip saddr != {0} snat to {0}\n  }}\n}}\n",
                        device.address
                    ),
                )?;
            }
            DeviceKind::NatInstance { .. } => {
                // Set up by the instance's own user data: `Twin::run_nat_setup`.
            }
        }
        Ok(())
    }

    fn internet_gateway(&mut self, router: &str, wiring: &Wiring) -> Result<(), String> {
        let gateway = self.add("g")?;
        let internet = self.add("i")?;
        veth(router, "igw", &gateway, "vpc")?;
        ip(
            router,
            &[
                "addr",
                "add",
                &format!("{}/30", link_address(2, 1)),
                "dev",
                "igw",
            ],
        )?;
        ip(
            &gateway,
            &[
                "addr",
                "add",
                &format!("{}/30", link_address(2, 2)),
                "dev",
                "vpc",
            ],
        )?;
        veth(&gateway, "inet", &internet, "igw")?;
        ip(
            &gateway,
            &[
                "addr",
                "add",
                &format!("{}/30", link_address(3, 1)),
                "dev",
                "inet",
            ],
        )?;
        ip(
            &internet,
            &[
                "addr",
                "add",
                &format!("{}/30", link_address(3, 2)),
                "dev",
                "igw",
            ],
        )?;
        for probe in &wiring.probes {
            ip(
                &internet,
                &["addr", "add", &format!("{probe}/32"), "dev", "lo"],
            )?;
        }
        // moto's Elastic IPs are in 127.0.0.0/8, which every namespace keeps for itself: the
        // internet and the gateway keep only 127.0.0.1 (its own local route), so that the rest
        // routes like public space.
        for namespace in [&gateway, &internet] {
            let wide = ["route", "del", "local", "127.0.0.0/8", "dev", "lo"];
            ip(namespace, &[&wide[..], &["table", "local"]].concat())?;
        }
        ip(
            &internet,
            &[
                "route",
                "add",
                "default",
                "via",
                &link_address(3, 1).to_string(),
            ],
        )?;
        ip(
            &gateway,
            &[
                "route",
                "add",
                "default",
                "via",
                &link_address(3, 2).to_string(),
            ],
        )?;
        sysctl(&gateway, "net.ipv4.ip_forward", "1")?;
        let mut dnat = Vec::new();
        let mut snat = Vec::new();
        for device in &wiring.devices {
            ip(
                &gateway,
                &[
                    "route",
                    "add",
                    &format!("{}/32", device.address),
                    "via",
                    &link_address(2, 1).to_string(),
                ],
            )?;
            if let Some(public) = device.public_ip {
                dnat.push(format!("ip daddr {public} dnat to {}", device.address));
                snat.push(format!("ip saddr {} snat to {public}", device.address));
            }
        }
        // Only a private address with an Elastic IP crosses the gateway: anything else has no
        // public address, and AWS drops it.
        let mapped: Vec<String> = wiring
            .devices
            .iter()
            .filter(|d| d.public_ip.is_some())
            .map(|d| d.address.to_string())
            .collect();
        let forward = match mapped.is_empty() {
            true => "iifname \"vpc\" drop".to_owned(),
            false => format!(
                "iifname \"vpc\" ip saddr != {{ {} }} drop",
                mapped.join(", ")
            ),
        };
        nft(
            &gateway,
            &format!(
                "table ip fixedip_igw {{\n  chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;\n{}\n  }}\n  chain forward {{\n    type filter hook forward priority 0; policy accept;\n    {forward}\n  }}\n  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n{}\n  }}\n}}\n",
                dnat.iter().map(|r| format!("    {r}")).collect::<Vec<_>>().join("\n"),
                snat.iter().map(|r| format!("    {r}")).collect::<Vec<_>>().join("\n"),
            ),
        )?;
        Ok(())
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for namespace in self.created.iter().rev() {
            let _ = run("ip", &["netns", "del", namespace]);
        }
    }
}

fn ip(namespace: &str, args: &[&str]) -> Result<(), String> {
    let mut all = vec!["-n", namespace];
    all.extend_from_slice(args);
    run("ip", &all)
}

/// A veth pair from `a_link` in namespace `a` to `b_link` in `b`, both up.
fn veth(a: &str, a_link: &str, b: &str, b_link: &str) -> Result<(), String> {
    ip(
        a,
        &[
            "link", "add", a_link, "type", "veth", "peer", "name", b_link, "netns", b,
        ],
    )?;
    ip(a, &["link", "set", a_link, "up"])?;
    ip(b, &["link", "set", b_link, "up"])
}

/// The `host`th address (1 or 2) of the twin's `n`th point-to-point /30 (169.254.n.0/30).
fn link_address(n: usize, host: u8) -> Ipv4Addr {
    Ipv4Addr::new(
        169,
        254,
        u8::try_from(n).expect("a small link number"),
        host,
    )
}

/// Where a service's server listens: the first address of its twin prefix.
pub fn service_address(prefix: ipnet::Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(prefix.network()) + 1)
}
