// config-linux.md: default file systems, sysctl, rootfs propagation, masked and read-only paths, mount label,
// personality, Intel RDT.
import * as fs from "fs";
import type { Case, CaseContext, ProbeLs, ProbeMount, ProbeResult } from "../harness/case";
import { eq, expect, fail } from "../harness/check";
import { LONG_RUNNING, lifecycle, linux, refusedAtCreate, needs } from "../harness/dsl";
import { hostRun } from "../harness/host";
import { EROFS } from "./errno";

function mountsOf(ctx: CaseContext, index = 0): ProbeMount[] {
  const m = ctx.json<ProbeMount[]>(index);
  if (!Array.isArray(m)) fail("the probe printed no mount table");
  return m;
}

function rootMount(ctx: CaseContext): ProbeMount {
  const all = mountsOf(ctx).filter((m) => m.mountPoint === "/");
  const top = all[all.length - 1];
  if (!top) fail("no mount at / in the container");
  return top;
}

// The rootfs as a shared mount on the host, so that propagation into the container can be told apart.
function sharedRootfs(ctx: CaseContext): void {
  hostRun("mount", ["--bind", ctx.rootfs, ctx.rootfs]);
  hostRun("mount", ["--make-shared", ctx.rootfs]);
}

// slave needs a peer group on the host to be a slave of: the rootfs is made a shared mount first.
function propagationCase(mode: string, check: (root: ProbeMount, ctx: CaseContext) => void, title: string): Case {
  return {
    id: `config.linux.rootfsPropagation.${mode}`,
    spec: "config-linux.md#rootfs-mount-propagation",
    level: "MUST",
    title,
    refusable: "rootfsPropagation is optional",
    args: ["mountinfo"],
    ...(mode === "slave" ? { setup: sharedRootfs } : {}),
    bundle: (c) => {
      linux(c).rootfsPropagation = mode;
    },
    steps: lifecycle("the propagation of /", (ctx) => check(rootMount(ctx), ctx)),
  };
}

const tag = (m: ProbeMount, prefix: string) => m.optional.some((o) => o.startsWith(prefix));

export const linuxOther: Case[] = [
  {
    id: "config.linux.default-filesystems",
    spec: "config-linux.md#default-filesystems",
    level: "SHOULD",
    title: "/proc (proc), /sys (sysfs), /dev/pts (devpts) and /dev/shm (tmpfs) are available",
    args: ["mountinfo"],
    steps: lifecycle("the mount table", (ctx) => {
      const ms = mountsOf(ctx);
      for (const [p, t] of [
        ["/proc", "proc"],
        ["/sys", "sysfs"],
        ["/dev/pts", "devpts"],
        ["/dev/shm", "tmpfs"],
      ] as const) {
        expect(ms.some((m) => m.mountPoint === p && m.fsType === t), `no ${t} at ${p}`);
      }
    }),
  },
  {
    id: "config.linux.sysctl",
    spec: "config-linux.md#sysctl",
    level: "MUST",
    title: "sysctl sets kernel parameters in the container's namespaces",
    refusable: "linux.sysctl is optional",
    args: ["multi", "sysctl", "net.ipv4.ip_forward", "--", "sysctl", "kernel.shmmni"],
    bundle: (c) => {
      linux(c).sysctl = { "net.ipv4.ip_forward": "1", "kernel.shmmni": "1234" };
    },
    steps: lifecycle("the parameters", (ctx) => {
      eq(ctx.json<ProbeResult>(0).value, "1", "net.ipv4.ip_forward");
      eq(ctx.json<ProbeResult>(1).value, "1234", "kernel.shmmni");
    }),
  },
  propagationCase("shared", (root) => expect(tag(root, "shared:"), `/ is not shared: ${root.optional.join(" ") || "(private)"}`), "rootfsPropagation shared: the rootfs is in a peer group"),
  propagationCase("slave", (root) => {
    expect(tag(root, "master:"), `/ is not a slave: ${root.optional.join(" ") || "(private)"}`);
    expect(!tag(root, "shared:"), "/ is also shared");
  }, "rootfsPropagation slave: the rootfs receives propagation from the host"),
  propagationCase("private", (root) => eq(root.optional.filter((o) => o.startsWith("shared:") || o.startsWith("master:")), [], "propagation tags of /"), "rootfsPropagation private: the rootfs neither sends nor receives propagation"),
  propagationCase("unbindable", (root) => expect(root.optional.includes("unbindable"), `/ is not unbindable: ${root.optional.join(" ") || "(private)"}`), "rootfsPropagation unbindable: the rootfs cannot be bind mounted"),
  {
    id: "config.linux.rootfsPropagation.slave-receives",
    spec: "config-linux.md#rootfs-mount-propagation",
    level: "MUST",
    title: "rootfsPropagation slave: a mount made on the host under the rootfs appears in the container",
    refusable: "rootfsPropagation is optional",
    args: ["multi", "wait-signal"],
    setup: sharedRootfs,
    bundle: (c) => {
      linux(c).rootfsPropagation = "slave";
    },
    steps: [
      { op: "create" },
      { op: "start" },
      { op: "waitOutput", pattern: /ready/ },
      {
        op: "check",
        what: "a host mount propagates",
        check: (ctx) => {
          fs.mkdirSync(ctx.hostPath("mnt/propagated"), { recursive: true });
          hostRun("mount", ["-t", "tmpfs", "-o", "size=1m", "spec-propagated", ctx.hostPath("mnt/propagated")]);
          const mountinfo = fs.readFileSync(`/proc/${ctx.pid!.pid}/mountinfo`, "utf8");
          expect(mountinfo.includes(" /mnt/propagated "), "the container does not see /mnt/propagated");
        },
      },
      { op: "delete", force: true },
      { op: "nothingLeft" },
    ],
  },
  {
    id: "config.linux.maskedPaths",
    spec: "config-linux.md#masked-paths",
    level: "MUST",
    title: "maskedPaths cannot be read (files and directories)",
    args: ["multi", "read", "/etc/spec-secret", "--", "ls", "/etc/spec-dir/secret", "--", "read", "/proc/kcore"],
    setup: (ctx) => {
      fs.writeFileSync(ctx.hostPath("etc/spec-secret"), "secret");
      fs.mkdirSync(ctx.hostPath("etc/spec-dir"));
      fs.writeFileSync(ctx.hostPath("etc/spec-dir/secret"), "secret");
    },
    bundle: (c) => {
      linux(c).maskedPaths = ["/etc/spec-secret", "/etc/spec-dir", "/proc/kcore"];
    },
    steps: lifecycle("the masked paths", (ctx) => {
      const file = ctx.json<ProbeResult>(0);
      expect(!(file.ok && file.content === "secret"), "/etc/spec-secret can be read");
      const ls = ctx.json<ProbeLs[]>(1)[0];
      expect(ls !== undefined && !ls.exists, "/etc/spec-dir/secret is visible");
      const kcore = ctx.json<ProbeResult>(2);
      expect(!kcore.ok || (kcore.content ?? "") === "", "/proc/kcore can be read");
    }),
  },
  {
    id: "config.linux.maskedPaths.relative",
    spec: "config-linux.md#masked-paths",
    level: "MUST",
    title: "maskedPaths MUST be absolute: a relative one is an error",
    bundle: (c) => {
      linux(c).maskedPaths = ["proc/kcore"];
    },
    steps: refusedAtCreate(),
  },
  {
    id: "config.linux.readonlyPaths",
    spec: "config-linux.md#readonly-paths",
    level: "MUST",
    title: "readonlyPaths are read-only (a directory of the rootfs and /proc/sys)",
    args: ["multi", "write", "/etc/spec-ro/file", "x", "--", "write", "/proc/sys/kernel/domainname", "x", "--", "read", "/etc/spec-ro/kept"],
    setup: (ctx) => {
      fs.mkdirSync(ctx.hostPath("etc/spec-ro"));
      fs.writeFileSync(ctx.hostPath("etc/spec-ro/kept"), "kept");
    },
    bundle: (c) => {
      linux(c).readonlyPaths = ["/etc/spec-ro", "/proc/sys"];
    },
    steps: lifecycle("writes to the read-only paths", (ctx) => {
      eq(ctx.json<ProbeResult>(0).errno, EROFS, "write /etc/spec-ro/file: errno");
      eq(ctx.json<ProbeResult>(1).errno, EROFS, "write /proc/sys/kernel/domainname: errno");
      eq(ctx.json<ProbeResult>(2).content, "kept", "/etc/spec-ro/kept is still readable");
    }),
  },
  {
    id: "config.linux.readonlyPaths.relative",
    spec: "config-linux.md#readonly-paths",
    level: "MUST",
    title: "readonlyPaths MUST be absolute: a relative one is an error",
    bundle: (c) => {
      linux(c).readonlyPaths = ["proc/sys"];
    },
    steps: refusedAtCreate(),
  },
  {
    id: "config.linux.mountLabel",
    spec: "config-linux.md#mount-label",
    level: "MAY",
    title: "mountLabel sets the SELinux context of the container's mounts",
    requires: [needs.selinux],
    args: ["mountinfo"],
    bundle: (c) => {
      linux(c).mountLabel = "system_u:object_r:container_file_t:s0:c1,c2";
    },
    steps: lifecycle("the context option of /dev/shm", (ctx) => {
      const shm = mountsOf(ctx).find((m) => m.mountPoint === "/dev/shm");
      expect(shm !== undefined && shm.superOptions.some((o) => o.includes("c1,c2")), "/dev/shm has no context with the label");
    }),
  },
  {
    id: "config.linux.personality",
    spec: "config-linux.md#personality",
    level: "MUST",
    title: "personality LINUX32: the execution domain is PER_LINUX32 (uname reports a 32-bit machine)",
    refusable: "linux.personality is optional",
    requires: [needs.knownArch],
    bundle: (c) => {
      linux(c).personality = { domain: "LINUX32" };
    },
    steps: lifecycle("facts.personality", (ctx) => {
      const f = ctx.facts();
      eq(f.personality & 0xff, 0x0008, "personality & PER_MASK (PER_LINUX32 is 8)");
      expect(f.machine === "i686" || f.machine.startsWith("armv"), `uname machine ${f.machine} is not 32-bit`);
    }),
  },
  {
    id: "config.linux.personality.flags",
    spec: "config-linux.md#personality",
    level: "MUST",
    title: "personality flags: no value is supported, so one is an error",
    bundle: (c) => {
      linux(c).personality = { domain: "LINUX", flags: ["SPEC_TESTS_FLAG"] };
    },
    steps: refusedAtCreate(),
  },
  {
    id: "config.linux.intelRdt.no-resctrl",
    spec: "config-linux.md#intelrdt",
    level: "MUST",
    title: "intelRdt without a mounted resctrl file system is an error",
    requires: [needs.noResctrl],
    bundle: (c) => {
      linux(c).intelRdt = { closID: "spec-tests" };
    },
    steps: refusedAtCreate(),
  },
  {
    id: "config.linux.intelRdt.resctrl",
    spec: "config-linux.md#intelrdt",
    level: "MUST",
    title: "intelRdt: the process joins the closID's group and the schemata are written",
    requires: [needs.resctrl],
    refusable: "linux.intelRdt is optional",
    args: LONG_RUNNING,
    bundle: (c) => {
      linux(c).intelRdt = { closID: "spec-tests", l3CacheSchema: "L3:0=1" };
    },
    steps: [
      { op: "create" },
      {
        op: "check",
        what: "the resctrl group",
        check: (ctx) => {
          const tasks = fs.readFileSync("/sys/fs/resctrl/spec-tests/tasks", "utf8").split("\n");
          expect(tasks.includes(String(ctx.pid!.pid)), "the container process is not in /sys/fs/resctrl/spec-tests/tasks");
          expect(fs.readFileSync("/sys/fs/resctrl/spec-tests/schemata", "utf8").includes("L3:0=1"), "the schemata were not written");
        },
      },
      { op: "delete", force: true },
      { op: "nothingLeft" },
    ],
  },
];
