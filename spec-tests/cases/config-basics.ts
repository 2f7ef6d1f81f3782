// config.md: specification version, root, hostname, domainname, annotations, extensibility, valid values.
import * as fs from "fs";
import * as path from "path";
import type { Case, ProbeResult, State } from "../harness/case";
import { eq, expect } from "../harness/check";
import { deleteRaw, setRaw } from "../harness/config";
import { lifecycle, linux, refusedAtCreate, refusedAtCreateOrStart } from "../harness/dsl";
import { EROFS } from "./errno";

export const configBasics: Case[] = [
  {
    id: "config.ociVersion.invalid",
    spec: "config.md#specification-version",
    level: "MUST",
    title: "an ociVersion that is not SemVer 2.0.0 is an error at create",
    bundle: (c) => {
      c.ociVersion = "not-a-version";
    },
    steps: refusedAtCreate(),
  },
  {
    id: "config.ociVersion.missing",
    spec: "config.md#specification-version",
    level: "MUST",
    title: "a config without ociVersion (REQUIRED) is an error at create",
    bundle: (c) => deleteRaw(c, "ociVersion"),
    steps: refusedAtCreate(),
  },
  {
    id: "config.root.missing",
    spec: "config.md#root",
    level: "MUST",
    title: "root is REQUIRED on Linux: a config without it is an error",
    bundle: (c) => deleteRaw(c, "root"),
    steps: refusedAtCreate(),
  },
  {
    id: "config.root.path.relative",
    spec: "config.md#root",
    level: "MUST",
    title: "a relative root.path is relative to the bundle",
    args: ["read", "/spec-marker"],
    setup: (ctx) => fs.writeFileSync(ctx.hostPath("spec-marker"), "in the bundle's rootfs"),
    steps: lifecycle("the container sees the bundle's rootfs", (ctx) => {
      eq(ctx.json<ProbeResult>(0).content, "in the bundle's rootfs", "/spec-marker");
    }),
  },
  {
    id: "config.root.path.absolute",
    spec: "config.md#root",
    level: "MUST",
    title: "an absolute root.path is used as it is",
    args: ["read", "/spec-marker"],
    setup: (ctx) => {
      // The rootfs lives outside the bundle; config.json names it by absolute path.
      const elsewhere = path.join(ctx.dir, "elsewhere");
      fs.renameSync(ctx.rootfs, elsewhere);
      fs.writeFileSync(path.join(elsewhere, "spec-marker"), "absolute");
      ctx.values.set("root", elsewhere);
    },
    bundle: (c, ctx) => {
      c.root = { path: String(ctx.values.get("root")), readonly: false };
    },
    steps: lifecycle("the container sees the rootfs at the absolute path", (ctx) => {
      eq(ctx.json<ProbeResult>(0).content, "absolute", "/spec-marker");
    }),
  },
  {
    id: "config.root.path.missing-directory",
    spec: "config.md#root",
    level: "MUST",
    title: "a directory MUST exist at root.path: a missing one is an error",
    bundle: (c) => {
      c.root = { path: "no-such-rootfs" };
    },
    steps: refusedAtCreate(),
  },
  {
    id: "config.root.readonly",
    spec: "config.md#root",
    level: "MUST",
    title: "root.readonly true: the root filesystem is read-only inside the container",
    args: ["write", "/spec-written", "x"],
    bundle: (c) => {
      c.root = { path: "rootfs", readonly: true };
    },
    steps: lifecycle("writing to / fails with EROFS", (ctx) => {
      const w = ctx.json<ProbeResult>(0);
      eq(w.ok, false, "write /spec-written succeeded");
      eq(w.errno, EROFS, "errno of write /spec-written");
    }),
  },
  {
    id: "config.root.readonly.default",
    spec: "config.md#root",
    level: "MUST",
    title: "root.readonly defaults to false: without it the root filesystem is writable",
    args: ["write", "/spec-written", "x"],
    bundle: (c) => {
      c.root = { path: "rootfs" };
    },
    steps: lifecycle("writing to / succeeds", (ctx) => {
      eq(ctx.json<ProbeResult>(0).ok, true, "write /spec-written");
      expect(fs.existsSync(ctx.hostPath("spec-written")), "the file is not in the bundle's rootfs");
    }),
  },
  {
    id: "config.hostname",
    spec: "config.md#hostname",
    level: "MUST",
    title: "hostname is the container's hostname (new uts namespace)",
    bundle: (c) => {
      c.hostname = "oci-spec-host";
    },
    steps: lifecycle("facts.hostname", (ctx) => eq(ctx.facts().hostname, "oci-spec-host", "hostname")),
  },
  {
    id: "config.domainname",
    spec: "config.md#domainname",
    level: "MUST",
    title: "domainname is the container's NIS domain name (new uts namespace)",
    since: "1.1.0",
    bundle: (c) => {
      c.domainname = "spec.example";
    },
    steps: lifecycle("facts.domainname", (ctx) => eq(ctx.facts().domainname, "spec.example", "domainname")),
  },
  {
    id: "config.annotations.state",
    spec: "config.md#annotations",
    level: "MUST",
    title: "the config's annotations are the container's: state lists them",
    args: ["sleep", "600"],
    bundle: (c) => {
      c.annotations = { "com.example.spec-tests": "value", "org.opencontainers.image.os": "linux", "com.example.empty": "" };
    },
    steps: [
      { op: "create" },
      { op: "state", check: (s: State) => eq(s.annotations, { "com.example.spec-tests": "value", "org.opencontainers.image.os": "linux", "com.example.empty": "" }, "state.annotations") },
      { op: "delete", force: true },
      { op: "nothingLeft" },
    ],
  },
  {
    id: "config.annotations.empty-key",
    spec: "config.md#annotations",
    level: "MUST",
    title: "annotation keys MUST NOT be empty: such a config is an error",
    bundle: (c) => {
      c.annotations = { "": "empty key" };
    },
    steps: refusedAtCreate(),
  },
  {
    id: "config.annotations.non-string-value",
    spec: "config.md#annotations",
    level: "MUST",
    title: "annotation values MUST be strings: a number is an error",
    bundle: (c) => {
      c.annotations = {};
      setRaw(c.annotations, "com.example.number", 42);
    },
    steps: refusedAtCreate(),
  },
  {
    id: "config.annotations.unknown-keys",
    spec: "config.md#annotations",
    level: "MUST",
    title: "unknown annotation keys are handled like unknown properties: ignored",
    bundle: (c) => {
      c.annotations = { "com.example.unknown.to.any.runtime": "x", "org.opencontainers.image.author": "someone" };
    },
    steps: lifecycle("the container runs", (ctx) => eq(ctx.facts().pid, 1, "pid")),
  },
  {
    id: "config.extensibility.unknown-properties",
    spec: "config.md#extensibility",
    level: "MUST",
    title: "unknown properties anywhere are ignored, not errors",
    bundle: (c) => {
      setRaw(c, "com.example.extension", { nested: [1, 2, 3] });
      setRaw(c.process!, "xSpecTestsUnknown", true);
      setRaw(c.root!, "xSpecTestsUnknown", "x");
      setRaw(c.mounts![0]!, "xSpecTestsUnknown", 1);
      setRaw(linux(c), "xSpecTestsUnknown", { a: "b" });
    },
    steps: lifecycle("the container runs as configured", (ctx) => eq(ctx.facts().hostname, "runc", "hostname")),
  },
  {
    id: "config.valid-values.namespace-type",
    spec: "config.md#valid-values",
    level: "MUST",
    title: "an invalid value (namespace type \"bogus\") is an error",
    bundle: (c) => {
      linux(c).namespaces!.push({ type: "bogus" });
    },
    steps: refusedAtCreate(),
  },
  {
    id: "config.valid-values.wrong-type",
    spec: "config.md#valid-values",
    level: "MUST",
    title: "a value of the wrong JSON type (process.terminal: \"yes\") is an error",
    bundle: (c) => setRaw(c.process!, "terminal", "yes"),
    steps: refusedAtCreate(),
  },
  {
    id: "config.process.missing",
    spec: "config.md#process",
    level: "MUST",
    title: "process is REQUIRED when start is called: without it create or start fails",
    bundle: (c) => deleteRaw(c, "process"),
    steps: refusedAtCreateOrStart("start without a process"),
  },
];
