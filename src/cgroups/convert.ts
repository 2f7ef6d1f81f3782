// runc's conversions from the runtime-spec's (cgroup v1 shaped) resource values to cgroup v2 values
// (opencontainers/cgroups utils.go, fs2/memory.go), kept bit-for-bit so tsrun and runc write the same files.

// ConvertCPUSharesToCgroupV2Value: cpu.shares [2, 262144] onto cpu.weight [1, 10000] by a quadratic in
// log2(shares) through (2, 1), (1024, 100) and (262144, 10000). 0 means unset.
export function cpuSharesToWeight(shares: number): number {
  if (shares === 0) return 0;
  if (shares <= 2) return 1;
  if (shares >= 262144) return 10000;
  const l = Math.log2(shares);
  const exponent = (l * l + 125 * l) / 612.0 - 7.0 / 34.0;
  return Math.ceil(Math.pow(10, exponent));
}

// ConvertBlkIOToIOWeightValue: blkio.weight [10, 1000] linearly onto io.weight [1, 10000] (integer maths).
export function blkioWeightToIoWeight(weight: number): number {
  if (weight === 0) return 0;
  return 1 + Math.floor(((weight - 10) * 9999) / 990);
}

// ConvertMemorySwapToCgroupV2Value: the spec's swap is memory+swap; v2's memory.swap.max is swap alone.
// Returns -1 for "max", 0 for "leave alone".
export function memorySwapToV2(memorySwap: number, memory: number): number {
  if (memory === -1 && memorySwap === 0) return -1; // unlimited memory, swap not given: both unlimited
  if (memorySwap === -1 || memorySwap === 0) return memorySwap;
  if (memory === -1) return memorySwap;
  if (memory === 0) throw new Error("unable to set swap limit without memory limit");
  if (memory < 0) throw new Error(`invalid memory value: ${memory}`);
  if (memorySwap < memory) throw new Error("memory+swap limit should be >= memory limit");
  return memorySwap - memory;
}

// fs2 numToStr: v2 files with a .max/.low/.high suffix take "max" for no limit; 0 means "do not write".
export function v2Limit(value: number): string {
  if (value === 0) return "";
  if (value === -1) return "max";
  return BigInt(value).toString();
}

// docker/go-units RAMInBytes, as `runc update --memory 512m` parses: a decimal number with an optional
// binary-multiplier suffix k, m, g, t, p (any case, optional "i" and "b").
export function ramInBytes(text: string): number {
  const m = /^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(text);
  if (!m) throw new Error(`invalid size: '${text}'`);
  const mult: Record<string, number> = { k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 };
  const size = parseFloat(m[1]!);
  if (Number.isNaN(size)) throw new Error(`invalid size: '${text}'`);
  return Math.trunc(size * (m[2] ? mult[m[2].toLowerCase()]! : 1));
}
