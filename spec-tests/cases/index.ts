// Every case, in the order they run and appear in the matrix.
import type { Case } from "../harness/case";
import { configBasics } from "./config-basics";
import { configHooks } from "./config-hooks";
import { configMounts } from "./config-mounts";
import { configProcess } from "./config-process";
import { configRequired } from "./config-required";
import { featuresCases } from "./features";
import { linuxCgroups } from "./linux-cgroups";
import { linuxDevices } from "./linux-devices";
import { linuxNamespaces } from "./linux-namespaces";
import { linuxOther } from "./linux-other";
import { linuxSeccomp } from "./linux-seccomp";
import { runtimeCases } from "./runtime";

export const ALL_CASES: readonly Case[] = [
  ...runtimeCases,
  ...configBasics,
  ...configRequired,
  ...configProcess,
  ...configMounts,
  ...configHooks,
  ...linuxNamespaces,
  ...linuxDevices,
  ...linuxCgroups,
  ...linuxSeccomp,
  ...linuxOther,
  ...featuresCases,
];
