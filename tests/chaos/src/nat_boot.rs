//! The boot of a NAT instance launched by fixedip, as its console shows it: moto runs no user
//! data, and its GetConsoleOutput answers every instance with the same sample (a 2006 Xen
//! kernel's first lines).
//!
//! AWS: GetConsoleOutput returns the instance's serial console output, base64 encoded; "for
//! Nitro-based instances, the latest console output is available with `Latest=true`"; an
//! instance that has just started may have no output yet (EC2 API Reference, GetConsoleOutput,
//! <https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_GetConsoleOutput.html>). On Amazon
//! Linux 2023, cloud-init runs the user data once, at the first boot, after the network is up
//! (AL2023 User Guide, "Using cloud-init on AL2023"); fixedip's script writes each step to
//! `/dev/console` and ends with `fixedip-nat: ready` or `fixedip-nat: FAILED`
//! (`cargo-fixedip/src/aws/nat_instance.rs`). Its nftables install needs the package
//! repositories, which the instance reaches only once it has a public address (its Elastic IP,
//! or a public IP at launch).
//!
//! The model: an instance whose RunInstances user data carries fixedip's marker is a NAT
//! instance. Its console reads ready [`NatBoot::ready_after_ms`] after the proxy first sees it
//! with a public address (moto's DescribeInstances `ipAddress`), and "booting" lines before; the
//! k-th launch listed in [`NatBoot::never_ready`] ends in the FAILED line (or shows nothing of
//! fixedip's at all, `silent`). Other instances get moto's answer untouched.
//!
//! A restart (StartInstances after a stop, RebootInstances) is a new boot: cloud-init does not
//! run the user data again ("user data is run only at the first boot", AL2023 User Guide,
//! cloud-init; EC2 User Guide, "Run commands when you launch an EC2 instance with user data"),
//! so the console shows the kernel's lines, then the ready line `ready_after_ms` after the
//! instance is seen online again only if the user data installed the unit that reports at every
//! boot ([`fixedip_core::nat_boot::EVERY_BOOT`]); without it, no fixedip line ever comes.
//! The restart's console keeps the earlier boots' lines before its own, as `Latest=true` may
//! (the most recent output, not only this boot's): the earlier `ready` line is still there while
//! the new boot has said nothing yet.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::protocol;
use crate::scenario::NatBoot;
use crate::upstream::{xml_texts, Caller, Upstream, UpstreamError};

/// fixedip's NAT instances the proxy has seen launched.
#[derive(Debug, Default)]
pub struct NatInstances {
    /// By instance id: its launch's order (from 1, since the scenario was set) and when it was
    /// first seen with a public address.
    known: BTreeMap<String, Booting>,
    launches: u64,
}

#[derive(Debug, Clone)]
struct Booting {
    nth: u64,
    online_since: Option<Instant>,
    /// Its user data reports at every boot, not only the first.
    every_boot: bool,
    /// Restarted at least once: cloud-init does not run the user data again.
    restarted: bool,
    /// What the console showed when it was last restarted: still shown, before the new boot's
    /// lines.
    earlier: String,
}

/// What a NAT instance's console shows at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Console {
    /// Not fixedip's: moto's own answer stands.
    NotOurs,
    /// The instance is known; whether it has been seen online is still to be asked.
    Offline,
    Text(String),
}

const BOOTING: &str = "[    9.871234] cloud-init[1603]: fixedip-nat: installing nftables failed (attempt 1 of 60): retrying in 10 s\n";
const READY: &str = "[   21.004211] cloud-init[1603]: fixedip-nat: ready: forwarding and masquerading out of ens5\n";
const FAILED: &str = "[  612.553010] cloud-init[1603]: fixedip-nat: installing nftables failed (attempt 60 of 60): retrying in 10 s\n[  622.560431] cloud-init[1603]: fixedip-nat: FAILED: nftables could not be installed; this instance forwards nothing\n";
const KERNEL: &str = "[    0.000000] Linux version 6.1.112-122.189.amzn2023.aarch64 (mockbuild@ip-10-0-53-91) #1 SMP\n";
const READY_AGAIN: &str = "[   11.402117] fixedip-nat-ready[1288]: fixedip-nat: ready: forwarding and masquerading out of ens5\n";

impl NatInstances {
    /// RunInstances answered: its instances are fixedip's NAT instances if the user data says so.
    pub fn launched(&mut self, params: &[(String, String)], answer: &str) {
        let user_data = protocol::param(params, "UserData").unwrap_or_default();
        let script = base64::engine::general_purpose::STANDARD
            .decode(user_data)
            .unwrap_or_default();
        let script = String::from_utf8_lossy(&script);
        if !script.contains(fixedip_core::nat_boot::PREFIX) {
            return;
        }
        for id in xml_texts(answer, "instanceId") {
            self.launched_with(&id, &script);
        }
    }

    /// An instance launched with fixedip's `script` (by RunInstances, or by a self-healing NAT's
    /// group: `nat_group.rs`), counted once.
    pub fn launched_with(&mut self, id: &str, script: &str) {
        if self.known.contains_key(id) {
            return;
        }
        self.launches += 1;
        self.known.insert(
            id.to_owned(),
            Booting {
                nth: self.launches,
                online_since: None,
                every_boot: script.contains(fixedip_core::nat_boot::EVERY_BOOT),
                restarted: false,
                earlier: String::new(),
            },
        );
    }

    /// StartInstances or RebootInstances answered: each of fixedip's instances it names boots
    /// again, seen online afresh, its console keeping what it showed until now.
    pub fn restarted(&mut self, params: &[(String, String)], boot: &NatBoot, now: Instant) {
        let named = params
            .iter()
            .filter(|(k, _)| k.starts_with("InstanceId."))
            .map(|(_, id)| id);
        for id in named {
            let earlier = match self.console(id, boot, now) {
                Console::Text(text) => text,
                Console::NotOurs | Console::Offline => continue,
            };
            if let Some(booting) = self.known.get_mut(id) {
                booting.restarted = true;
                booting.online_since = None;
                booting.earlier = earlier;
            }
        }
    }

    /// A new scenario counts launches afresh; what is booting keeps booting.
    pub fn restart_count(&mut self) {
        self.launches = 0;
    }

    /// The instance has a public address from now on (asked of moto by the caller).
    pub fn online(&mut self, id: &str, now: Instant) {
        if let Some(booting) = self.known.get_mut(id) {
            booting.online_since.get_or_insert(now);
        }
    }

    /// What its console shows at `now` under `boot`.
    pub fn console(&self, id: &str, boot: &NatBoot, now: Instant) -> Console {
        let Some(booting) = self.known.get(id) else {
            return Console::NotOurs;
        };
        if let Some(never) = boot.never_ready.iter().find(|n| n.nth == booting.nth) {
            return Console::Text(if never.silent {
                KERNEL.to_owned()
            } else {
                format!("{KERNEL}{BOOTING}{FAILED}")
            });
        }
        let Some(since) = booting.online_since else {
            return Console::Offline;
        };
        let booted = now.duration_since(since) >= Duration::from_millis(boot.ready_after_ms);
        let earlier = &booting.earlier;
        Console::Text(match (booting.restarted, booted) {
            (false, true) => format!("{KERNEL}{BOOTING}{READY}"),
            (false, false) => format!("{KERNEL}{BOOTING}"),
            (true, true) if booting.every_boot => format!("{earlier}{KERNEL}{READY_AGAIN}"),
            (true, _) => format!("{earlier}{KERNEL}"),
        })
    }
}

/// Whether moto shows the instance with a public address (`ipAddress`).
pub async fn has_public_address(
    upstream: &Upstream,
    caller: &Caller,
    id: &str,
) -> Result<bool, UpstreamError> {
    let answer = upstream
        .ec2(
            caller,
            &[("Action", "DescribeInstances"), ("InstanceId.1", id)],
        )
        .await?;
    Ok(xml_texts(&answer, "ipAddress")
        .iter()
        .any(|ip| !ip.is_empty()))
}

/// moto's GetConsoleOutput answer with `text` as the output.
pub fn rewrite(answer: &str, text: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(text);
    match (answer.find("<output>"), answer.find("</output>")) {
        (Some(start), Some(end)) if start < end => format!(
            "{}<output>{encoded}</output>{}",
            &answer[..start],
            &answer[end + "</output>".len()..]
        ),
        _ => answer.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::NeverReady;
    use fixedip_core::nat_boot::{readiness, Readiness};

    fn launch(instances: &mut NatInstances, id: &str, script: &str) {
        let data = base64::engine::general_purpose::STANDARD.encode(script);
        let params = vec![("UserData".to_owned(), data)];
        instances.launched(&params, &format!("<instanceId>{id}</instanceId>"));
    }

    fn read(console: Console) -> Readiness {
        match console {
            Console::Text(text) => readiness(&text),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ready_only_after_the_boot_time_once_online() {
        let mut instances = NatInstances::default();
        launch(&mut instances, "i-1", "log() { echo \"fixedip-nat: $*\"; }");
        launch(&mut instances, "i-other", "#!/bin/bash\necho hi");
        let boot = NatBoot {
            replacement_after_ms: 0,
            ready_after_ms: 1000,
            never_ready: Vec::new(),
        };
        let t0 = Instant::now();
        assert_eq!(instances.console("i-other", &boot, t0), Console::NotOurs);
        assert_eq!(instances.console("i-1", &boot, t0), Console::Offline);
        instances.online("i-1", t0);
        assert!(matches!(
            read(instances.console("i-1", &boot, t0)),
            Readiness::Booting(_)
        ));
        let later = t0 + Duration::from_millis(1000);
        assert_eq!(
            read(instances.console("i-1", &boot, later)),
            Readiness::Ready
        );
    }

    #[test]
    fn the_nth_launch_never_gets_ready() {
        let mut instances = NatInstances::default();
        launch(&mut instances, "i-1", "fixedip-nat:");
        launch(&mut instances, "i-2", "fixedip-nat:");
        let boot = NatBoot {
            replacement_after_ms: 0,
            ready_after_ms: 0,
            never_ready: vec![
                NeverReady {
                    nth: 1,
                    silent: false,
                },
                NeverReady {
                    nth: 2,
                    silent: true,
                },
            ],
        };
        let now = Instant::now();
        assert!(matches!(
            read(instances.console("i-1", &boot, now)),
            Readiness::Failed(_)
        ));
        assert_eq!(
            read(instances.console("i-2", &boot, now)),
            Readiness::Booting(Vec::new())
        );
    }

    /// A restart shows the ready line again, after the boot time, only for a user data that
    /// reports at every boot; cloud-init's first-boot lines are not written again.
    #[test]
    fn a_restart_reports_ready_again_only_with_the_every_boot_unit() {
        let mut instances = NatInstances::default();
        let every_boot = format!(
            "fixedip-nat: systemctl enable {}",
            fixedip_core::nat_boot::EVERY_BOOT
        );
        launch(&mut instances, "i-1", &every_boot);
        launch(&mut instances, "i-2", "fixedip-nat:");
        let boot = NatBoot {
            replacement_after_ms: 0,
            ready_after_ms: 1000,
            never_ready: Vec::new(),
        };
        let t0 = Instant::now();
        let later = t0 + Duration::from_millis(1000);
        for id in ["i-1", "i-2"] {
            instances.online(id, t0);
            assert_eq!(read(instances.console(id, &boot, later)), Readiness::Ready);
        }
        let params = vec![
            ("InstanceId.1".to_owned(), "i-1".to_owned()),
            ("InstanceId.2".to_owned(), "i-2".to_owned()),
        ];
        instances.restarted(&params, &boot, later);
        for id in ["i-1", "i-2"] {
            assert_eq!(instances.console(id, &boot, later), Console::Offline);
            instances.online(id, later);
            assert_eq!(
                read(instances.console(id, &boot, later)),
                Readiness::Booting(Vec::new())
            );
        }
        let after_boot = later + Duration::from_millis(1000);
        assert_eq!(
            read(instances.console("i-1", &boot, after_boot)),
            Readiness::Ready
        );
        assert_eq!(
            read(instances.console("i-2", &boot, after_boot)),
            Readiness::Booting(Vec::new())
        );
    }

    #[test]
    fn the_output_is_replaced_base64_encoded() {
        let moto = "<GetConsoleOutputResponse><instanceId>i-1</instanceId><output>TGludXg=</output></GetConsoleOutputResponse>";
        let rewritten = rewrite(moto, "fixedip-nat: ready\n");
        let encoded = xml_texts(&rewritten, "output").remove(0);
        let text = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        assert_eq!(text, b"fixedip-nat: ready\n");
    }
}
