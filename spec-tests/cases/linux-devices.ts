// config-linux.md#devices, #default-devices and #allowed-device-list.
import * as fs from "fs";
import * as path from "path";
import type { Case, ProbeLs, ProbeResult } from "../harness/case";
import { eq, fail } from "../harness/check";
import { addMount, consoleDrained, consoleText, lifecycle, linux, proc, refusedAtCreate, withConsole, needs } from "../harness/dsl";
import { jsonLinesOf } from "../harness/context";
import { ENXIO, EPERM } from "./errno";

function lsOf(lines: unknown[], p: string): ProbeLs {
  for (const l of lines) {
    if (Array.isArray(l)) {
      const e = (l as ProbeLs[]).find((x) => x.path === p);
      if (e) return e;
    }
  }
  return fail(`no listing of ${p}`);
}

function deviceCheck(ls: ProbeLs, type: string, major: number, minor: number): void {
  eq(ls.exists, true, `${ls.path} exists`);
  eq({ type: ls.type, major: ls.major, minor: ls.minor }, { type, major, minor }, ls.path);
}

const DEFAULT_DEVICES: [string, number, number][] = [
  ["/dev/null", 1, 3],
  ["/dev/zero", 1, 5],
  ["/dev/full", 1, 7],
  ["/dev/random", 1, 8],
  ["/dev/urandom", 1, 9],
  ["/dev/tty", 5, 0],
];

// A character device number no driver claims here: open() reaches the device cgroup check, then fails ENXIO.
const FREE_MAJOR = 42;

export const linuxDevices: Case[] = [
  {
    id: "config.linux.devices.char",
    spec: "config-linux.md#devices",
    level: "MUST",
    title: "a listed character device is available at its path",
    args: ["multi", "ls", "/dev/spec-null", "--", "open", "/dev/spec-null", "rw"],
    bundle: (c) => {
      linux(c).devices = [{ type: "c", path: "/dev/spec-null", major: 1, minor: 3 }];
    },
    steps: lifecycle("the device node", (ctx) => {
      deviceCheck(lsOf(ctx.jsonLines(), "/dev/spec-null"), "char", 1, 3);
      eq(ctx.json<ProbeResult>(1).ok, true, "open /dev/spec-null rw");
    }),
  },
  {
    id: "config.linux.devices.attributes",
    spec: "config-linux.md#devices",
    level: "MUST",
    title: "a device's fileMode, uid and gid are applied",
    args: ["ls", "/dev/spec-null"],
    bundle: (c) => {
      linux(c).devices = [{ type: "c", path: "/dev/spec-null", major: 1, minor: 3, fileMode: 0o620, uid: 1000, gid: 5 }];
    },
    steps: lifecycle("mode and owner", (ctx) => {
      const ls = lsOf(ctx.jsonLines(), "/dev/spec-null");
      eq({ mode: ls.mode?.toString(8), uid: ls.uid, gid: ls.gid }, { mode: "620", uid: 1000, gid: 5 }, "/dev/spec-null");
    }),
  },
  {
    id: "config.linux.devices.unbuffered",
    spec: "config-linux.md#devices",
    level: "MUST",
    title: "a device of type u (unbuffered character) is available",
    args: ["ls", "/dev/spec-u"],
    bundle: (c) => {
      linux(c).devices = [{ type: "u", path: "/dev/spec-u", major: 1, minor: 3 }];
    },
    steps: lifecycle("the device node", (ctx) => deviceCheck(lsOf(ctx.jsonLines(), "/dev/spec-u"), "char", 1, 3)),
  },
  {
    id: "config.linux.devices.block",
    spec: "config-linux.md#devices",
    level: "MUST",
    title: "a listed block device is available at its path",
    args: ["ls", "/dev/spec-blk"],
    requires: [needs.blockDevice],
    bundle: (c, ctx) => {
      const b = ctx.env.host.blockDevice!;
      linux(c).devices = [{ type: "b", path: "/dev/spec-blk", major: b.major, minor: b.minor, fileMode: 0o600 }];
    },
    steps: lifecycle("the device node", (ctx) => {
      const b = ctx.env.host.blockDevice!;
      deviceCheck(lsOf(ctx.jsonLines(), "/dev/spec-blk"), "block", b.major, b.minor);
    }),
  },
  {
    id: "config.linux.devices.fifo",
    spec: "config-linux.md#devices",
    level: "MUST",
    title: "a listed fifo (type p, no major/minor) is available",
    args: ["ls", "/dev/spec-fifo"],
    bundle: (c) => {
      linux(c).devices = [{ type: "p", path: "/dev/spec-fifo" }];
    },
    steps: lifecycle("the fifo", (ctx) => eq(lsOf(ctx.jsonLines(), "/dev/spec-fifo").type, "fifo", "/dev/spec-fifo type")),
  },
  {
    id: "config.linux.devices.outside-dev",
    spec: "config-linux.md#devices",
    level: "MAY",
    title: "a device path may be outside /dev",
    args: ["ls", "/spec-null"],
    refusable: "device paths outside /dev are optional",
    bundle: (c) => {
      linux(c).devices = [{ type: "c", path: "/spec-null", major: 1, minor: 3 }];
    },
    steps: lifecycle("the device node", (ctx) => deviceCheck(lsOf(ctx.jsonLines(), "/spec-null"), "char", 1, 3)),
  },
  {
    id: "config.linux.devices.conflict",
    spec: "config-linux.md#devices",
    level: "MUST",
    title: "a file already at a device's path that is not that device is an error",
    setup: (ctx) => fs.writeFileSync(path.join(ctx.dir, "regular-file"), "not a device"),
    bundle: (c, ctx) => {
      addMount(c, { destination: "/dev/spec-conflict", type: "none", source: path.join(ctx.dir, "regular-file"), options: ["bind"] });
      linux(c).devices = [{ type: "c", path: "/dev/spec-conflict", major: 1, minor: 3 }];
    },
    steps: refusedAtCreate(),
  },
  {
    id: "config.linux.devices.default",
    spec: "config-linux.md#default-devices",
    level: "MUST",
    title: "/dev/null, zero, full, random, urandom, tty and ptmx are supplied",
    args: ["multi", "ls", ...DEFAULT_DEVICES.map(([p]) => p), "/dev/ptmx", "--", "open", "/dev/null", "rw", "--", "open", "/dev/zero", "r"],
    steps: lifecycle("the default devices", (ctx) => {
      const lines = ctx.jsonLines();
      for (const [p, major, minor] of DEFAULT_DEVICES) deviceCheck(lsOf(lines, p), "char", major, minor);
      const ptmx = lsOf(lines, "/dev/ptmx");
      if (ptmx.type === "symlink") eq(ptmx.target, "pts/ptmx", "/dev/ptmx symlink target");
      else eq({ type: ptmx.type, major: ptmx.major, minor: ptmx.minor }, { type: "char", major: 5, minor: 2 }, "/dev/ptmx (bind of /dev/pts/ptmx)");
      eq(ctx.json<ProbeResult>(1).ok, true, "open /dev/null rw");
      eq(ctx.json<ProbeResult>(2).ok, true, "open /dev/zero r");
    }),
  },
  {
    id: "config.linux.devices.console",
    spec: "config-linux.md#default-devices",
    level: "MUST",
    title: "with terminal, /dev/console is the pseudoterminal (bind mounted)",
    args: ["ls", "/dev/console"],
    setup: withConsole,
    bundle: (c) => {
      proc(c).terminal = true;
    },
    steps: [
      { op: "create", console: true },
      { op: "start" },
      { op: "waitExit" },
      consoleDrained,
      {
        op: "check",
        what: "/dev/console",
        check: (ctx) => {
          const lines = jsonLinesOf(consoleText(ctx));
          const ls = lsOf(lines, "/dev/console");
          eq({ exists: ls.exists, type: ls.type, major: ls.major }, { exists: true, type: "char", major: 136 }, "/dev/console (a /dev/pts device)");
        },
      },
      { op: "delete" },
      { op: "nothingLeft" },
    ],
  },
  {
    id: "config.linux.resources.devices.order",
    spec: "config-linux.md#allowed-device-list",
    level: "MUST",
    title: "device cgroup rules apply in the listed order (allow rw, then deny w: read allowed, write denied)",
    refusable: "the device cgroup is optional",
    args: ["multi", "open", "/dev/spec-dev", "r", "--", "open", "/dev/spec-dev", "w"],
    bundle: (c) => {
      const l = linux(c);
      l.devices = [{ type: "c", path: "/dev/spec-dev", major: FREE_MAJOR, minor: 42, fileMode: 0o666 }];
      l.resources = {
        devices: [
          { allow: false, access: "rwm" },
          { allow: true, type: "c", major: FREE_MAJOR, minor: 42, access: "rw" },
          { allow: false, type: "c", major: FREE_MAJOR, minor: 42, access: "w" },
        ],
      };
    },
    steps: lifecycle("open() of the device", (ctx) => {
      eq(ctx.json<ProbeResult>(0).errno, ENXIO, "open r: errno (ENXIO: the cgroup let it through to a driverless number)");
      eq(ctx.json<ProbeResult>(1).errno, EPERM, "open w: errno (EPERM: denied by the last rule)");
    }),
  },
  {
    id: "config.linux.resources.devices.deny-all",
    spec: "config-linux.md#allowed-device-list",
    level: "MUST",
    title: "a deny-all rule (type, major and minor unset mean all) denies a device",
    refusable: "the device cgroup is optional",
    args: ["open", "/dev/spec-dev", "r"],
    bundle: (c) => {
      const l = linux(c);
      l.devices = [{ type: "c", path: "/dev/spec-dev", major: FREE_MAJOR, minor: 43, fileMode: 0o666 }];
      l.resources = { devices: [{ allow: false, access: "rwm" }] };
    },
    steps: lifecycle("open() of the device", (ctx) => eq(ctx.json<ProbeResult>(0).errno, EPERM, "open /dev/spec-dev: errno (EPERM: denied)")),
  },
];
