// features.md and features-linux.md: the runtime's `features` document, and that what it lists is accepted
// (recognized) in config.json. Skipped for runtimes without a `features` command (it is a MAY).
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type { Case, CaseContext, Features } from "../harness/case";
import { eq, expect, fail, firstLine } from "../harness/check";
import { baseConfig, type Config } from "../harness/config";
import { addHook, addMount, containerRecordHook, hookTags, lifecycle, linux, proc, recordHook, setNamespace, withUserNamespace, needs } from "../harness/dsl";
import type { HookName } from "../harness/config";
import { holdsCapability } from "./capabilities";

function feat(ctx: CaseContext): Features {
  const f = ctx.env.runtime.features;
  if (!f) return ctx.skip("the runtime has no features document");
  return f;
}

function listOrSkip(ctx: CaseContext, list: string[] | null | undefined, what: string): string[] {
  if (!list || list.length === 0) return ctx.skip(`the features document lists no ${what}`);
  return list;
}

const SEMVER = /^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/;

function compareSemver(a: string, b: string): number {
  const x = SEMVER.exec(a)!;
  const y = SEMVER.exec(b)!;
  for (let i = 1; i <= 3; i++) {
    const d = Number(x[i]) - Number(y[i]);
    if (d !== 0) return d;
  }
  if (x[4] === y[4]) return 0;
  if (x[4] === undefined) return 1; // a release is above its pre-releases
  if (y[4] === undefined) return -1;
  return x[4] < y[4] ? -1 : 1;
}

// Writes configs into the bundle and creates (then force-deletes) a container with each; "" when it worked,
// the error otherwise.
async function tryCreate(ctx: CaseContext, config: Config, n: number): Promise<string> {
  fs.writeFileSync(path.join(ctx.bundle, "config.json"), JSON.stringify(config, null, 2));
  const id = `${ctx.id}-${n}`;
  ctx.addCleanup(async () => {
    await ctx.invoke(["delete", "--force", id]);
  });
  const r = await ctx.invoke(["create", "--bundle", ctx.bundle, id], { outputName: `try-${n}` });
  await ctx.invoke(["delete", "--force", id]);
  return r.status === 0 ? "" : firstLine(r.stderr) || `exit ${r.status}`;
}

// Every listed item at once in one container; on failure, each alone, to name the ones not recognized.
function recognizedCase(id: string, spec: string, title: string, items: (ctx: CaseContext) => string[], apply: (c: Config, items: string[], ctx: CaseContext) => void, extra: Partial<Case> = {}): Case {
  return {
    id,
    spec,
    level: "MUST",
    title,
    since: "1.1.0",
    requires: [needs.features],
    steps: [
      {
        op: "check",
        what: "configs with the listed values",
        check: async (ctx) => {
          const list = items(ctx);
          const config = (subset: string[]) => {
            const c = baseConfig(["facts"], ctx.cgroupsPath);
            c.ociVersion = "1.1.0";
            apply(c, subset, ctx);
            return c;
          };
          if ((await tryCreate(ctx, config(list), 0)) === "") return;
          const failures: string[] = [];
          let n = 1;
          for (const item of list) {
            const err = await tryCreate(ctx, config([item]), n++);
            if (err) failures.push(`${item} (${err})`);
          }
          fail(failures.length > 0 ? `not accepted: ${failures.join("; ")}` : "all values together are refused, each alone is accepted");
        },
      },
      { op: "nothingLeft" },
    ],
    ...extra,
  };
}

const TOP_KEYS = ["ociVersionMin", "ociVersionMax", "hooks", "mountOptions", "linux", "annotations", "potentiallyUnsafeConfigAnnotations"];
const LINUX_KEYS: Record<string, string[] | null> = {
  namespaces: null,
  capabilities: null,
  cgroup: ["v1", "v2", "systemd", "systemdUser", "rdma"],
  seccomp: ["enabled", "actions", "operators", "archs", "knownFlags", "supportedFlags"],
  apparmor: ["enabled"],
  selinux: ["enabled"],
  intelRdt: ["enabled"],
  mountExtensions: ["idmap"],
  // runtime-spec 1.3
  memoryPolicy: ["modes", "flags"],
  netDevices: ["enabled"],
};

// mount(8)'s file-system independent options, the spec's table, rnodev (the recursive nodev the table's rdev
// implies) and acl/noacl (the MS_POSIXACL flag of mount(2), not data): what a features list may hold.
const GENERIC_MOUNT_OPTIONS = new Set(
  (
    "async atime bind defaults dev diratime dirsync exec iversion lazytime loud mand noatime nodev nodiratime noexec noiversion " +
    "nolazytime nomand norelatime nostrictatime nosuid nosymfollow private ratime rbind rdev rdiratime relatime remount rexec " +
    "rnoatime rnodiratime rnoexec rnorelatime rnostrictatime rnosuid rnosymfollow ro rprivate rrelatime rro rrw rshared rslave " +
    "rstrictatime rsuid rsymfollow runbindable rw shared silent slave strictatime suid symfollow sync tmpcopyup unbindable idmap ridmap " +
    "auto noauto nofail user nouser users owner group _netdev rnodev acl noacl"
  ).split(" "),
);

const SECCOMP_TARGET = "reboot"; // a syscall the probe never makes

const BIG_ENDIAN_ARCHS = new Set(["SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_M68K", "SCMP_ARCH_SHEB"]);

export const featuresCases: Case[] = [
  {
    id: "features.ociVersion",
    spec: "features.md#specification-version",
    level: "MUST",
    title: "ociVersionMin and ociVersionMax are SemVer strings, max not below min",
    requires: [needs.features],
    steps: [
      {
        op: "check",
        what: "the features document",
        check: (ctx) => {
          const f = feat(ctx);
          expect(typeof f.ociVersionMin === "string" && SEMVER.test(f.ociVersionMin), `ociVersionMin ${JSON.stringify(f.ociVersionMin)} is not SemVer`);
          expect(typeof f.ociVersionMax === "string" && SEMVER.test(f.ociVersionMax), `ociVersionMax ${JSON.stringify(f.ociVersionMax)} is not SemVer`);
          expect(compareSemver(f.ociVersionMax!, f.ociVersionMin!) >= 0, `ociVersionMax ${f.ociVersionMax} is less than ociVersionMin ${f.ociVersionMin}`);
        },
      },
    ],
  },
  ...(["ociVersionMin", "ociVersionMax"] as const).map(
    (key): Case => ({
      id: `features.${key}.accepted`,
      spec: "features.md#specification-version",
      level: "MUST",
      title: `a config whose ociVersion is the runtime's ${key} is accepted`,
      requires: [needs.features],
      bundle: (c, ctx) => {
        const v = feat(ctx)[key];
        if (typeof v !== "string") return ctx.skip(`${key} is missing`);
        c.ociVersion = v;
      },
      steps: lifecycle("the container runs", (ctx) => eq(ctx.facts().pid, 1, "pid")),
    }),
  ),
  {
    id: "features.properties",
    spec: "features.md#specification-version",
    level: "MUST",
    title: "the features document holds only properties that its ociVersionMax defines (checked for versions up to 1.3)",
    requires: [needs.features],
    steps: [
      {
        op: "check",
        what: "the features document",
        check: (ctx) => {
          const f = feat(ctx);
          if (typeof f.ociVersionMax === "string" && SEMVER.test(f.ociVersionMax) && compareSemver(f.ociVersionMax, "1.3.99") > 0) ctx.skip(`ociVersionMax ${f.ociVersionMax} is newer than the spec these cases know (1.3)`);
          const unknown: string[] = Object.keys(f).filter((k) => !TOP_KEYS.includes(k));
          const l = f.linux;
          if (l && typeof l === "object") {
            for (const [k, v] of Object.entries(l)) {
              if (!(k in LINUX_KEYS)) unknown.push(`linux.${k}`);
              const allowed = LINUX_KEYS[k];
              if (allowed && v && typeof v === "object") for (const kk of Object.keys(v)) if (!allowed.includes(kk)) unknown.push(`linux.${k}.${kk}`);
            }
          }
          eq(unknown, [], "properties not defined by the spec");
        },
      },
    ],
  },
  {
    id: "features.hooks",
    spec: "features.md#hooks",
    level: "MUST",
    title: "every hook the features document lists is supported: each runs",
    requires: [needs.features],
    bundle: (c, ctx) => {
      for (const h of listOrSkip(ctx, feat(ctx).hooks, "hooks")) {
        addHook(c, h as HookName, h === "startContainer" ? containerRecordHook(h) : recordHook(ctx, h));
      }
    },
    steps: [
      { op: "create" },
      { op: "start" },
      { op: "waitExit" },
      { op: "delete" },
      {
        op: "check",
        what: "the hooks that ran",
        check: (ctx) => {
          const ran = hookTags(ctx);
          const missing = (feat(ctx).hooks ?? []).filter((h) => !ran.includes(h));
          eq(missing, [], "listed hooks that did not run");
        },
      },
      { op: "nothingLeft" },
    ],
  },
  recognizedCase(
    "features.mountOptions",
    "features.md#mount-options",
    "every mount option the features document lists is recognized in config.json (idmap and ridmap: see features.idmap)",
    (ctx) => listOrSkip(ctx, feat(ctx).mountOptions, "mount options").filter((o) => o !== "idmap" && o !== "ridmap"),
    (c, items, ctx) => {
      items.forEach((o, i) => {
        const destination = `/spec-opt-${i}`;
        if (o === "bind" || o === "rbind") addMount(c, { destination, type: "none", source: ctx.rootfs, options: [o] });
        else if (o === "remount") {
          addMount(c, { destination, type: "tmpfs", source: "tmpfs", options: ["size=1m"] });
          addMount(c, { destination, type: "tmpfs", source: "tmpfs", options: ["remount", "size=1m"] });
        } else addMount(c, { destination, type: "tmpfs", source: "tmpfs", options: ["size=1m", o] });
      });
    },
  ),
  {
    id: "features.mountOptions.generic",
    spec: "features.md#mount-options",
    level: "SHOULD",
    title: "the mount options listed are not file-system specific ones",
    requires: [needs.features],
    steps: [
      {
        op: "check",
        what: "the list",
        check: (ctx) => {
          const specific = listOrSkip(ctx, feat(ctx).mountOptions, "mount options").filter((o) => !GENERIC_MOUNT_OPTIONS.has(o) && !/^x-/i.test(o));
          eq(specific, [], "file-system specific options listed");
        },
      },
    ],
  },
  recognizedCase(
    "features.linux.namespaces",
    "features-linux.md#namespaces",
    "every namespace the features document lists is recognized in config.json",
    (ctx) => listOrSkip(ctx, feat(ctx).linux?.namespaces, "namespaces").filter((n) => n !== "time" || ctx.env.host.timeNamespaces),
    (c, items) => {
      for (const n of items) setNamespace(c, n);
      if (items.includes("user")) {
        withUserNamespace(c);
        c.mounts = (c.mounts ?? []).filter((m) => m.destination !== "/sys/fs/cgroup");
      }
    },
  ),
  recognizedCase(
    "features.linux.capabilities",
    "features-linux.md#capabilities",
    "every capability the features document lists (that this host can grant) is recognized in config.json",
    (ctx) => listOrSkip(ctx, feat(ctx).linux?.capabilities, "capabilities").filter(holdsCapability),
    (c, items) => {
      proc(c).capabilities = { bounding: items, effective: items, permitted: items };
    },
  ),
  recognizedCase(
    "features.linux.seccomp.actions",
    "features-linux.md#seccomp",
    "every seccomp action listed is recognized (SCMP_ACT_NOTIFY: see the listener cases)",
    (ctx) => listOrSkip(ctx, feat(ctx).linux?.seccomp?.actions, "seccomp actions").filter((a) => a !== "SCMP_ACT_NOTIFY"),
    (c, items) => {
      linux(c).seccomp = { defaultAction: "SCMP_ACT_ALLOW", syscalls: items.map((action) => ({ names: [SECCOMP_TARGET], action })) };
    },
  ),
  recognizedCase(
    "features.linux.seccomp.operators",
    "features-linux.md#seccomp",
    "every seccomp operator listed is recognized",
    (ctx) => listOrSkip(ctx, feat(ctx).linux?.seccomp?.operators, "seccomp operators"),
    (c, items) => {
      linux(c).seccomp = {
        defaultAction: "SCMP_ACT_ALLOW",
        syscalls: items.map((op) => ({ names: [SECCOMP_TARGET], action: "SCMP_ACT_ERRNO", args: [{ index: 0, value: 1, ...(op === "SCMP_CMP_MASKED_EQ" ? { valueTwo: 1 } : {}), op }] })),
      };
    },
  ),
  recognizedCase(
    "features.linux.seccomp.archs",
    "features-linux.md#seccomp",
    "every seccomp architecture listed (of this host's byte order: libseccomp cannot mix them in a filter) is recognized",
    (ctx) => listOrSkip(ctx, feat(ctx).linux?.seccomp?.archs, "seccomp architectures").filter((a) => !BIG_ENDIAN_ARCHS.has(a) === (os.endianness() === "LE")),
    (c, items) => {
      linux(c).seccomp = { defaultAction: "SCMP_ACT_ALLOW", architectures: items, syscalls: [{ names: [SECCOMP_TARGET], action: "SCMP_ACT_ERRNO" }] };
    },
  ),
  recognizedCase(
    "features.linux.seccomp.flags",
    "features-linux.md#seccomp",
    "every seccomp flag listed as supported is recognized and supported",
    (ctx) => listOrSkip(ctx, feat(ctx).linux?.seccomp?.supportedFlags, "supported seccomp flags"),
    (c, items) => {
      linux(c).seccomp = { defaultAction: "SCMP_ACT_ALLOW", flags: items, syscalls: [{ names: [SECCOMP_TARGET], action: "SCMP_ACT_ERRNO" }] };
    },
  ),
  {
    id: "features.annotations",
    spec: "features.md#annotations",
    level: "MUST",
    title: "the features annotations are a map of non-empty string keys to string values",
    requires: [needs.features],
    steps: [
      {
        op: "check",
        what: "annotations",
        check: (ctx) => {
          const a = feat(ctx).annotations;
          if (a === undefined || a === null) return ctx.skip("the features document has no annotations");
          expect(typeof a === "object" && !Array.isArray(a), "annotations is not a map");
          for (const [k, v] of Object.entries(a)) {
            expect(k !== "", "an annotation key is empty");
            expect(typeof v === "string", `annotation ${k} is not a string`);
          }
        },
      },
    ],
  },
  {
    id: "features.idmap",
    spec: "features-linux.md#mountextensions",
    level: "MUST",
    title: "mountExtensions.idmap.enabled true: the runtime recognises a mount's uidMappings (applies them or refuses them)",
    requires: [needs.features],
    since: "1.2.0",
    args: ["ls", "/spec-idmap/owned"],
    setup: (ctx) => {
      const ext = feat(ctx).linux?.["mountExtensions"] as { idmap?: { enabled?: boolean } } | undefined;
      if (ext?.idmap?.enabled !== true) ctx.skip("the runtime does not report idmap mounts (mountExtensions.idmap.enabled is not true)");
      fs.mkdirSync(path.join(ctx.dir, "idsrc"));
      fs.writeFileSync(path.join(ctx.dir, "idsrc", "owned"), "");
      fs.chownSync(path.join(ctx.dir, "idsrc", "owned"), 1000, 1000);
    },
    bundle: (c, ctx) => {
      const map = [{ containerID: 0, hostID: 1000, size: 1 }];
      addMount(c, { destination: "/spec-idmap", type: "none", source: path.join(ctx.dir, "idsrc"), options: ["bind", "idmap"], uidMappings: map, gidMappings: map });
    },
    steps: [
      { op: "create", expect: "any" },
      {
        op: "check",
        what: "the mapping",
        check: async (ctx) => {
          if (!ctx.results.some((r) => r.args.includes("create") && r.status === 0)) return; // refused: recognised, not available here
          const start = await ctx.invoke(["start", ctx.id]);
          if (start.status !== 0) fail(`start: ${firstLine(start.stderr)}`);
          for (let i = 0; i < 100 && !ctx.stdout().includes("owned"); i++) await new Promise((r) => setTimeout(r, 20));
          const ls = ctx.json<{ uid?: number }[]>(0)[0];
          eq(ls?.uid, 0, "owner of /spec-idmap/owned (host uid 1000 mapped to 0): uidMappings were ignored");
        },
      },
      { op: "delete", force: true, expect: "any" },
      { op: "nothingLeft" },
    ],
  },
  {
    id: "features.build-time",
    spec: "features.md#features-structure",
    level: "SHOULD",
    title: "the features document does not depend on the execution environment (a second call with another cwd and umask prints the same)",
    requires: [needs.features],
    steps: [
      {
        op: "check",
        what: "a second features call",
        check: async (ctx) => {
          const r = await ctx.runtime.invoke(["features"], { cwd: "/", stdout: path.join(ctx.dir, "features2.out"), stderr: path.join(ctx.dir, "features2.err"), umask: 0o077 });
          if (r.status !== 0) fail(`features failed: ${firstLine(r.stderr)}`);
          eq(JSON.parse(r.stdout) as unknown, feat(ctx) as unknown, "the second document");
        },
      },
    ],
  },
];

