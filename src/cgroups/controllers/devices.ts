// devices: enforcing device rules on a container's cgroup: v1 through devices.deny / devices.allow (the fewest
// writes from the cgroup's current devices.list to the target, as runc's setV1), v2 through a BPF cgroup
// device program attached with BPF_F_ALLOW_MULTI that replaces the one attached before (runc's setV2). The
// rules are linux.resources.devices followed by runc's defaults (devicerules.ts); `update` leaves them alone
// unless it is given some.
import * as fs from "fs";
import { errnoCode, messageOf } from "../../errors";
import { native } from "../../native";
import type { Controller } from "../controller";
import { deviceFilter, LICENSE } from "../devicefilter";
import { containerDeviceRules, DeviceEmulator, type DeviceRule, ruleString } from "../devicerules";
import { readCgroupFile, writeCgroupFile } from "../files";

const WHAT = "linux.resources.devices";

export const devices: Controller = {
  name: "devices",
  setting: WHAT,
  bpf: true,
  missing: "this container has no devices cgroup (the host mounts no v1 devices hierarchy)",
  // The rules are checked here, before the manager looks for the cgroup: an invalid rule is the error
  // reported even where there is no devices cgroup.
  needed: (r, o) => {
    if (o.skipDevices) return false;
    containerDeviceRules(r.devices, o.devices);
    return true;
  },
  apply: (w, r, o) => {
    const rules = containerDeviceRules(r.devices, o.devices);
    if (w.version === 1) setDevicesV1(w.dir, rules);
    else {
      for (const d of r.devices ?? []) {
        const bad = [...(d.access ?? "")].find((c) => !"rwm".includes(c));
        if (bad !== undefined) throw new Error(`${WHAT}: unknown device access ${JSON.stringify(bad)}`);
      }
      setDevicesV2(w.dir, rules);
    }
  },
};

export function setDevicesV1(dir: string, rules: readonly DeviceRule[]): void {
  const read = () => {
    try {
      return DeviceEmulator.fromList(readCgroupFile(dir, "devices.list"));
    } catch (e) {
      throw new Error(`${WHAT}: ${messageOf(e)}`);
    }
  };
  const target = ruleState(rules);
  for (const r of read().transition(target)) {
    try {
      writeCgroupFile(dir, r.allow ? "devices.allow" : "devices.deny", ruleString(r));
    } catch (e) {
      throw new Error(`${WHAT}: ${messageOf(e)}`);
    }
  }
  // The kernel may refuse silently what its parent does not allow: check the result as runc does.
  const after = read();
  if (!target.isBlacklist() && !after.equals(target)) throw new Error(`${WHAT}: ${dir}/devices.list does not match the requested rules after writing them`);
  if (target.isBlacklist() !== after.isBlacklist()) throw new Error(`${WHAT}: ${dir}/devices.list is not in the requested ${target.isBlacklist() ? "allow" : "deny"}-by-default mode`);
}

function ruleState(rules: readonly DeviceRule[]): DeviceEmulator {
  try {
    return DeviceEmulator.fromRules(rules);
  } catch (e) {
    throw new Error(`${WHAT}: ${messageOf(e)}`);
  }
}

// Load the program, then attach it in place of the one attached before (BPF_F_REPLACE, so the cgroup is
// never without a filter), or attach it and detach every earlier one (kernels without BPF_F_REPLACE, or
// a cgroup with several). Earlier programs this process may not read (EPERM: an LSM) are left, as runc
// does: device programs can only restrict further.
export function setDevicesV2(dir: string, rules: readonly DeviceRule[]): void {
  let program: ReturnType<typeof deviceFilter>;
  try {
    program = deviceFilter(rules);
  } catch (e) {
    throw new Error(`${WHAT}: ${messageOf(e)}`);
  }
  const n = native();
  const fail = (e: unknown) => new Error(`${WHAT}: ${messageOf(e)} (cgroup ${dir})`);
  let cg: number;
  try {
    cg = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  } catch (e) {
    throw fail(e);
  }
  const old: number[] = [];
  try {
    for (const id of n.bpfQueryDevicePrograms(cg)) {
      try {
        old.push(n.bpfProgramFdById(id));
      } catch (e) {
        const code = errnoCode(e);
        if (code !== "EPERM" && code !== "EACCES") throw e;
      }
    }
    const prog = n.bpfLoadDeviceProgram(program.bytes, LICENSE);
    try {
      if (old.length === 1) {
        try {
          n.bpfAttachDeviceProgram(cg, prog, old[0]!);
          return;
        } catch (e) {
          if (errnoCode(e) !== "EINVAL") throw e; // no BPF_F_REPLACE (kernel < 5.6): attach, then detach
        }
      }
      n.bpfAttachDeviceProgram(cg, prog, -1);
      for (const fd of old) n.bpfDetachDeviceProgram(cg, fd);
    } finally {
      fs.closeSync(prog);
    }
  } catch (e) {
    throw fail(e);
  } finally {
    for (const fd of old) fs.closeSync(fd);
    fs.closeSync(cg);
  }
}

// The ids of the device programs attached to a v2 cgroup (to inspect what is enforced).
export function attachedDevicePrograms(dir: string): number[] {
  const cg = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    return native().bpfQueryDevicePrograms(cg);
  } finally {
    fs.closeSync(cg);
  }
}
