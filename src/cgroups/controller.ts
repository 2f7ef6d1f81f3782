// The seam between a cgroup manager and its controllers (runc's fs subsystem / fs2 setX functions, youki's
// Controller and StatsProvider traits). A controller knows which linux.resources settings are its own
// ("needed"), how to write them into the one directory the manager found for it ("apply"; the directory's
// cgroup version tells v1 from v2 files), and how to read its statistics ("stats"). Where that directory
// is — a v1 hierarchy, the v2 tree, nowhere — is the manager's business, never a controller's.
import type { LinuxDevice, LinuxResources } from "../spec/schema";
import { CgroupFileError, cgroupFileExists, readCgroupFile, readUint, writeCgroupFile } from "./files";
import type { Stats } from "./stats";

// One container cgroup directory and the cgroup version of the tree it is in.
export interface Location {
  version: 1 | 2;
  dir: string;
}

export interface ApplyOptions {
  warn: (msg: string) => void;
  // linux.devices of the config: a default device the config also lists gets no default rule (runc).
  devices?: readonly LinuxDevice[];
  // `update` leaves device rules alone unless it is given some (runc's update always does).
  skipDevices?: boolean;
  // runc's rootless cgroup manager: the device controller's errors are warned about, not fatal.
  rootless?: boolean;
}

export interface Controller {
  // The controller's v1 name, and its v2 name where that differs (blkio / io).
  readonly name: string;
  readonly v2Name?: string;
  // The linux.resources group an error names when the container has no cgroup for this controller.
  readonly setting: string;
  // Enforced by a BPF program on the container's v2 directory rather than through controller files (devices):
  // only on a v2-only host, where the v2 tree has no such controller to list.
  readonly bpf?: boolean;
  // The error (after `setting: `) when there is no cgroup for it; the default names the hierarchies looked at.
  readonly missing?: string;
  // On v1 and hybrid hosts statistics come from the v1 hierarchy only, unless the controller reads them where
  // its limits are written (hugetlb, which a hybrid host may have on v2 only).
  readonly statsWhereApplied?: boolean;
  needed(r: LinuxResources, o: ApplyOptions): boolean;
  apply(w: Writer, r: LinuxResources, o: ApplyOptions): void;
  // Fills its part of `s` (loc undefined: the container has no cgroup for it).
  stats?(loc: Location | undefined, s: Stats): void;
}

// The one place files are written: errors carry the setting's name and the file.
export class Writer {
  constructor(
    readonly dir: string,
    readonly version: 1 | 2,
    readonly warn: (msg: string) => void,
  ) {}

  write(setting: string, file: string, value: string): void {
    const e = this.attempt(file, value);
    if (e) throw this.fail(setting, e);
  }

  // A write whose failure the caller inspects (runc retries some EINVALs, skips some ENOENTs).
  attempt(file: string, value: string): CgroupFileError | undefined {
    try {
      writeCgroupFile(this.dir, file, value);
      return undefined;
    } catch (e) {
      if (e instanceof CgroupFileError) return e;
      throw e;
    }
  }

  fail(setting: string, e: Error): Error {
    return new Error(`${setting}: ${e.message}`);
  }

  read(setting: string, file: string): string {
    try {
      return readCgroupFile(this.dir, file);
    } catch (e) {
      throw this.fail(setting, e as Error);
    }
  }

  readUint(setting: string, file: string): bigint {
    try {
      return readUint(this.dir, file);
    } catch (e) {
      throw this.fail(setting, e as Error);
    }
  }

  exists(file: string): boolean {
    return cgroupFileExists(this.dir, file);
  }
}

export const nz = (v: number | undefined): boolean => v !== undefined && v !== 0;
export const any = (l: readonly unknown[] | undefined): boolean => (l?.length ?? 0) > 0;
