// config.md#mounts and #linux-mount-options: order, destinations, sources, every option of the table (seen in
// the container's mount table), file-system specific data, and id-mapped mounts.
import * as fs from "fs";
import * as path from "path";
import type { Case, CaseContext, Level, ProbeLs, ProbeMount, ProbeResult } from "../harness/case";
import { eq, expect, fail } from "../harness/check";
import type { Mount } from "../harness/config";
import { addMount, lifecycle, refusedAtCreate } from "../harness/dsl";
import { hostRun } from "../harness/host";

const DEST = "/spec-mnt";

function mountTable(ctx: CaseContext): ProbeMount[] {
  const m = ctx.jsonLines().find((l): l is ProbeMount[] => Array.isArray(l) && (l.length === 0 || (typeof l[0] === "object" && l[0] !== null && "mountPoint" in l[0])));
  if (!m) fail("the probe printed no mount table");
  return m;
}

// The topmost mount at a path (the last one in the table).
function at(ms: ProbeMount[], p: string): ProbeMount | undefined {
  return ms.filter((m) => m.mountPoint === p).pop();
}

function must(ms: ProbeMount[], p: string): ProbeMount {
  const m = at(ms, p);
  if (!m) fail(`nothing is mounted at ${p}`);
  return m;
}

// A host tree for bind mounts: ctx.dir/src (tmpfs, file "marker") with a tmpfs at src/sub (file "marker"),
// then each remounted with `flags` (mount-level flags such as ro,nosuid); `shared` makes both shared.
function hostTree(flags: string, shared = false): (ctx: CaseContext) => void {
  return (ctx) => {
    const src = path.join(ctx.dir, "src");
    fs.mkdirSync(src);
    hostRun("mount", ["-t", "tmpfs", "-o", "size=1m", "spec-src", src]);
    fs.writeFileSync(path.join(src, "marker"), "top");
    fs.mkdirSync(path.join(src, "sub"));
    hostRun("mount", ["-t", "tmpfs", "-o", "size=1m", "spec-sub", path.join(src, "sub")]);
    fs.writeFileSync(path.join(src, "sub", "marker"), "sub");
    if (flags) {
      hostRun("mount", ["-o", `remount,bind,${flags}`, path.join(src, "sub")]);
      hostRun("mount", ["-o", `remount,bind,${flags}`, src]);
    }
    if (shared) hostRun("mount", ["--make-rshared", src]);
  };
}

type Where = "tmpfs" | "bind" | "rbind";

interface OptionCase {
  option: string;
  level: Level;
  where: Where; // tmpfs: a new tmpfs at DEST; bind/rbind: the host tree (src, src/sub) at DEST
  tree?: string; // flags of the host tree (bind/rbind)
  shared?: boolean; // the host tree is shared
  since?: string;
  check: (top: ProbeMount, sub: ProbeMount | undefined, ctx: CaseContext) => void;
}

const has = (m: ProbeMount, o: string) => m.options.includes(o);
const hasSuper = (m: ProbeMount, o: string) => m.superOptions.includes(o);
const tags = (m: ProbeMount) => m.optional.join(" ") || "(none)";

function flag(o: string, present: boolean) {
  return (m: ProbeMount, what: string) => expect(has(m, o) === present, `${what}: ${present ? "missing" : "unexpected"} ${o} (options ${m.options.join(",")})`);
}

// Both the top mount and the submount must pass (recursive options).
function both(check: (m: ProbeMount, what: string) => void) {
  return (top: ProbeMount, sub: ProbeMount | undefined) => {
    check(top, DEST);
    if (!sub) fail(`the submount ${DEST}/sub is missing (rbind)`);
    check(sub, `${DEST}/sub`);
  };
}

const topOnly = (check: (m: ProbeMount, what: string) => void) => (top: ProbeMount) => check(top, DEST);
const succeeds = () => undefined;
const noAtimeFlags = (m: ProbeMount, what: string) => expect(!has(m, "noatime") && !has(m, "relatime"), `${what}: not strictatime (options ${m.options.join(",")})`);

const OPTION_CASES: OptionCase[] = [
  { option: "async", level: "MUST", where: "tmpfs", check: (t) => expect(!hasSuper(t, "sync"), "the mount is sync") },
  { option: "atime", level: "MUST", where: "tmpfs", check: topOnly(flag("noatime", false)) },
  { option: "bind", level: "MUST", where: "bind", tree: "", check: (t, sub) => expect(sub === undefined && t.fsType === "tmpfs", `a non-recursive bind should not carry ${DEST}/sub`) },
  { option: "defaults", level: "MUST", where: "tmpfs", check: topOnly(flag("rw", true)) },
  { option: "dev", level: "MUST", where: "tmpfs", check: topOnly(flag("nodev", false)) },
  { option: "diratime", level: "MUST", where: "tmpfs", check: topOnly(flag("nodiratime", false)) },
  { option: "dirsync", level: "MUST", where: "tmpfs", check: (t) => expect(hasSuper(t, "dirsync"), `no dirsync (super options ${t.superOptions.join(",")})`) },
  { option: "exec", level: "MUST", where: "tmpfs", check: topOnly(flag("noexec", false)) },
  { option: "iversion", level: "MUST", where: "tmpfs", check: succeeds },
  { option: "lazytime", level: "MUST", where: "tmpfs", check: (t) => expect(hasSuper(t, "lazytime"), `no lazytime (super options ${t.superOptions.join(",")})`) },
  { option: "loud", level: "MUST", where: "tmpfs", check: succeeds },
  { option: "mand", level: "MAY", where: "tmpfs", check: succeeds },
  { option: "noatime", level: "MUST", where: "tmpfs", check: topOnly(flag("noatime", true)) },
  { option: "nodev", level: "MUST", where: "tmpfs", check: topOnly(flag("nodev", true)) },
  { option: "nodiratime", level: "MUST", where: "tmpfs", check: topOnly(flag("nodiratime", true)) },
  { option: "noexec", level: "MUST", where: "tmpfs", check: topOnly(flag("noexec", true)) },
  { option: "noiversion", level: "MUST", where: "tmpfs", check: succeeds },
  { option: "nolazytime", level: "MUST", where: "tmpfs", check: (t) => expect(!hasSuper(t, "lazytime"), "the mount is lazytime") },
  { option: "nomand", level: "MAY", where: "tmpfs", check: succeeds },
  // Without strictatime or noatime the kernel applies relatime anyway (as mount(8) documents): only accepted.
  { option: "norelatime", level: "MUST", where: "tmpfs", check: succeeds },
  { option: "nostrictatime", level: "MUST", where: "tmpfs", check: topOnly(flag("relatime", true)) },
  { option: "nosuid", level: "MUST", where: "tmpfs", check: topOnly(flag("nosuid", true)) },
  { option: "nosymfollow", level: "SHOULD", where: "tmpfs", check: topOnly(flag("nosymfollow", true)) },
  { option: "private", level: "MUST", where: "bind", tree: "", shared: true, check: (t) => expect(!t.optional.some((o) => o.startsWith("shared:") || o.startsWith("master:")), `${DEST} is not private: ${tags(t)}`) },
  { option: "ratime", level: "SHOULD", where: "rbind", tree: "noatime", since: "1.1.0", check: both(flag("noatime", false)) },
  { option: "rbind", level: "MUST", where: "rbind", tree: "", check: (t, sub) => expect(sub !== undefined && t.fsType === "tmpfs", `a recursive bind should carry ${DEST}/sub`) },
  { option: "rdev", level: "SHOULD", where: "rbind", tree: "nodev", since: "1.1.0", check: both(flag("nodev", false)) },
  { option: "rdiratime", level: "SHOULD", where: "rbind", tree: "nodiratime", since: "1.1.0", check: both(flag("nodiratime", false)) },
  { option: "relatime", level: "MUST", where: "tmpfs", check: topOnly(flag("relatime", true)) },
  { option: "rexec", level: "SHOULD", where: "rbind", tree: "noexec", since: "1.1.0", check: both(flag("noexec", false)) },
  { option: "rnoatime", level: "SHOULD", where: "rbind", tree: "", since: "1.1.0", check: both(flag("noatime", true)) },
  { option: "rnodiratime", level: "SHOULD", where: "rbind", tree: "", since: "1.1.0", check: both(flag("nodiratime", true)) },
  { option: "rnoexec", level: "SHOULD", where: "rbind", tree: "", since: "1.1.0", check: both(flag("noexec", true)) },
  { option: "rnorelatime", level: "SHOULD", where: "rbind", tree: "", since: "1.1.0", check: (_t, sub) => expect(sub !== undefined, `the submount ${DEST}/sub is missing (rbind)`) },
  { option: "rnostrictatime", level: "SHOULD", where: "rbind", tree: "strictatime", since: "1.1.0", check: both(flag("relatime", true)) },
  { option: "rnosuid", level: "SHOULD", where: "rbind", tree: "", since: "1.1.0", check: both(flag("nosuid", true)) },
  { option: "rnosymfollow", level: "SHOULD", where: "rbind", tree: "", since: "1.1.0", check: both(flag("nosymfollow", true)) },
  { option: "ro", level: "MUST", where: "tmpfs", check: topOnly(flag("ro", true)) },
  { option: "rprivate", level: "MUST", where: "rbind", tree: "", shared: true, check: both((m, w) => expect(!m.optional.some((o) => o.startsWith("shared:") || o.startsWith("master:")), `${w} is not private: ${tags(m)}`)) },
  { option: "rrelatime", level: "SHOULD", where: "rbind", tree: "noatime", since: "1.1.0", check: both(flag("relatime", true)) },
  { option: "rro", level: "SHOULD", where: "rbind", tree: "", since: "1.1.0", check: both(flag("ro", true)) },
  { option: "rrw", level: "SHOULD", where: "rbind", tree: "ro", since: "1.1.0", check: both(flag("rw", true)) },
  { option: "rshared", level: "MUST", where: "rbind", tree: "", check: both((m, w) => expect(m.optional.some((o) => o.startsWith("shared:")), `${w} is not shared: ${tags(m)}`)) },
  { option: "rslave", level: "MUST", where: "rbind", tree: "", shared: true, check: both((m, w) => expect(m.optional.some((o) => o.startsWith("master:")), `${w} is not a slave: ${tags(m)}`)) },
  { option: "rstrictatime", level: "SHOULD", where: "rbind", tree: "noatime", since: "1.1.0", check: both(noAtimeFlags) },
  { option: "rsuid", level: "SHOULD", where: "rbind", tree: "nosuid", since: "1.1.0", check: both(flag("nosuid", false)) },
  { option: "rsymfollow", level: "SHOULD", where: "rbind", tree: "nosymfollow", since: "1.1.0", check: both(flag("nosymfollow", false)) },
  { option: "runbindable", level: "MUST", where: "rbind", tree: "", check: both((m, w) => expect(m.optional.includes("unbindable"), `${w} is not unbindable: ${tags(m)}`)) },
  { option: "rw", level: "MUST", where: "tmpfs", check: topOnly(flag("rw", true)) },
  { option: "shared", level: "MUST", where: "tmpfs", check: (t) => expect(t.optional.some((o) => o.startsWith("shared:")), `${DEST} is not shared: ${tags(t)}`) },
  { option: "silent", level: "MUST", where: "tmpfs", check: succeeds },
  { option: "slave", level: "MUST", where: "bind", tree: "", shared: true, check: (t) => expect(t.optional.some((o) => o.startsWith("master:")), `${DEST} is not a slave: ${tags(t)}`) },
  { option: "strictatime", level: "MUST", where: "tmpfs", check: topOnly(noAtimeFlags) },
  { option: "suid", level: "MUST", where: "tmpfs", check: topOnly(flag("nosuid", false)) },
  { option: "symfollow", level: "SHOULD", where: "tmpfs", check: topOnly(flag("nosymfollow", false)) },
  { option: "sync", level: "MUST", where: "tmpfs", check: (t) => expect(hasSuper(t, "sync"), `no sync (super options ${t.superOptions.join(",")})`) },
  { option: "unbindable", level: "MUST", where: "tmpfs", check: (t) => expect(t.optional.includes("unbindable"), `${DEST} is not unbindable: ${tags(t)}`) },
];

function optionCase(o: OptionCase): Case {
  const mount: (ctx: CaseContext) => Mount = (ctx) =>
    o.where === "tmpfs"
      ? { destination: DEST, type: "tmpfs", source: "tmpfs", options: ["size=1m", o.option] }
      : { destination: DEST, type: "none", source: path.join(ctx.dir, "src"), options: [o.where, o.option] };
  return {
    id: `config.mounts.option.${o.option}`,
    spec: "config.md#linux-mount-options",
    level: o.level,
    title: `the mount option ${o.option}`,
    ...(o.since ? { since: o.since } : {}),
    ...(o.level === "MAY" ? { refusable: "a MAY option of the table" } : {}),
    args: ["mountinfo"],
    ...(o.where === "tmpfs" ? {} : { setup: hostTree(o.tree ?? "", o.shared) }),
    bundle: (c, ctx) => addMount(c, mount(ctx)),
    steps: lifecycle(`${DEST} in the container's mount table`, (ctx) => {
      const ms = mountTable(ctx);
      o.check(must(ms, DEST), at(ms, `${DEST}/sub`), ctx);
    }),
  };
}

// A host directory with a file owned by host uid/gid 1000, and (for ridmap) a tmpfs under it with another.
function idmapSource(recursive: boolean): (ctx: CaseContext) => void {
  return (ctx) => {
    const src = path.join(ctx.dir, "idsrc");
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, "owned"), "x");
    fs.chownSync(path.join(src, "owned"), 1000, 1000);
    if (recursive) {
      fs.mkdirSync(path.join(src, "sub"));
      hostRun("mount", ["-t", "tmpfs", "-o", "size=1m", "spec-idsub", path.join(src, "sub")]);
      fs.writeFileSync(path.join(src, "sub", "owned"), "x");
      fs.chownSync(path.join(src, "sub", "owned"), 1000, 1000);
    }
  };
}

const ID_MAP = [{ containerID: 0, hostID: 1000, size: 1 }];

function idmapCase(option: "idmap" | "ridmap"): Case {
  const recursive = option === "ridmap";
  const files = recursive ? [`${DEST}/owned`, `${DEST}/sub/owned`] : [`${DEST}/owned`];
  return {
    id: `config.mounts.option.${option}`,
    spec: "config.md#linux-mount-options",
    level: "SHOULD",
    title: `${option}: the mount has the given id mapping${recursive ? ", recursively" : ""} (host uid 1000 shows as 0)`,
    since: "1.2.0",
    args: ["ls", ...files],
    setup: idmapSource(recursive),
    bundle: (c, ctx) => addMount(c, { destination: DEST, type: "none", source: path.join(ctx.dir, "idsrc"), options: [recursive ? "rbind" : "bind", option], uidMappings: ID_MAP, gidMappings: ID_MAP }),
    steps: lifecycle("owners through the mount", (ctx) => {
      const ls = ctx.json<ProbeLs[]>(0);
      for (const f of files) {
        const e = ls.find((x) => x.path === f);
        eq(e && { uid: e.uid, gid: e.gid }, { uid: 0, gid: 0 }, `owner of ${f}`);
      }
    }),
  };
}

export const configMounts: Case[] = [
  {
    id: "config.mounts.order",
    spec: "config.md#mounts",
    level: "MUST",
    title: "mounts are made in the listed order: a later mount on the same path is on top",
    args: ["multi", "read", `${DEST}/marker`, "--", "mountinfo"],
    setup: (ctx) => {
      fs.mkdirSync(path.join(ctx.dir, "second"));
      fs.writeFileSync(path.join(ctx.dir, "second", "marker"), "second");
    },
    bundle: (c, ctx) => {
      addMount(c, { destination: DEST, type: "tmpfs", source: "tmpfs", options: ["size=1m"] });
      addMount(c, { destination: DEST, type: "none", source: path.join(ctx.dir, "second"), options: ["bind"] });
    },
    steps: lifecycle("what is visible at the path", (ctx) => {
      eq(ctx.json<ProbeResult>(0).content, "second", `${DEST}/marker (the bind mount listed second)`);
      const here = mountTable(ctx).filter((m) => m.mountPoint === DEST);
      expect(here.length === 2 && here[0]!.fsType === "tmpfs" && here[1]!.fsType !== "tmpfs", `expected the tmpfs, then the bind mount on it; got ${here.map((m) => m.fsType).join(", ") || "nothing"}`);
    }),
  },
  {
    id: "config.mounts.order.nested",
    spec: "config.md#mounts",
    level: "MUST",
    title: "mounts are made in the listed order: a mount inside an earlier one stays visible",
    args: ["mountinfo"],
    bundle: (c) => {
      addMount(c, { destination: "/spec-a", type: "tmpfs", source: "tmpfs", options: ["size=1m"] });
      addMount(c, { destination: "/spec-a/b", type: "tmpfs", source: "tmpfs", options: ["size=1m", "ro"] });
    },
    steps: lifecycle("the nested mount", (ctx) => {
      const ms = mountTable(ctx);
      const a = must(ms, "/spec-a");
      const b = must(ms, "/spec-a/b");
      eq(b.parent, a.id, "parent of /spec-a/b (the tmpfs at /spec-a)");
    }),
  },
  {
    id: "config.mounts.destination.relative",
    spec: "config.md#mounts",
    level: "MUST",
    title: "a relative destination is relative to /",
    since: "1.2.0",
    args: ["mountinfo"],
    bundle: (c) => addMount(c, { destination: "spec-relative", type: "tmpfs", source: "tmpfs", options: ["size=1m"] }),
    steps: lifecycle("the mount", (ctx) => eq(must(mountTable(ctx), "/spec-relative").fsType, "tmpfs", "/spec-relative")),
  },
  {
    id: "config.mounts.source.relative-bind",
    spec: "config.md#mounts",
    level: "MUST",
    title: "a relative bind mount source is relative to the bundle",
    args: ["read", `${DEST}/marker`],
    setup: (ctx) => {
      fs.mkdirSync(path.join(ctx.bundle, "spec-data"));
      fs.writeFileSync(path.join(ctx.bundle, "spec-data", "marker"), "from the bundle");
    },
    bundle: (c) => addMount(c, { destination: DEST, type: "none", source: "spec-data", options: ["bind"] }),
    steps: lifecycle("the bound file", (ctx) => eq(ctx.json<ProbeResult>(0).content, "from the bundle", `${DEST}/marker`)),
  },
  {
    id: "config.mounts.options.data",
    spec: "config.md#linux-mount-options",
    level: "SHOULD",
    title: "unknown options are file-system specific: passed as mount(2) data (tmpfs size, mode, nr_inodes)",
    args: ["mountinfo"],
    bundle: (c) => addMount(c, { destination: DEST, type: "tmpfs", source: "tmpfs", options: ["nosuid", "size=1m", "mode=700", "nr_inodes=1k"] }),
    steps: lifecycle("the tmpfs super options", (ctx) => {
      const m = must(mountTable(ctx), DEST);
      for (const o of ["size=1024k", "mode=700", "nr_inodes=1024"]) expect(hasSuper(m, o), `no ${o} (super options ${m.superOptions.join(",")})`);
      expect(has(m, "nosuid"), "nosuid was passed as data, not as a flag");
    }),
  },
  {
    id: "config.mounts.options.mount8",
    spec: "config.md#linux-mount-options",
    level: "SHOULD",
    title: "an option mount(8) knows is treated as mount(8) does (x-* comments are not passed to the kernel)",
    args: ["mountinfo"],
    bundle: (c) => addMount(c, { destination: DEST, type: "tmpfs", source: "tmpfs", options: ["size=1m", "x-spec-tests.comment=1"] }),
    steps: lifecycle("the mount", (ctx) => {
      const m = must(mountTable(ctx), DEST);
      expect(!m.superOptions.some((o) => o.startsWith("x-")), `x-spec-tests.comment reached the kernel: ${m.superOptions.join(",")}`);
    }),
  },
  {
    id: "config.mounts.option.remount",
    spec: "config.md#linux-mount-options",
    level: "MUST",
    title: "remount changes an existing mount (a second entry remounts the tmpfs read-only)",
    args: ["mountinfo"],
    bundle: (c) => {
      addMount(c, { destination: DEST, type: "tmpfs", source: "tmpfs", options: ["size=1m"] });
      addMount(c, { destination: DEST, type: "tmpfs", source: "tmpfs", options: ["remount", "ro", "size=1m"] });
    },
    steps: lifecycle("the mount", (ctx) => {
      const here = mountTable(ctx).filter((m) => m.mountPoint === DEST);
      eq(here.length, 1, `mounts at ${DEST} (one, remounted)`);
      expect(has(here[0]!, "ro"), `${DEST} is not read-only`);
    }),
  },
  {
    id: "config.mounts.option.tmpcopyup",
    spec: "config.md#linux-mount-options",
    level: "MAY",
    title: "tmpcopyup copies the directory's contents into the new tmpfs",
    refusable: "a MAY option of the table",
    args: ["multi", "read", "/etc/spec-copied", "--", "mountinfo"],
    setup: (ctx) => fs.writeFileSync(ctx.hostPath("etc/spec-copied"), "copied"),
    bundle: (c) => addMount(c, { destination: "/etc", type: "tmpfs", source: "tmpfs", options: ["size=1m", "tmpcopyup"] }),
    steps: lifecycle("/etc", (ctx) => {
      eq(must(mountTable(ctx), "/etc").fsType, "tmpfs", "/etc");
      eq(ctx.json<ProbeResult>(0).content, "copied", "/etc/spec-copied");
    }),
  },
  ...OPTION_CASES.map(optionCase),
  idmapCase("idmap"),
  idmapCase("ridmap"),
  {
    id: "config.mounts.option.idmap.no-mapping",
    spec: "config.md#linux-mount-options",
    level: "MUST",
    title: "idmap without mappings in a container without a user namespace is an error",
    since: "1.2.0",
    setup: idmapSource(false),
    bundle: (c, ctx) => addMount(c, { destination: DEST, type: "none", source: path.join(ctx.dir, "idsrc"), options: ["bind", "idmap"] }),
    steps: refusedAtCreate(),
  },
  {
    id: "config.mounts.uidMappings.alone",
    spec: "config.md#posix-platform-mounts",
    level: "MUST",
    title: "a mount's uidMappings without gidMappings is an error",
    since: "1.1.0",
    setup: idmapSource(false),
    bundle: (c, ctx) => addMount(c, { destination: DEST, type: "none", source: path.join(ctx.dir, "idsrc"), options: ["bind", "idmap"], uidMappings: ID_MAP }),
    steps: refusedAtCreate(),
  },
];

