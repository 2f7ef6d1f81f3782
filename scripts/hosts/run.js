#!/usr/bin/env node
// `npm run test:hosts`: boots the systemd test host (a Debian 12 guest under QEMU/TCG, see README "Test hosts")
// and runs the guest tests in it; exits with their status. The image (root.img, vmlinuz, initrd.img) is built
// by build-image.sh (and initrd.sh) once and cached under $TSRUN_HOSTS_CACHE (default /var/cache/tsrun-hosts), keyed by a hash
// of that script and of the host's node binary; each boot writes to a throwaway qcow2 overlay, so the image
// itself never changes. The project goes in as one tar through a 9p share, together with guest.sh (what this
// boot runs) and a static probe; the guest writes its TAP results and exit status back into the share.
//
//   node scripts/hosts/run.js                    the guest suite (dist/test/hosts/ and the files in GUEST_TESTS)
//   node scripts/hosts/run.js --cmd "CMD"        one shell command in /tsrun inside the guest (TSRUN_GUEST=1)
//   node scripts/hosts/run.js --shell            an interactive root shell on the guest's serial console
//   node scripts/hosts/run.js -- FILE...         these test files (paths under dist/) instead of the suite
// Options: --rebuild (build the image again), --smp N (default 2), --mem MiB (default 3072),
// --timeout SECONDS (the boot and the run, default 1500), --no-build-snapshot (keep the host's dist/tsrun.blob).
// Only one guest runs at a time on a machine: the run holds a lock (flock(1)) on the cache directory.
"use strict";
const { spawn, spawnSync, execFileSync } = require("child_process");
const crypto = require("crypto");
const fs = require("fs");
const os = require("os");
const path = require("path");

const REPO = path.resolve(__dirname, "..", "..");
const CACHE = process.env.TSRUN_HOSTS_CACHE || "/var/cache/tsrun-hosts";
// What the guest runs by default. Existing files were tried there and cannot pass as they are:
// lifecycle.test.js reads v1 paths (/sys/fs/cgroup/memory/...), api.test.js asserts event-loop stalls under
// 2 s (node is ~25x slower under TCG), cgroups-v2.test.js re-mounts cgroup2 on /sys/fs/cgroup (EBUSY where it
// already is; test/hosts/v2-scenarios.test.ts runs its scenarios directly instead).
const GUEST_TESTS = ["dist/test/hosts/"];
const KERNEL_ARGS = [
  "console=ttyS0",
  "root=/dev/vda",
  "rw",
  "quiet",
  "loglevel=3",
  "panic=-1",
  "systemd.unified_cgroup_hierarchy=1",
  "apparmor=1",
  "security=apparmor",
  "systemd.show_status=error",
];

function usage(msg) {
  if (msg) console.error(`test:hosts: ${msg}`);
  console.error("usage: run.js [--cmd CMD | --shell | -- FILE...] [--rebuild] [--smp N] [--mem MiB] [--timeout S] [--no-build-snapshot]");
  process.exit(2);
}

function parseArgs(argv) {
  const o = { cmd: undefined, shell: false, files: [], rebuild: false, smp: 2, mem: 3072, timeout: 1500, snapshot: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => (i + 1 < argv.length ? argv[++i] : usage(`${a} needs a value`));
    if (a === "--cmd") o.cmd = val();
    else if (a === "--shell") o.shell = true;
    else if (a === "--rebuild") o.rebuild = true;
    else if (a === "--no-build-snapshot") o.snapshot = false;
    else if (a === "--smp") o.smp = Number(val());
    else if (a === "--mem") o.mem = Number(val());
    else if (a === "--timeout") o.timeout = Number(val());
    else if (a === "--") o.files.push(...argv.slice(i + 1)), (i = argv.length);
    else usage(`unknown argument ${a}`);
  }
  if ([o.smp, o.mem, o.timeout].some((n) => !Number.isInteger(n) || n <= 0)) usage("--smp, --mem and --timeout take positive integers");
  if ((o.cmd !== undefined) + o.shell + (o.files.length > 0) > 1) usage("--cmd, --shell and test files exclude each other");
  return o;
}

const t0 = Date.now();
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(0)}s`;
const log = (m) => console.log(`test:hosts: ${m} [${elapsed()}]`);

function need(cmds, pkgs) {
  const missing = cmds.filter((c) => spawnSync("sh", ["-c", `command -v ${c}`]).status !== 0);
  if (missing.length) {
    console.error(`test:hosts: needs ${missing.join(", ")} (apt-get install ${pkgs})`);
    process.exit(1);
  }
}

// The image's key: what goes into it (the build script, the host's node binary that is copied in). The initrd
// has a key of its own (ensureInitrd).
function imageKey() {
  const h = crypto.createHash("sha256");
  h.update(fs.readFileSync(path.join(__dirname, "build-image.sh")));
  const node = fs.realpathSync(process.execPath);
  const st = fs.statSync(node);
  h.update(`${node} ${st.size} ${Math.floor(st.mtimeMs / 1000)} ${process.version}`);
  return h.digest("hex").slice(0, 16);
}

function ensureImage(rebuild) {
  const dir = path.join(CACHE, `bookworm-${imageKey()}`);
  const files = ["root.img", "vmlinuz", "kernel.txt"];
  if (!rebuild && files.every((f) => fs.existsSync(path.join(dir, f)))) {
    log(`image ${dir} (cached; kernel ${fs.readFileSync(path.join(dir, "kernel.txt"), "utf8").trim()})`);
    ensureInitrd(dir);
    return dir;
  }
  log(`building the image into ${dir} (about 5 minutes)`);
  const tmp = `${dir}.tmp`;
  fs.rmSync(tmp, { recursive: true, force: true });
  const r = spawnSync("bash", [path.join(__dirname, "build-image.sh"), tmp], { stdio: "inherit" });
  if (r.status !== 0) {
    fs.rmSync(tmp, { recursive: true, force: true });
    console.error("test:hosts: the image build failed");
    process.exit(1);
  }
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(tmp, dir);
  // images of older keys are this script's own: drop them
  for (const e of fs.readdirSync(CACHE)) if (e.startsWith("bookworm-") && path.join(CACHE, e) !== dir) fs.rmSync(path.join(CACHE, e), { recursive: true, force: true });
  log("image built");
  ensureInitrd(dir);
  return dir;
}

// The initrd is made from the image by initrd.sh (seconds), again whenever that script changes.
function ensureInitrd(dir) {
  const key = crypto.createHash("sha256").update(fs.readFileSync(path.join(__dirname, "initrd.sh"))).digest("hex").slice(0, 16);
  const keyFile = path.join(dir, "initrd.key");
  if (fs.existsSync(path.join(dir, "initrd.img")) && fs.existsSync(keyFile) && fs.readFileSync(keyFile, "utf8").trim() === key) return;
  const r = spawnSync("bash", [path.join(__dirname, "initrd.sh"), dir], { stdio: "inherit" });
  if (r.status !== 0) {
    console.error("test:hosts: the initrd build failed");
    process.exit(1);
  }
  fs.writeFileSync(keyFile, `${key}\n`);
}

// What the guest runs after boot, from the share (mounted at /mnt/host by the image's tsrun-guest.service).
function guestScript(o) {
  const facts = [
    'echo "guest: kernel $(uname -r), $(systemctl --version | head -1), PID 1 $(cat /proc/1/comm)"',
    'echo "guest: cgroup controllers: $(cat /sys/fs/cgroup/cgroup.controllers) (root subtree_control: $(cat /sys/fs/cgroup/cgroup.subtree_control))"',
    'echo "guest: AppArmor enabled: $(cat /sys/module/apparmor/parameters/enabled 2>/dev/null || echo no), $(tr -d "\\n" </sys/kernel/security/lsm 2>/dev/null)"',
    'echo "guest: node $(node -v), $(nproc) cpus, $(($(sed -n "s/MemTotal: *\\([0-9]*\\).*/\\1/p" /proc/meminfo) / 1024)) MiB"',
  ];
  const prepare = [
    "t=$(date +%s)",
    "mkdir -p /tsrun && tar -xf /mnt/host/project.tar -C /tsrun || exit 1",
    "install -m 755 /mnt/host/probe /usr/local/bin/tsrun-probe",
    "cd /tsrun",
    o.snapshot ? "node scripts/snapshot.js && node scripts/snapshot-shim.js || exit 1" : ":",
    'echo "guest: project unpacked${TSRUN_SNAPSHOT:+ and snapshot rebuilt} in $(($(date +%s) - t))s"',
    "export TSRUN_GUEST=1 TSRUN_TEST_PROBE=/usr/local/bin/tsrun-probe",
  ];
  let body;
  if (o.shell) {
    body = ['echo "guest: a root shell in /tsrun; exit to power off"', "setsid -c bash -l </dev/ttyS0 >/dev/ttyS0 2>&1", "echo $? >/mnt/host/status"];
  } else if (o.cmd !== undefined) {
    fs.writeFileSync(path.join(o.share, "cmd.sh"), `${o.cmd}\n`);
    body = ["sh /mnt/host/cmd.sh", "echo $? >/mnt/host/status"];
  } else {
    const files = o.files.length ? o.files : GUEST_TESTS;
    body = [
      `echo "guest: node --test ${files.join(" ")}"`,
      `node --test --test-concurrency=1 --test-reporter=spec --test-reporter-destination=stdout --test-reporter=tap --test-reporter-destination=/mnt/host/results.tap ${files.map((f) => `'${f}'`).join(" ")}`,
      "echo $? >/mnt/host/status",
    ];
  }
  return ["#!/bin/sh", "# written by scripts/hosts/run.js for one boot", "export TSRUN_SNAPSHOT=" + (o.snapshot ? "1" : ""), ...facts, ...prepare, ...body, "# the results are on the share (9p, no cache); the root disk is a throwaway overlay", "systemctl --force --force poweroff", ""].join("\n");
}

function projectTar(share) {
  // One file: many small ones over 9p take minutes. The build's objects and the host's snapshot stay out.
  execFileSync("tar", ["-cf", path.join(share, "project.tar"), "--exclude=./.git", "--exclude=./build/Release/obj.target", "--exclude=./build/Release/.deps", "--exclude=./dist/tsrun.blob", "--exclude=./dist/tsrun.blob.node", "--exclude=./dist/containerd-shim-tsrun-v2.blob", "--exclude=./node_modules/typescript", "--exclude=./node_modules/@types", "-C", REPO, "."]);
  execFileSync("cc", ["-static", "-O2", "-o", path.join(share, "probe"), path.join(REPO, "spec-tests", "probe", "probe.c")]);
}

async function boot(image, o) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tsrun-hosts-"));
  const share = path.join(tmp, "share");
  fs.mkdirSync(share);
  o.share = share;
  const consoleLog = path.join(tmp, "console.log");
  let qemu;
  let finished = false;
  const killQemu = () => {
    if (qemu && qemu.exitCode === null && qemu.signalCode === null) {
      try {
        process.kill(-qemu.pid, "SIGKILL");
      } catch {
        /* gone already */
      }
    }
  };
  const cleanupTmp = () => {
    killQemu();
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  const onSignal = (sig) => {
    console.error(`test:hosts: ${sig}: stopping the guest`);
    cleanupTmp();
    process.exit(130);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    projectTar(share);
    fs.writeFileSync(path.join(share, "guest.sh"), guestScript(o));
    const overlay = path.join(tmp, "root.qcow2");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", path.join(image, "root.img"), "-F", "raw", overlay]);
    const args = [
      "-n", "10", "qemu-system-x86_64",
      "-accel", "tcg,thread=multi", "-cpu", "max", "-smp", String(o.smp), "-m", String(o.mem),
      "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
      "-kernel", path.join(image, "vmlinuz"), "-initrd", path.join(image, "initrd.img"), "-append", KERNEL_ARGS.join(" "),
      "-drive", `file=${overlay},if=virtio,format=qcow2,cache=unsafe,discard=unmap`,
      "-virtfs", `local,path=${share},mount_tag=host,security_model=none,id=host`,
      "-device", "virtio-rng-pci",
      "-serial", o.shell ? "mon:stdio" : `file:${consoleLog}`,
    ];
    log(`booting (qemu, TCG, ${o.smp} cpus, ${o.mem} MiB)`);
    const bootAt = Date.now();
    // own process group: a timeout kills QEMU and anything it started, nothing else
    qemu = spawn("nice", args, { stdio: o.shell ? "inherit" : ["ignore", "inherit", "inherit"], detached: true });
    const exited = new Promise((resolve) => qemu.on("exit", (code, signal) => resolve({ code, signal })));
    let pos = 0;
    let sawGuest = false;
    const pump = () => {
      if (o.shell || !fs.existsSync(consoleLog)) return;
      const buf = fs.readFileSync(consoleLog);
      if (buf.length <= pos) return;
      const text = buf.subarray(pos).toString("utf8").replace(/\r/g, "");
      pos = buf.length;
      if (!sawGuest && text.includes("guest: kernel")) {
        sawGuest = true;
        log(`booted in ${((Date.now() - bootAt) / 1000).toFixed(0)}s`);
      }
      process.stdout.write(text);
    };
    // once the status is on the share the guest has nothing left to do: a power-off that hangs is cut short
    let statusSeen = 0;
    const ticker = setInterval(() => {
      pump();
      if (!statusSeen && fs.existsSync(path.join(share, "status"))) statusSeen = Date.now();
      if (statusSeen && Date.now() - statusSeen > 30_000 && !finished) {
        log("the guest did not power off 30 s after its result: killing it");
        finished = true;
        killQemu();
      }
    }, 500);
    const timer = setTimeout(() => {
      if (!finished) {
        console.error(`test:hosts: timed out after ${o.timeout}s: killing the guest`);
        killQemu();
      }
    }, o.timeout * 1000);
    const { code, signal } = await exited;
    finished = true;
    clearTimeout(timer);
    clearInterval(ticker);
    pump();
    // the last run's console and results stay in the cache for a look afterwards
    const last = path.join(CACHE, "last");
    fs.rmSync(last, { recursive: true, force: true });
    fs.mkdirSync(last, { recursive: true });
    for (const f of ["results.tap", "status"]) if (fs.existsSync(path.join(share, f))) fs.copyFileSync(path.join(share, f), path.join(last, f));
    if (fs.existsSync(consoleLog)) fs.copyFileSync(consoleLog, path.join(last, "console.log"));
    const statusFile = path.join(share, "status");
    if (!fs.existsSync(statusFile)) {
      console.error(`test:hosts: the guest ended (qemu ${signal ?? code}) without a result; console in ${last}/console.log`);
      return 1;
    }
    const status = Number(fs.readFileSync(statusFile, "utf8").trim());
    if (fs.existsSync(path.join(share, "results.tap"))) {
      const tap = fs.readFileSync(path.join(share, "results.tap"), "utf8");
      const n = (k) => Number((new RegExp(`^# ${k} (\\d+)`, "m").exec(tap) || [])[1] || 0);
      log(`guest tests: ${n("pass")} passed, ${n("fail")} failed, ${n("skipped")} skipped, ${n("todo")} todo (results in ${last})`);
    }
    log(`guest exit status ${status}`);
    return Number.isInteger(status) ? status : 1;
  } finally {
    finished = true;
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    cleanupTmp();
  }
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (process.getuid && process.getuid() !== 0) usage("needs root (debootstrap, and the guest tests run as root)");
  need(["qemu-system-x86_64", "qemu-img", "flock"], "qemu-system-x86 qemu-utils util-linux");
  need(["debootstrap", "busybox", "mkfs.ext4", "cpio", "cc"], "debootstrap busybox-static e2fsprogs cpio gcc");
  if (!fs.existsSync(path.join(REPO, "dist", "src", "main.js"))) usage("no dist/: npm run build first");
  fs.mkdirSync(CACHE, { recursive: true });
  // one guest (or image build) at a time on this machine
  if (!process.env.TSRUN_HOSTS_LOCKED) {
    const r = spawnSync("flock", [path.join(CACHE, ".lock"), process.execPath, __filename, ...process.argv.slice(2)], { stdio: "inherit", env: { ...process.env, TSRUN_HOSTS_LOCKED: "1" } });
    process.exit(r.status ?? 1);
  }
  const image = ensureImage(o.rebuild);
  const status = await boot(image, o);
  log(`done`);
  process.exit(status);
}

main().catch((e) => {
  console.error(`test:hosts: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
