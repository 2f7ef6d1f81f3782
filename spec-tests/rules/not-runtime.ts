// MUST and SHOULD sentences of the five spec files that bind no Linux runtime through its command line, and why.
// They have no case on purpose.
export const NOT_RUNTIME_RULES: { spec: string; text: string; why: string }[] = [
  { spec: "config.md#root", text: "The value [of root.path] SHOULD be the conventional rootfs.", why: "binds the config's author" },
  { spec: "config.md#mounts", text: "Linux: this value [destination] SHOULD be an absolute path.", why: "binds the config's author (relative ones are tested: they MUST be relative to /)" },
  {
    spec: "config.md#posix-platform-mounts",
    text: "If specified [uidMappings, gidMappings], the options field of the mounts structure SHOULD contain either idmap or ridmap.",
    why: "binds the config's author",
  },
  { spec: "config.md#annotations", text: "Keys MUST be strings.", why: "JSON object keys are strings: no config can break it" },
  { spec: "config.md#annotations", text: "Keys SHOULD be named using a reverse domain notation.", why: "binds the config's author" },
  {
    spec: "config.md#annotations",
    text: "Annotations using keys in the org.opencontainers namespace MUST be as described; org.opencontainers.image.* values MUST be valid image-spec values and SHOULD only be used per the image-spec conversion; other org.opencontainers keys MUST NOT be used by subsequent specifications.",
    why: "binds the config's author and the spec's authors",
  },
  {
    spec: "config.md#annotations",
    text: "org.opencontainers.image.stopSignal: indicates signal that SHOULD be sent by the container runtimes to kill the container.",
    why: "the kill operation takes its signal from the caller; the annotation guides callers (engines)",
  },
  {
    spec: "config.md (Windows, Solaris, z/OS, VM sections)",
    text: "Windows: root.path MUST be a volume GUID path, root.readonly MUST be omitted or false, mount destinations MUST be absolute and not nested, runtimes MUST support ro, windows MUST be set; Solaris and other platforms: destinations MUST be absolute; Hyper-V: root MUST NOT be set.",
    why: "other platforms",
  },
  { spec: "config-linux.md#devices", text: "The same type, major and minor SHOULD NOT be used for multiple devices.", why: "binds the config's author" },
  {
    spec: "config-linux.md#control-groups",
    text: "A runtime MAY … check if the container cgroup is fit for purpose, and MUST generate an error if such a check fails.",
    why: "binds only the checks a runtime chooses to make, which are not visible from outside",
  },
  { spec: "config-linux.md#cgroups-path", text: "The value of cgroupsPath MUST be either an absolute path or a relative path.", why: "every string is one or the other" },
  {
    spec: "config-linux.md#cgroups-path",
    text: "Runtimes MAY consider certain cgroupsPath values to be invalid, and MUST generate an error if this is the case.",
    why: "binds only the values a runtime chooses to consider invalid",
  },
  { spec: "config-linux.md#cpu", text: "quota MUST be no smaller than burst; burst MUST be no larger than any positive quota (runtimes MAY generate an error).", why: "binds the config's author; the runtime MAY refuse" },
  {
    spec: "config-linux.md#block-io, #rdma",
    text: "You MUST specify at least one of weight or leafWeight (hcaHandles or hcaObjects) in a given entry.",
    why: "binds the config's author",
  },
  {
    spec: "config-linux.md#intelrdt",
    text: "l3CacheSchema SHOULD start with L3: and SHOULD NOT contain newlines; memBwSchema MUST start with MB: and MUST NOT contain newlines.",
    why: "binds the config's author",
  },
  { spec: "features.md#features-structure", text: "The null value MUST NOT be confused with an empty value such as 0, false, \"\", [], and {}.", why: "binds consumers of the features structure" },
];
