//! `cgnat setup`: what a host needs before `cgnat run` on real NICs. Huge pages for the
//! DPDK memory the config needs (raised, never lowered), hugetlbfs mounted, and with
//! `--bind` the configured PCI devices bound to vfio-pci. `--dry-run` prints each step
//! without taking it. The `cgnat-setup.service` unit runs it before `cgnat.service`.

use anyhow::{anyhow, bail, Context, Result};
use cgnat_config::Config;
use std::path::{Path, PathBuf};

/// What EAL itself takes besides the pool: memzones of the ports and rings, the
/// malloc heap's own structures, telemetry, the drivers' private data.
const EAL_OVERHEAD_MB: u64 = 64;
/// Bytes an mbuf takes besides its data room: `struct rte_mbuf` (two cache lines)
/// and the mempool's object header and trailer.
const MBUF_OVERHEAD: u64 = 192;
/// Bytes per descriptor of an RX or TX queue, with the driver's software ring.
const DESC_BYTES: u64 = 64;

const MB: u64 = 1 << 20;

/// Where the kernel keeps its huge-page pools and PCI devices.
const HUGEPAGES: &str = "/sys/kernel/mm/hugepages";
const PCI: &str = "/sys/bus/pci";

/// The DPDK memory a config needs, in MB, and how that figure came about.
pub struct Need {
    /// MB to reserve.
    pub mb: u64,
    /// A line saying where it comes from.
    pub why: String,
}

/// The value of an EAL option given as `-m N`, `-mN`, `--opt=V` or `--opt V`.
fn eal_value<'a>(args: &'a [String], short: Option<&str>, long: &str) -> Option<&'a str> {
    let mut it = args.iter();
    let mut found = None;
    while let Some(a) = it.next() {
        if let Some(v) = a.strip_prefix(&format!("{long}=")) {
            found = Some(v);
        } else if a == long || short == Some(a.as_str()) {
            found = it.next().map(String::as_str);
        } else if let Some(v) = short
            .and_then(|s| a.strip_prefix(s))
            .filter(|v| !v.is_empty())
        {
            found = Some(v);
        }
    }
    found
}

/// The memory `cgnat run` takes from DPDK for this config: at least what `-m` or
/// `--socket-mem` in `dataplane.eal_args` asks EAL to take, and at least the pool,
/// queues and rings it creates. None when the config runs without huge pages.
pub fn need(cfg: &Config) -> Result<Option<Need>> {
    let dp = &cfg.dataplane;
    if dp.eal_args.iter().any(|a| a == "--no-huge") {
        return Ok(None);
    }
    let workers = dp.worker_lcores.len() as u64;
    let pool = u64::from(dp.mbufs) * (u64::from(dp.mbuf_size) + MBUF_OVERHEAD);
    let queues = 2 * workers * (u64::from(dp.rx_desc) + u64::from(dp.tx_desc)) * DESC_BYTES;
    // Each worker's rings to and from the control lcore and its peers, one pointer
    // (or message) a slot, rounded up to a MB a worker.
    let rings = workers * MB;
    let pool_mb = pool.div_ceil(MB);
    let other_mb = (queues + rings).div_ceil(MB);
    let estimate = pool_mb + other_mb + EAL_OVERHEAD_MB;
    let why = format!(
        "{} mbufs of {} bytes: {pool_mb} MB; queues and rings of {workers} worker(s): \
         {other_mb} MB; EAL: {EAL_OVERHEAD_MB} MB",
        dp.mbufs, dp.mbuf_size
    );
    let asked = if let Some(m) = eal_value(&dp.eal_args, Some("-m"), "--socket-mem") {
        let mut sum = 0u64;
        for part in m.split(',') {
            sum += part.trim().parse::<u64>().map_err(|_| {
                anyhow!(
                    "{}: key `dataplane.eal_args`: `{m}` is not a size in MB (-m 4096, \
                     or --socket-mem 2048,2048)",
                    cfg.file
                )
            })?;
        }
        Some(sum)
    } else {
        None
    };
    Ok(Some(match asked {
        Some(m) if m >= estimate => Need {
            mb: m,
            why: format!("dataplane.eal_args asks EAL for {m} MB ({why})"),
        },
        Some(m) => Need {
            mb: estimate,
            why: format!(
                "{why}; more than the {m} MB dataplane.eal_args gives EAL: raise it, \
                 or the pool will not fit"
            ),
        },
        None => Need { mb: estimate, why },
    }))
}

/// A huge page size in kB from `2M`, `1G`, `2048kB` or `2048` (kB).
fn page_kb(s: &str) -> Result<u64> {
    let t = s.trim();
    let (num, mult) = if let Some(n) = t.strip_suffix("kB").or_else(|| t.strip_suffix('K')) {
        (n, 1)
    } else if let Some(n) = t.strip_suffix('M') {
        (n, 1024)
    } else if let Some(n) = t.strip_suffix('G') {
        (n, 1024 * 1024)
    } else {
        (t, 1)
    };
    num.parse::<u64>()
        .ok()
        .filter(|&n| n > 0)
        .map(|n| n * mult)
        .ok_or_else(|| anyhow!("--page-size `{s}`: a size such as 2M or 1G"))
}

/// A page size for people and for mount(8): `2M`, `1G`, `64K`.
fn human(kb: u64) -> String {
    if kb.is_multiple_of(1024 * 1024) {
        format!("{}G", kb / (1024 * 1024))
    } else if kb.is_multiple_of(1024) {
        format!("{}M", kb / 1024)
    } else {
        format!("{kb}K")
    }
}

/// The kernel's default huge page size, in kB.
fn default_page_kb() -> Result<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").context("reading /proc/meminfo")?;
    info.lines()
        .find_map(|l| l.strip_prefix("Hugepagesize:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| {
            anyhow!("/proc/meminfo names no Hugepagesize: this kernel has no huge pages")
        })
}

fn read_num(path: &Path) -> Result<u64> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.trim()
        .parse()
        .with_context(|| format!("{}: `{}` is not a number", path.display(), text.trim()))
}

fn write(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value).with_context(|| format!("writing `{value}` to {}", path.display()))
}

/// One step: printed as what would be done (dry run) or done and printed.
struct Steps {
    dry_run: bool,
}

impl Steps {
    fn take(&self, what: &str, act: impl FnOnce() -> Result<()>) -> Result<()> {
        if self.dry_run {
            println!("would {what}");
            return Ok(());
        }
        act()?;
        println!("did {what}");
        Ok(())
    }
}

/// The options of `cgnat setup`.
pub struct SetupOptions<'a> {
    /// Print the steps, take none.
    pub dry_run: bool,
    /// Bind the configured PCI devices to vfio-pci.
    pub bind: bool,
    /// Huge page size (`2M`, `1G`); the kernel's default when None.
    pub page_size: Option<&'a str>,
}

/// Reserves the huge pages `cfg` needs, mounts hugetlbfs, and binds its PCI devices
/// when asked.
pub fn setup(cfg: &Config, opts: &SetupOptions) -> Result<()> {
    let steps = Steps {
        dry_run: opts.dry_run,
    };
    match need(cfg)? {
        None => println!(
            "{}: dataplane.eal_args has --no-huge: the appliance takes no huge pages; \
             nothing to reserve",
            cfg.file
        ),
        Some(need) => reserve(cfg, &need, opts, &steps)?,
    }
    let mut pci = Vec::new();
    for (i, p) in cfg.ports.iter().enumerate() {
        match pci_address(&p.device) {
            Some(addr) => pci.push((i, p.name.as_str(), addr)),
            None => println!(
                "port {} ({}): not a PCI device; nothing to bind",
                p.name, p.device
            ),
        }
    }
    for (i, name, addr) in pci {
        if opts.bind {
            bind(cfg, i, name, &addr, &steps)?;
        } else {
            println!(
                "port {name}: PCI device {addr} left on its driver ({}); --bind binds it to vfio-pci",
                driver(&addr).unwrap_or_else(|| "none".into())
            );
        }
    }
    Ok(())
}

fn reserve(cfg: &Config, need: &Need, opts: &SetupOptions, steps: &Steps) -> Result<()> {
    let kb = match opts.page_size {
        Some(s) => page_kb(s)?,
        None => default_page_kb()?,
    };
    let dir = PathBuf::from(format!("{HUGEPAGES}/hugepages-{kb}kB"));
    if !dir.exists() {
        bail!(
            "this kernel has no {kb} kB huge pages ({} is missing)",
            dir.display()
        );
    }
    let pages = (need.mb * 1024).div_ceil(kb);
    let total = read_num(&dir.join("nr_hugepages"))?;
    let free = read_num(&dir.join("free_hugepages"))?;
    let used = total.saturating_sub(free);
    println!(
        "{} needs {} MB of DPDK memory ({})",
        cfg.file, need.mb, need.why
    );
    println!("huge pages: {pages} of {kb} kB; {total} reserved now, {free} of them free");
    let target = total.max(used + pages);
    let nr = dir.join("nr_hugepages");
    if target == total {
        println!("huge pages: enough are free; nothing to reserve");
    } else {
        steps.take(&format!("write {target} to {}", nr.display()), || {
            write(&nr, &target.to_string())?;
            let got = read_num(&nr)?;
            if got < target {
                bail!(
                    "the kernel reserved {got} of the {target} huge pages of {kb} kB asked \
                     (memory too fragmented): reserve them at boot instead, e.g. \
                     hugepagesz={kb}K hugepages={target} on the kernel command line"
                );
            }
            Ok(())
        })?;
    }
    mount(cfg, kb, steps)
}

/// hugetlbfs mounts of /proc/mounts: (directory, page size in kB or None for the default).
fn hugetlbfs_mounts() -> Result<Vec<(String, Option<u64>)>> {
    let text = std::fs::read_to_string("/proc/mounts").context("reading /proc/mounts")?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 3 && f[2] == "hugetlbfs").then(|| {
                let size = f[3]
                    .split(',')
                    .find_map(|o| o.strip_prefix("pagesize="))
                    .and_then(|s| page_kb(s).ok());
                (f[1].replace("\\040", " "), size)
            })
        })
        .collect())
}

fn mount(cfg: &Config, kb: u64, steps: &Steps) -> Result<()> {
    let default_kb = default_page_kb()?;
    let size_of = |s: Option<u64>| s.unwrap_or(default_kb);
    let mounts = hugetlbfs_mounts()?;
    let wanted = eal_value(&cfg.dataplane.eal_args, None, "--huge-dir").map(str::to_string);
    let found = mounts
        .iter()
        .find(|(dir, size)| size_of(*size) == kb && wanted.as_ref().is_none_or(|w| w == dir));
    if let Some((dir, _)) = found {
        println!("hugetlbfs: {kb} kB pages mounted at {dir}");
        return Ok(());
    }
    let dir = wanted.unwrap_or_else(|| {
        if kb == default_kb {
            "/dev/hugepages".into()
        } else {
            format!("/dev/hugepages-{}", human(kb))
        }
    });
    steps.take(
        &format!("mount hugetlbfs (pagesize={}) at {dir}", human(kb)),
        || {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {dir}"))?;
            let status = std::process::Command::new("mount")
                .args([
                    "-t",
                    "hugetlbfs",
                    "-o",
                    &format!("pagesize={kb}K"),
                    "nodev",
                    &dir,
                ])
                .status()
                .context("running mount")?;
            if !status.success() {
                bail!("mount -t hugetlbfs at {dir} failed ({status})");
            }
            Ok(())
        },
    )
}

/// The PCI address a port's device names (`0000:03:00.0`, `03:00.0`, with or without
/// device arguments after a comma), in the kernel's full form; None for a vdev.
pub fn pci_address(device: &str) -> Option<String> {
    let addr = device.split(',').next()?.trim();
    let parts: Vec<&str> = addr.split(':').collect();
    let (domain, bus, rest) = match parts.as_slice() {
        [d, b, r] => (*d, *b, *r),
        [b, r] => ("0000", *b, *r),
        _ => return None,
    };
    let (dev, func) = rest.split_once('.')?;
    let hex = |s: &str, max_len: usize| {
        !s.is_empty() && s.len() <= max_len && s.chars().all(|c| c.is_ascii_hexdigit())
    };
    if !(hex(domain, 4) && hex(bus, 2) && hex(dev, 2) && hex(func, 1)) {
        return None;
    }
    Some(format!("{:0>4}:{:0>2}:{:0>2}.{func}", domain, bus, dev).to_lowercase())
}

/// The driver a PCI device is bound to.
fn driver(addr: &str) -> Option<String> {
    let link = std::fs::read_link(format!("{PCI}/devices/{addr}/driver")).ok()?;
    Some(link.file_name()?.to_string_lossy().into_owned())
}

/// The kernel network interfaces of a PCI device (directly, or through a virtio
/// device under it), with whether each is up.
fn interfaces(dev: &Path) -> Vec<(String, bool)> {
    let mut nets = vec![dev.join("net")];
    if let Ok(children) = std::fs::read_dir(dev) {
        nets.extend(children.flatten().map(|c| c.path().join("net")));
    }
    let mut out = Vec::new();
    for net in nets {
        for e in std::fs::read_dir(&net).into_iter().flatten().flatten() {
            let state = std::fs::read_to_string(e.path().join("operstate")).unwrap_or_default();
            let flags = std::fs::read_to_string(e.path().join("flags")).unwrap_or_default();
            // IFF_UP (0x1): administratively up, whatever the link.
            let up = state.trim() == "up"
                || u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16)
                    .is_ok_and(|f| f & 1 == 1);
            out.push((e.file_name().to_string_lossy().into_owned(), up));
        }
    }
    out
}

fn bind(cfg: &Config, i: usize, name: &str, addr: &str, steps: &Steps) -> Result<()> {
    let dev = PathBuf::from(format!("{PCI}/devices/{addr}"));
    if !dev.exists() {
        bail!(
            "{}: key `ports[{i}].device`: port {name} names PCI device {addr}, which this \
             host does not have (`lspci -D` lists its devices)",
            cfg.file
        );
    }
    let current = driver(addr);
    if current.as_deref() == Some("vfio-pci") {
        println!("port {name}: PCI device {addr} is bound to vfio-pci");
        return Ok(());
    }
    if let Some((iface, _)) = interfaces(&dev).into_iter().find(|(_, up)| *up) {
        bail!(
            "port {name}: PCI device {addr} is the kernel's interface {iface}, which is up: \
             the host is using it. Take it down first (ip link set {iface} down) if it is \
             meant for cgnat"
        );
    }
    if !dev.join("iommu_group").exists() {
        bail!(
            "port {name}: PCI device {addr} is in no IOMMU group, so vfio-pci cannot take \
             it: turn the IOMMU on (intel_iommu=on or amd_iommu=on on the kernel command \
             line, and VT-d / AMD-Vi in the firmware)"
        );
    }
    if !Path::new(&format!("{PCI}/drivers/vfio-pci")).exists() {
        steps.take("load the vfio-pci module (modprobe vfio-pci)", || {
            let status = std::process::Command::new("modprobe")
                .arg("vfio-pci")
                .status()
                .context("running modprobe")?;
            if !status.success() {
                bail!("modprobe vfio-pci failed ({status})");
            }
            Ok(())
        })?;
    }
    let over = dev.join("driver_override");
    steps.take(&format!("write vfio-pci to {}", over.display()), || {
        write(&over, "vfio-pci")
    })?;
    if let Some(d) = &current {
        let unbind = dev.join("driver/unbind");
        steps.take(
            &format!(
                "unbind {addr} from {d} (write {addr} to {})",
                unbind.display()
            ),
            || write(&unbind, addr),
        )?;
    }
    let probe = format!("{PCI}/drivers_probe");
    steps.take(&format!("write {addr} to {probe}"), || {
        write(Path::new(&probe), addr)?;
        match driver(addr) {
            Some(d) if d == "vfio-pci" => Ok(()),
            other => bail!(
                "port {name}: PCI device {addr} is on {} after the probe, not vfio-pci",
                other.unwrap_or_else(|| "no driver".into())
            ),
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_addresses_in_the_kernels_form_and_vdevs_are_none() {
        assert_eq!(pci_address("0000:03:00.0"), Some("0000:03:00.0".into()));
        assert_eq!(pci_address("03:00.1"), Some("0000:03:00.1".into()));
        assert_eq!(
            pci_address("0000:AF:00.0,txq_inline_max=128"),
            Some("0000:af:00.0".into())
        );
        for vdev in [
            "net_pcap0,rx_pcap=a.pcap",
            "net_af_packet0,iface=eth0",
            "net_null0",
            "0000:03:00",
            "03:00.10",
            "zz:00.0",
        ] {
            assert_eq!(pci_address(vdev), None, "{vdev}");
        }
    }

    #[test]
    fn eal_values_in_every_spelling() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            eal_value(&args(&["-m", "512"]), Some("-m"), "--socket-mem"),
            Some("512")
        );
        assert_eq!(
            eal_value(&args(&["-m512"]), Some("-m"), "--socket-mem"),
            Some("512")
        );
        assert_eq!(
            eal_value(&args(&["--socket-mem=1024,0"]), Some("-m"), "--socket-mem"),
            Some("1024,0")
        );
        assert_eq!(
            eal_value(&args(&["--huge-dir", "/mnt/huge"]), None, "--huge-dir"),
            Some("/mnt/huge")
        );
        assert_eq!(
            eal_value(&args(&["--no-pci"]), Some("-m"), "--socket-mem"),
            None
        );
        assert_eq!(page_kb("2M").unwrap(), 2048);
        assert_eq!(page_kb("1G").unwrap(), 1 << 20);
        assert_eq!(page_kb("2048kB").unwrap(), 2048);
        assert!(page_kb("big").is_err());
        assert_eq!(human(2048), "2M");
        assert_eq!(human(1 << 20), "1G");
    }
}
