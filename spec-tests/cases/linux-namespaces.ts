// config-linux.md#namespaces, #user-namespace-mappings and #offset-for-time-namespace.
import * as fs from "fs";
import * as path from "path";
import type { Case, ProbeResult } from "../harness/case";
import { eq, expect } from "../harness/check";
import type { Config } from "../harness/config";
import { holdNamespaces, lifecycle, linux, refusedAtCreate, setNamespace, USERNS_MAP, withUserNamespace, needs } from "../harness/dsl";
import { nsInode } from "../harness/host";

// Config namespace types and the names /proc/PID/ns uses for them.
const PROC_NAME: Record<string, string> = { pid: "pid", network: "net", mount: "mnt", ipc: "ipc", uts: "uts", user: "user", cgroup: "cgroup", time: "time" };

// A user namespace cannot mount cgroup v1 hierarchies; cases about namespaces leave that mount out.
function withoutCgroupMount(c: Config): void {
  c.mounts = (c.mounts ?? []).filter((m) => m.destination !== "/sys/fs/cgroup");
}

function joinCase(types: string[], extra: Partial<Case> = {}): Case {
  return {
    id: `config.linux.namespaces.join.${types.join("-")}`,
    spec: "config-linux.md#namespaces",
    level: "MUST",
    title: `a namespace path is joined: ${types.join(", ")}`,
    setup: async (ctx) => {
      ctx.values.set("holder", await holdNamespaces(ctx, types));
    },
    bundle: (c, ctx) => {
      const holder = Number(ctx.values.get("holder"));
      for (const t of types) setNamespace(c, t, `/proc/${holder}/ns/${PROC_NAME[t]}`);
      if (types.includes("user")) withoutCgroupMount(c);
      if (types.includes("uts")) delete c.hostname; // the holder's hostname is not the case's business
    },
    steps: lifecycle("the container's namespaces are the holder's", (ctx) => {
      const holder = Number(ctx.values.get("holder"));
      const f = ctx.facts();
      for (const t of types) eq(f.namespaces[PROC_NAME[t]!], nsInode(holder, PROC_NAME[t]!), `${t} namespace`);
    }),
    ...extra,
  };
}

function newNamespaceCase(type: string, extra: Partial<Case>): Case {
  return {
    id: `config.linux.namespaces.${type}`,
    spec: "config-linux.md#namespaces",
    level: "SHOULD",
    title: `the ${type} namespace type is supported: a new one is created`,
    steps: lifecycle(`a new ${type} namespace`, (ctx) => {
      const n = PROC_NAME[type]!;
      const inode = ctx.facts().namespaces[n];
      expect(inode !== null && inode !== undefined, `the container has no ${n} namespace link`);
      expect(inode !== nsInode("self", n), `the container is in the runtime's ${type} namespace`);
    }),
    ...extra,
  };
}

export const linuxNamespaces: Case[] = [
  {
    id: "config.linux.namespaces.new",
    spec: "config-linux.md#namespaces",
    level: "MUST",
    title: "a namespace without path is new: pid, network, ipc, uts and mount",
    steps: lifecycle("new namespaces", (ctx) => {
      const f = ctx.facts();
      for (const t of ["pid", "network", "ipc", "uts", "mount"]) expect(f.namespaces[PROC_NAME[t]!] !== nsInode("self", PROC_NAME[t]!), `the container is in the runtime's ${t} namespace`);
      eq(f.pid, 1, "pid in the new pid namespace");
    }),
  },
  newNamespaceCase("user", {
    requires: [needs.userNamespaces],
    bundle: (c) => {
      withUserNamespace(c);
      withoutCgroupMount(c);
    },
  }),
  newNamespaceCase("cgroup", { bundle: (c) => setNamespace(c, "cgroup") }),
  newNamespaceCase("time", {
    since: "1.1.0",
    requires: [needs.timeNamespaces],
    bundle: (c) => setNamespace(c, "time"),
  }),
  {
    id: "config.linux.namespaces.inherit",
    spec: "config-linux.md#namespaces",
    level: "MUST",
    title: "a namespace type not listed is inherited from the runtime (only mount is listed here)",
    bundle: (c) => {
      linux(c).namespaces = [{ type: "mount" }];
      delete c.hostname;
    },
    steps: lifecycle("the runtime's namespaces", (ctx) => {
      const f = ctx.facts();
      for (const n of ["pid", "net", "ipc", "uts", "cgroup", "user", "time"]) {
        if (f.namespaces[n] === null) continue; // a kernel without it
        eq(f.namespaces[n], nsInode("self", n), `${n} namespace`);
      }
      expect(f.pid !== 1, "the process is pid 1: a pid namespace was created");
    }),
  },
  joinCase(["network", "ipc", "uts"]),
  joinCase(["pid"]),
  joinCase(["mount"]),
  joinCase(["user"], { requires: [needs.userNamespaces] }),
  joinCase(["cgroup"]),
  joinCase(["time"], { since: "1.1.0", requires: [needs.timeNamespaces] }),
  {
    id: "config.linux.namespaces.path-relative",
    spec: "config-linux.md#namespaces",
    level: "MUST",
    title: "a namespace path MUST be absolute: a relative one (that would resolve) is an error",
    setup: async (ctx) => {
      const holder = await holdNamespaces(ctx, ["network"]);
      fs.symlinkSync(`/proc/${holder}/ns/net`, path.join(ctx.dir, "spec-netns"));
    },
    bundle: (c) => setNamespace(c, "network", "spec-netns"),
    steps: refusedAtCreate(),
  },
  {
    id: "config.linux.namespaces.path-wrong-type",
    spec: "config-linux.md#namespaces",
    level: "MUST",
    title: "a path that is not a namespace of the given type is an error (an ipc namespace as network)",
    setup: async (ctx) => {
      ctx.values.set("holder", await holdNamespaces(ctx, ["ipc"]));
    },
    bundle: (c, ctx) => setNamespace(c, "network", `/proc/${Number(ctx.values.get("holder"))}/ns/ipc`),
    steps: refusedAtCreate(),
  },
  {
    id: "config.linux.namespaces.path-not-namespace",
    spec: "config-linux.md#namespaces",
    level: "MUST",
    title: "a path that is no namespace at all (a regular file) is an error",
    setup: (ctx) => fs.writeFileSync(path.join(ctx.dir, "not-a-namespace"), ""),
    bundle: (c, ctx) => setNamespace(c, "network", path.join(ctx.dir, "not-a-namespace")),
    steps: refusedAtCreate(),
  },
  {
    id: "config.linux.namespaces.duplicate",
    spec: "config-linux.md#namespaces",
    level: "MUST",
    title: "two namespaces of the same type are an error",
    bundle: (c) => {
      linux(c).namespaces!.push({ type: "pid" });
    },
    steps: refusedAtCreate(),
  },
  {
    id: "config.linux.uidMappings",
    spec: "config-linux.md#user-namespace-mappings",
    level: "MUST",
    title: "uidMappings and gidMappings are the user namespace's maps",
    requires: [needs.userNamespaces],
    bundle: (c) => {
      withUserNamespace(c);
      withoutCgroupMount(c);
    },
    steps: lifecycle("facts.uidMap and gidMap", (ctx) => {
      const f = ctx.facts();
      const want: [number, number, number][] = [[USERNS_MAP.containerID, USERNS_MAP.hostID, USERNS_MAP.size]];
      eq(f.uidMap, want, "uid_map");
      eq(f.gidMap, want, "gid_map");
      eq(f.uid, 0, "uid in the container");
    }),
  },
  {
    id: "config.linux.uidMappings.no-chown",
    spec: "config-linux.md#user-namespace-mappings",
    level: "SHOULD",
    title: "the runtime does not change the ownership of the rootfs to realize the mapping",
    requires: [needs.userNamespaces],
    bundle: (c) => {
      withUserNamespace(c);
      withoutCgroupMount(c);
    },
    steps: lifecycle("ownership of the rootfs", (ctx) => {
      for (const p of [ctx.rootfs, ctx.hostPath("probe"), ctx.hostPath("etc")]) {
        const st = fs.statSync(p);
        eq({ uid: st.uid, gid: st.gid }, { uid: 0, gid: 0 }, `owner of ${p}`);
      }
    }),
  },
  {
    id: "config.linux.timeOffsets",
    spec: "config-linux.md#offset-for-time-namespace",
    level: "MUST",
    title: "timeOffsets set the time namespace's clock offsets",
    since: "1.1.0",
    refusable: "time namespace offsets are optional",
    requires: [needs.timeNamespaces],
    args: ["read", "/proc/self/timens_offsets"],
    bundle: (c) => {
      setNamespace(c, "time");
      linux(c).timeOffsets = { monotonic: { secs: 86400, nanosecs: 0 }, boottime: { secs: 172800, nanosecs: 5 } };
    },
    steps: lifecycle("/proc/self/timens_offsets", (ctx) => {
      const text = ctx.json<ProbeResult>(0).content ?? "";
      const offsets = Object.fromEntries(
        text
          .split("\n")
          .filter((l) => l.trim() !== "")
          .map((l) => l.trim().split(/\s+/))
          .map(([clock, secs, ns]) => [clock === "1" ? "monotonic" : clock === "7" ? "boottime" : clock, `${secs} ${ns}`]),
      );
      eq(offsets, { monotonic: "86400 0", boottime: "172800 5" }, "offsets");
    }),
  },
];
