// The vocabulary cases are written in: step sequences, config patches, recording hooks, host-side helpers and
// requirements, each from its own module.
export { LONG_RUNNING, lifecycle, refusedAtCreate, refusedAtCreateOrStart } from "./steps";
export { USERNS_MAP, addHook, addMount, hooks, linux, proc, setNamespace, withUserNamespace } from "./patches";
export { containerRecordHook, failingHook, hookTags, recordHook } from "./hooks";
export { consoleDrained, consoleText, holdNamespaces, withConsole, withSeccompAgent } from "./helpers";
export { needs } from "./requirements";
