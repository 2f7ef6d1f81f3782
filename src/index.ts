// tsrun as a library: the async, typed API of src/api.ts, and the pieces a Node program needs around it
// (the default spec, the config schema, features).
export { Runtime, Container, ExecProcess } from "./api";
export type { RuntimeOptions, CreateOptions, ExecOptions, ExitStatus, Stats, JsonValue, ContainerEvent } from "./api";
export { TsrunError } from "./errors";
export type { ErrorCode } from "./errors";
export type { LogOptions, LogFormat } from "./log";
export type { ContainerState, Status, ExitRecord } from "./state/store";
export { features } from "./runtime/features";
export { defaultSpec, specJson } from "./spec/default";
export { parseSpec, parseProcess, parseResources, SpecError } from "./spec/schema";
export type { Spec, Process, LinuxResources, UpdateResources } from "./spec/schema";
