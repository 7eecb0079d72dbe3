//! `cgnat setup`: the huge pages a config needs (dry run, then for real with a pcap
//! run on the pages it reserved) and the checks before binding a PCI device to
//! vfio-pci. The real run changes the host's huge-page pool and hugetlbfs mounts and
//! puts them back as they were.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

/// The tests here read and change the host's huge-page pool: one at a time.
static HOST: Mutex<()> = Mutex::new(());

const PAGES_2M: &str = "/sys/kernel/mm/hugepages/hugepages-2048kB";

/// The tests' usual config with these `eal_args`, extra `[dataplane]` lines and
/// inside device.
fn config(eal_args: &str, dataplane_extra: &str, inside_device: &str) -> String {
    common::config_text("")
        .replacen(
            "[dataplane]\n",
            &format!("[dataplane]\neal_args = {eal_args}\n{dataplane_extra}\n"),
            1,
        )
        .replacen("\"net_null0\"", &format!("\"{inside_device}\""), 1)
}

fn write_config(name: &str, text: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("host-setup");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

fn setup(cfg: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cgnat"))
        .arg("setup")
        .arg("-c")
        .arg(cfg)
        .args(extra)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn num(path: &str) -> u64 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// The page count and MB of `huge pages: N of 2M` and `needs M MB`.
fn figures(out: &str) -> (u64, u64) {
    let after = |key: &str| -> u64 {
        let rest = &out[out
            .find(key)
            .unwrap_or_else(|| panic!("no `{key}` in:\n{out}"))
            + key.len()..];
        rest.split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    (after("huge pages: "), after("needs "))
}

#[test]
fn setup_dry_run_names_the_pages_a_config_needs_and_changes_nothing() {
    let _host = HOST.lock().unwrap_or_else(|e| e.into_inner());
    let before = (
        num(&format!("{PAGES_2M}/nr_hugepages")),
        num(&format!("{PAGES_2M}/free_hugepages")),
    );
    let mounts_before = std::fs::read_to_string("/proc/mounts").unwrap();

    // -m asks EAL for 4096 MB: 2048 pages of 2 MB, 4 of 1 GB.
    let cfg = write_config("m4096", &config(r#"["-m", "4096"]"#, "", "net_null0"));
    let o = setup(&cfg, &["--dry-run", "--page-size", "2M"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert_eq!(figures(&out), (2048, 4096), "{out}");
    let used = before.0 - before.1;
    let target = before.0.max(used + 2048);
    assert!(
        out.contains(&format!("would write {target} to {PAGES_2M}/nr_hugepages")),
        "{out}"
    );
    if std::path::Path::new("/sys/kernel/mm/hugepages/hugepages-1048576kB").exists() {
        let o = setup(&cfg, &["--dry-run", "--page-size", "1G"]);
        assert_eq!(figures(&text(&o)), (4, 4096), "{}", text(&o));
    }

    // --socket-mem: the sum over the sockets.
    let cfg = write_config(
        "socket-mem",
        &config(r#"["--socket-mem=1024,1024"]"#, "", "net_null0"),
    );
    let o = setup(&cfg, &["--dry-run", "--page-size", "2M"]);
    assert_eq!(figures(&text(&o)), (1024, 2048), "{}", text(&o));

    // No -m: the pool (65535 mbufs of 2176 bytes and their headers), queues and rings,
    // and EAL's own; a bigger pool needs more pages.
    let big = write_config("pool", &config("[]", "mbufs = 65535", "net_null0"));
    let o = setup(&big, &["--dry-run", "--page-size", "2M"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    let (pages, mb) = figures(&out);
    assert!(mb * (1 << 20) >= 65535 * 2176, "{out}");
    assert_eq!(pages, mb.div_ceil(2), "{out}");
    let small = write_config("small-pool", &config("[]", "mbufs = 2047", "net_null0"));
    let (small_pages, _) = figures(&text(&setup(&small, &["--dry-run", "--page-size", "2M"])));
    assert!(
        small_pages < pages,
        "{small_pages} pages for 2047 mbufs, {pages} for 65535"
    );

    // -m too small for the pool: the pool's figure, and a word about it.
    let cfg = write_config(
        "m-small",
        &config(r#"["-m", "64"]"#, "mbufs = 65535", "net_null0"),
    );
    let o = setup(&cfg, &["--dry-run", "--page-size", "2M"]);
    let out = text(&o);
    assert_eq!(figures(&out), (pages, mb), "{out}");
    assert!(
        out.contains("more than the 64 MB dataplane.eal_args gives EAL"),
        "{out}"
    );

    // --no-huge: nothing to reserve.
    let cfg = write_config(
        "no-huge",
        &config(r#"["--no-huge", "-m", "512"]"#, "", "net_null0"),
    );
    let o = setup(&cfg, &["--dry-run"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("--no-huge: the appliance takes no huge pages; nothing to reserve"));

    // A page size the kernel does not have.
    let o = setup(&big, &["--dry-run", "--page-size", "3M"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("no 3072 kB huge pages"), "{}", text(&o));

    assert_eq!(
        before,
        (
            num(&format!("{PAGES_2M}/nr_hugepages")),
            num(&format!("{PAGES_2M}/free_hugepages"))
        ),
        "a dry run changed the huge-page pool"
    );
    assert_eq!(
        mounts_before,
        std::fs::read_to_string("/proc/mounts").unwrap()
    );
}

/// Puts the host's 2 MB pool, the hugetlbfs mount and its directory back as they were.
struct Restore {
    nr: u64,
    /// The 2 MB hugetlbfs mount there was before the test, if any.
    mount: Option<String>,
    dir_existed: bool,
    /// The page files of the test's pcap run: (directory, name prefix).
    files: Option<(String, String)>,
}

impl Drop for Restore {
    fn drop(&mut self) {
        if let Some((dir, prefix)) = &self.files {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if e.file_name().to_string_lossy().starts_with(prefix.as_str()) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        if self.mount.is_none() {
            if let Some(dir) = mount_2m() {
                let _ = Command::new("umount").arg(&dir).status();
            }
        }
        if !self.dir_existed {
            let _ = std::fs::remove_dir("/dev/hugepages");
        }
        let _ = std::fs::write(format!("{PAGES_2M}/nr_hugepages"), self.nr.to_string());
    }
}

/// Where hugetlbfs with 2 MB pages is mounted (the pagesize option, or none where the
/// kernel's default is 2 MB).
fn mount_2m() -> Option<String> {
    let default_2m = std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Hugepagesize:") && l.contains(" 2048 kB"));
    std::fs::read_to_string("/proc/mounts")
        .unwrap()
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let size = f[3].split(',').find_map(|o| o.strip_prefix("pagesize="));
            (f[2] == "hugetlbfs" && (size == Some("2M") || (size.is_none() && default_2m)))
                .then(|| f[1].to_string())
        })
}

#[test]
fn setup_reserves_the_pages_a_pcap_run_then_runs_on() {
    let _host = HOST.lock().unwrap_or_else(|e| e.into_inner());
    if !Path::new(PAGES_2M).exists() {
        panic!("this kernel has no 2 MB huge pages ({PAGES_2M})");
    }
    let mut restore = Restore {
        nr: num(&format!("{PAGES_2M}/nr_hugepages")),
        mount: mount_2m(),
        dir_existed: Path::new("/dev/hugepages").exists(),
        files: None,
    };
    let used = restore.nr - num(&format!("{PAGES_2M}/free_hugepages"));
    // EAL takes the 96 MB of -m at start, from huge pages: 48 of 2 MB.
    let cfg = write_config(
        "real",
        &config(r#"["-m", "96", "--no-pci"]"#, "mbufs = 2047", "net_null0"),
    );
    let o = setup(&cfg, &["--page-size", "2M"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert_eq!(figures(&out), (48, 96), "{out}");
    let nr = num(&format!("{PAGES_2M}/nr_hugepages"));
    assert!(
        nr >= used + 48,
        "{nr} pages reserved, {used} in use before:\n{out}"
    );
    let dir = mount_2m().unwrap_or_else(|| panic!("no hugetlbfs of 2 MB pages mounted:\n{out}"));
    // A second run finds the pages free and leaves the pool alone.
    let o = setup(&cfg, &["--page-size", "2M"]);
    assert!(
        text(&o).contains("enough are free; nothing to reserve"),
        "{}",
        text(&o)
    );
    assert_eq!(num(&format!("{PAGES_2M}/nr_hugepages")), nr);

    // cgnat on those pages: pcap mode, with huge pages (no --no-huge).
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("host-setup-run");
    let _ = std::fs::remove_dir_all(&out_dir);
    let child = Command::new(env!("CARGO_BIN_EXE_cgnat"))
        .args(["pcap", "-c"])
        .arg(&cfg)
        .arg("--inside")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../samples/subscribers.pcap"
        ))
        .arg("--out-dir")
        .arg(&out_dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // pcap mode's EAL file prefix is cgnat-PID; its page files stay after it ends.
    let prefix = format!("cgnat-{}map_", child.id());
    restore.files = Some((dir.clone(), prefix.clone()));
    let run = child.wait_with_output().unwrap();
    assert!(run.status.success(), "{}", text(&run));
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert!(summary["workers"] == 1, "{summary}");
    // EAL maps pages of the kernel's default size: 48 files where that is 2 MB.
    if std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .contains("Hugepagesize:       2048 kB")
    {
        let files = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .count();
        assert_eq!(
            files, 48,
            "EAL mapped {files} huge pages in {dir}, not the 48 of -m 96"
        );
    }
}

#[test]
fn setup_bind_checks_the_device_before_touching_it() {
    let _host = HOST.lock().unwrap_or_else(|e| e.into_inner());
    // A PCI address this host does not have: the config's key, and lspci.
    let cfg = write_config(
        "no-such-pci",
        &config(r#"["--no-huge"]"#, "", "0000:ff:1f.7"),
    );
    let o = setup(&cfg, &["--dry-run", "--bind"]);
    assert!(!o.status.success());
    let out = text(&o);
    assert!(
        out.contains("key `ports[0].device`: port inside names PCI device 0000:ff:1f.7, which this host does not have"),
        "{out}"
    );
    // Without --bind the device is not looked at.
    let o = setup(&cfg, &["--dry-run"]);
    assert!(o.status.success(), "{}", text(&o));

    // A NIC the host is using (its interface is up) is refused, even in a dry run.
    let up = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .find_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let dev = std::fs::canonicalize(e.path().join("device")).ok()?;
            let state = std::fs::read_to_string(e.path().join("operstate")).ok()?;
            // The PCI device: the interface's device, or its parent (virtio).
            let pci = [dev.clone(), dev.parent()?.to_path_buf()]
                .into_iter()
                .find(|d| d.join("config").exists() && d.to_string_lossy().contains("/pci"))?;
            let addr = pci.file_name()?.to_string_lossy().into_owned();
            (state.trim() == "up").then_some((name, addr))
        });
    match up {
        Some((iface, addr)) => {
            let cfg = write_config("up-nic", &config(r#"["--no-huge"]"#, "", &addr));
            let driver_before =
                std::fs::read_link(format!("/sys/bus/pci/devices/{addr}/driver")).ok();
            let o = setup(&cfg, &["--dry-run", "--bind"]);
            let out = text(&o);
            assert!(!o.status.success(), "{out}");
            assert!(
                out.contains(&format!(
                    "PCI device {addr} is the kernel's interface {iface}, which is up"
                )),
                "{out}"
            );
            assert_eq!(
                driver_before,
                std::fs::read_link(format!("/sys/bus/pci/devices/{addr}/driver")).ok()
            );
        }
        None => eprintln!("no PCI NIC with an interface up on this host: that check is not run"),
    }
}
