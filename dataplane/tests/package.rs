//! The Debian package: `make deb` builds it from this build's binary, its contents and
//! Depends are checked, it installs with apt-get, and its units' command lines run as
//! systemd would run them (no systemd here): setup, the check before the start, the
//! start, a reload, a stop; `systemd-analyze verify` checks the units. The package is
//! purged at the end, leaving the host as it was. Needs root and apt.

mod common;

use std::collections::HashMap;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const CONFIG: &str = "/etc/cgnat/cgnat.toml";
const UNIT_DIR: &str = "/lib/systemd/system";

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn installed(pkg: &str) -> bool {
    text(&run("dpkg-query", &["-W", "-f=${Status}", pkg])).contains("install ok installed")
}

/// Purges the package when the test ends, passed or not.
struct Purge {
    etc_cgnat_existed: bool,
}

impl Drop for Purge {
    fn drop(&mut self) {
        let o = run(
            "apt-get",
            &["purge", "-y", "-o", "DPkg::Lock::Timeout=120", "cgnat"],
        );
        if std::thread::panicking() {
            if !o.status.success() {
                eprintln!("apt-get purge cgnat:\n{}", text(&o));
            }
            return;
        }
        assert!(o.status.success(), "apt-get purge cgnat:\n{}", text(&o));
        assert!(!installed("cgnat"), "cgnat still installed after the purge");
        for gone in [
            "/usr/bin/cgnat",
            "/lib/systemd/system/cgnat.service",
            "/lib/systemd/system/cgnat-setup.service",
            "/etc/default/cgnat",
            "/usr/share/doc/cgnat",
            "/usr/share/man/man8/cgnat.8.gz",
            "/etc/systemd/system/multi-user.target.wants/cgnat.service",
            "/etc/systemd/system/multi-user.target.wants/cgnat-setup.service",
            "/var/lib/systemd/deb-systemd-helper-enabled/cgnat.service.dsh-also",
        ] {
            assert!(
                std::fs::symlink_metadata(gone).is_err(),
                "{gone} is left after the purge"
            );
        }
        if !self.etc_cgnat_existed {
            assert!(!Path::new("/etc/cgnat").exists(), "/etc/cgnat is left");
        }
    }
}

/// A unit file's `[Service]`, `[Unit]` and `[Install]` keys (a key given twice keeps both).
fn unit(path: &str) -> HashMap<String, Vec<String>> {
    let body = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut keys: HashMap<String, Vec<String>> = HashMap::new();
    let mut section = String::new();
    for line in body.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            section = line.trim_matches(|c| c == '[' || c == ']').to_string();
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{path}: `{line}` is not KEY=VALUE"));
        keys.entry(format!("{section}.{}", k.trim()))
            .or_default()
            .push(v.trim().to_string());
    }
    keys
}

fn one<'a>(u: &'a HashMap<String, Vec<String>>, key: &str) -> &'a str {
    match u.get(key).map(Vec::as_slice) {
        Some([v]) => v,
        other => panic!("{key}: {other:?}, not one value"),
    }
}

/// An EnvironmentFile's assignments (KEY="VALUE" lines).
fn environment(path: &str) -> HashMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_string(), v.trim_matches('"').to_string())
        })
        .collect()
}

/// A command line of a unit as systemd runs it: split into words, `$VAR` replaced by
/// the words of its value, `${VAR}` by its value as one word; then the config path
/// replaced by the test's.
fn command(line: &str, env: &HashMap<String, String>, config: &Path) -> Vec<String> {
    assert!(
        !line.starts_with(['-', '@', '+', '!', ':']),
        "`{line}`: a prefix the test does not handle"
    );
    let mut words = Vec::new();
    for w in line.split_whitespace() {
        if let Some(name) = w.strip_prefix("${").and_then(|n| n.strip_suffix('}')) {
            words.push(env.get(name).cloned().unwrap_or_default());
        } else if let Some(name) = w.strip_prefix('$') {
            let v = env
                .get(name)
                .unwrap_or_else(|| panic!("`{line}`: ${name} is not set"));
            words.extend(v.split_whitespace().map(str::to_string));
        } else if w == CONFIG {
            words.push(config.display().to_string());
        } else {
            words.push(w.to_string());
        }
    }
    words
}

fn exec(words: &[String]) -> Output {
    Command::new(&words[0])
        .args(&words[1..])
        .output()
        .unwrap_or_else(|e| panic!("{words:?}: {e}"))
}

fn spawn(words: &[String], log: &Path) -> Child {
    Command::new(&words[0])
        .args(&words[1..])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("{words:?}: {e}"))
}

/// Waits until the running cgnat's control API answers (the start is done).
fn wait_api(child: &mut Child, api: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            panic!(
                "cgnat run ended ({s}) before its API answered:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        let o = run(
            "/usr/bin/cgnat",
            &["show", "counters", "--api", api, "--timeout", "2"],
        );
        if o.status.success() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the API at {api} did not answer in 60 s: {}",
            text(&o)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Packages that hold the libraries `bin` links directly (its NEEDED entries, found
/// where the loader finds them).
fn linked_packages(bin: &str) -> Vec<String> {
    let needed: Vec<String> = text(&run("readelf", &["-d", bin]))
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| Some(l.split('[').nth(1)?.trim_end_matches(']').to_string()))
        .collect();
    assert!(!needed.is_empty(), "readelf found no NEEDED in {bin}");
    let ldd = text(&run("ldd", &[bin]));
    let mut pkgs = Vec::new();
    for line in ldd.lines() {
        let Some((name, rest)) = line.split_once("=>") else {
            continue;
        };
        let Some(path) = rest.split_whitespace().next() else {
            continue;
        };
        if !needed.iter().any(|n| n == name.trim()) {
            continue;
        }
        // dpkg records a file under /usr/lib or under the /lib alias (merged /usr).
        let real = std::fs::canonicalize(path).unwrap().display().to_string();
        let o = [real.as_str(), real.trim_start_matches("/usr"), path]
            .iter()
            .map(|p| run("dpkg", &["-S", p]))
            .find(|o| o.status.success())
            .unwrap_or_else(|| panic!("no package holds {real}"));
        let pkg = text(&o).split(':').next().unwrap().to_string();
        if !pkgs.contains(&pkg) {
            pkgs.push(pkg);
        }
    }
    pkgs
}

#[test]
fn make_deb_builds_a_package_that_installs_and_whose_units_run() {
    assert!(
        !installed("cgnat"),
        "a cgnat package is installed on this host: the test would replace and purge it"
    );
    let repo = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("package");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let bin = env!("CARGO_BIN_EXE_cgnat");

    // `make deb` on this build's binary (gzip: the debug binary is large for xz).
    let deb_dir = dir.join("deb");
    let o = Command::new("make")
        .current_dir(&repo)
        .arg("deb")
        .arg(format!("CGNAT_BIN={bin}"))
        .arg(format!("DEB_DIR={}", deb_dir.display()))
        .env("DEB_COMPRESS", "gzip")
        .output()
        .unwrap();
    assert!(o.status.success(), "make deb:\n{}", text(&o));
    let arch = text(&run("dpkg", &["--print-architecture"]))
        .trim()
        .to_string();
    let deb = deb_dir.join(format!("cgnat_{}_{arch}.deb", env!("CARGO_PKG_VERSION")));
    assert!(deb.exists(), "no {}:\n{}", deb.display(), text(&o));
    let deb = deb.display().to_string();

    // Its files.
    let contents = text(&run("dpkg-deb", &["-c", &deb]));
    let mut files = vec![
        "./usr/bin/cgnat".to_string(),
        "./lib/systemd/system/cgnat.service".into(),
        "./lib/systemd/system/cgnat-setup.service".into(),
        "./etc/default/cgnat".into(),
        "./usr/share/man/man8/cgnat.8.gz".into(),
        "./usr/share/doc/cgnat/README.md.gz".into(),
        "./usr/share/doc/cgnat/copyright".into(),
    ];
    for e in std::fs::read_dir(repo.join("config/examples"))
        .unwrap()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        files.push(format!("./usr/share/doc/cgnat/examples/{name}"));
    }
    for f in &files {
        assert!(
            contents.lines().any(|l| l.ends_with(&format!(" {f}"))),
            "{f} is not in the package:\n{contents}"
        );
    }
    // Depends: the packages of every library the binary links, and the DPDK plugins
    // EAL loads for the pool and the vdevs.
    let info = text(&run("dpkg-deb", &["-I", &deb]));
    let depends = info
        .lines()
        .find_map(|l| l.trim().strip_prefix("Depends: "))
        .unwrap_or_else(|| panic!("no Depends:\n{info}"));
    let names: Vec<&str> = depends
        .split(',')
        .map(|d| d.split_whitespace().next().unwrap())
        .collect();
    for pkg in linked_packages(bin) {
        assert!(
            names.contains(&pkg.as_str()),
            "Depends lacks {pkg}: {depends}"
        );
    }
    for pkg in [
        "librte-mempool-ring23",
        "librte-net-pcap23",
        "librte-bus-pci23",
    ] {
        assert!(names.contains(&pkg), "Depends lacks {pkg}: {depends}");
    }
    assert!(
        names.iter().any(|n| n.starts_with("librte-eal")),
        "{depends}"
    );

    // It installs.
    let purge = Purge {
        etc_cgnat_existed: Path::new("/etc/cgnat").exists(),
    };
    let o = run(
        "apt-get",
        &["install", "-y", "-o", "DPkg::Lock::Timeout=120", &deb],
    );
    assert!(o.status.success(), "apt-get install:\n{}", text(&o));
    assert!(installed("cgnat"));
    let v = run("/usr/bin/cgnat", &["--version"]);
    assert_eq!(
        text(&v).trim(),
        format!("cgnat {}", env!("CARGO_PKG_VERSION"))
    );

    // The man page: from the binary's help, one section per command, clean roff.
    let man = Command::new("sh")
        .args(["-c", "zcat /usr/share/man/man8/cgnat.8.gz"])
        .output()
        .unwrap();
    let roff = String::from_utf8_lossy(&man.stdout).into_owned();
    for cmd in ["run", "pcap", "replay", "check", "show", "map", "setup"] {
        assert!(
            roff.contains(&format!(".SS {cmd}\n")),
            "no {cmd} in the man page:\n{roff}"
        );
    }
    assert!(roff.contains(r"\-\-dry\-run prints each step"), "{roff}");
    std::fs::write(dir.join("cgnat.8"), &roff).unwrap();
    let g = run(
        "groff",
        &[
            "-man",
            "-ww",
            "-z",
            &dir.join("cgnat.8").display().to_string(),
        ],
    );
    assert!(
        g.status.success() && text(&g).is_empty(),
        "groff: {}",
        text(&g)
    );

    // The units, and every file they name.
    let main = unit(&format!("{UNIT_DIR}/cgnat.service"));
    let setup = unit(&format!("{UNIT_DIR}/cgnat-setup.service"));
    assert_eq!(one(&main, "Service.Restart"), "on-failure");
    assert_eq!(
        one(&main, "Service.ExecStartPre"),
        format!("/usr/bin/cgnat check -c {CONFIG}")
    );
    assert_eq!(
        one(&main, "Service.ExecStart"),
        format!("/usr/bin/cgnat run -c {CONFIG}")
    );
    assert_eq!(one(&main, "Service.ExecReload"), "/bin/kill -HUP $MAINPID");
    assert!(one(&main, "Unit.Requires").contains("cgnat-setup.service"));
    assert!(one(&main, "Unit.After").contains("cgnat-setup.service"));
    assert_eq!(one(&setup, "Service.Type"), "oneshot");
    assert!(one(&setup, "Unit.Before").contains("cgnat.service"));
    let env_file = one(&setup, "Service.EnvironmentFile").trim_start_matches('-');
    for u in [&main, &setup] {
        for (k, vs) in u.iter() {
            for v in vs {
                if k.starts_with("Service.Exec") {
                    let exe = v.split_whitespace().next().unwrap();
                    assert!(Path::new(exe).is_file(), "{k}={v}: {exe} is missing");
                }
                if k == "Unit.Documentation" {
                    assert_eq!(v, "man:cgnat(8)");
                }
            }
        }
    }
    assert!(Path::new(env_file).is_file(), "{env_file} is missing");
    assert!(Path::new("/usr/share/man/man8/cgnat.8.gz").is_file());
    if run("sh", &["-c", "command -v systemd-analyze"])
        .status
        .success()
    {
        let o = run(
            "systemd-analyze",
            &[
                "verify",
                &format!("{UNIT_DIR}/cgnat.service"),
                &format!("{UNIT_DIR}/cgnat-setup.service"),
            ],
        );
        let t = text(&o);
        assert!(
            o.status.success() && !t.contains("cgnat"),
            "systemd-analyze verify:\n{t}"
        );
    }

    // The command lines, as systemd runs them, on a config of the test's (net_pcap
    // ports on empty captures, no huge pages) in place of /etc/cgnat/cgnat.toml.
    let env = environment(env_file);
    common::write_pcap(&dir.join("none.pcap"), &[]);
    let api = format!("127.0.0.1:{}", common::free_port());
    let cfg_text = common::config_text(&format!(
        "[api]\nlisten = \"{api}\"\n[metrics]\nlisten = \"off\"\n"
    ))
    .replacen(
        "[dataplane]\n",
        &format!(
            "[dataplane]\neal_args = [\"--no-huge\", \"-m\", \"256\", \"--no-pci\", \
             \"--no-shconf\", \"--file-prefix=cgnat-package-{}\"]\n",
            std::process::id()
        ),
        1,
    )
    .replace(
        "\"net_null0\"",
        &format!(
            "\"net_pcap0,rx_pcap={0}/none.pcap,tx_pcap={0}/in-tx.pcap\"",
            dir.display()
        ),
    )
    .replace(
        "\"net_null1\"",
        &format!(
            "\"net_pcap1,rx_pcap={0}/none.pcap,tx_pcap={0}/out-tx.pcap\"",
            dir.display()
        ),
    );
    let cfg = dir.join("cgnat.toml");
    std::fs::write(&cfg, &cfg_text).unwrap();

    // cgnat-setup.service: nothing to reserve for a config without huge pages.
    let o = exec(&command(one(&setup, "Service.ExecStart"), &env, &cfg));
    assert!(o.status.success(), "setup: {}", text(&o));
    assert!(text(&o).contains("nothing to reserve"), "{}", text(&o));

    // ExecStartPre stops a bad file before the start, naming its key.
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, cfg_text.replace("worker_lcores", "worker_cores")).unwrap();
    let o = exec(&command(one(&main, "Service.ExecStartPre"), &env, &bad));
    assert!(!o.status.success(), "check passed a bad file: {}", text(&o));
    assert!(text(&o).contains("worker_cores"), "{}", text(&o));
    let o = exec(&command(one(&main, "Service.ExecStartPre"), &env, &cfg));
    assert!(o.status.success(), "check: {}", text(&o));

    // ExecStart runs until systemd's stop (SIGTERM), which ends it cleanly: exit 0,
    // so Restart=on-failure does not restart it.
    let start = command(one(&main, "Service.ExecStart"), &env, &cfg);
    let log = dir.join("run.log");
    let mut child = spawn(&start, &log);
    wait_api(&mut child, &api, &log);
    assert!(run("/bin/kill", &["-TERM", &child.id().to_string()])
        .status
        .success());
    let status =
        common::exit_within(&mut child, Duration::from_secs(30)).expect("no exit after SIGTERM");
    assert_eq!(
        status.code(),
        Some(0),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );

    // ExecReload with $MAINPID: the signal reaches the running cgnat, which re-reads
    // its file (and says so) and keeps running and serving.
    let mut child = spawn(&start, &log);
    wait_api(&mut child, &api, &log);
    let mut env_pid = env.clone();
    env_pid.insert("MAINPID".into(), child.id().to_string());
    let o = exec(&command(one(&main, "Service.ExecReload"), &env_pid, &cfg));
    assert!(o.status.success(), "reload: {}", text(&o));
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("cgnat: reload (SIGHUP)")
    {
        assert!(
            child.try_wait().unwrap().is_none(),
            "SIGHUP ended cgnat: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        assert!(
            std::time::Instant::now() < deadline,
            "no reload after ExecReload's SIGHUP: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_api(&mut child, &api, &log);
    child.kill().unwrap();
    child.wait().unwrap();
    drop(purge);
}
