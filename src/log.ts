// Logging as runc does it: --log FILE (default stderr), --log-format text|json, --debug.
// Errors always reach stderr as one plain line; the log file gets one record per message.
import * as fs from "fs";

export type LogFormat = "text" | "json";
export type Level = "debug" | "info" | "warning" | "error";

export interface LogOptions {
  file?: string;
  format?: LogFormat;
  debug?: boolean;
}

export class Logger {
  private fd: number | undefined;
  readonly debugEnabled: boolean;
  constructor(private readonly opts: LogOptions = {}) {
    this.debugEnabled = opts.debug === true;
  }

  private target(): number {
    if (this.fd === undefined) {
      this.fd = this.opts.file ? fs.openSync(this.opts.file, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT, 0o644) : 2;
    }
    return this.fd;
  }

  log(level: Level, text: string): void {
    if (level === "debug" && !this.debugEnabled) return;
    const msg = oneLine(text);
    const time = new Date().toISOString();
    const line =
      this.opts.format === "json"
        ? JSON.stringify({ level, msg, time }) + "\n"
        : `time="${time}" level=${level} msg=${JSON.stringify(msg)}\n`;
    try {
      fs.writeSync(this.target(), line);
    } catch {
      // A log that cannot be written must not hide the error itself, which still reaches stderr.
    }
  }

  debug(msg: string): void {
    if (this.debugEnabled) this.log("debug", msg);
  }
  warn(msg: string): void {
    this.log("warning", msg);
  }

  // The error path: one plain line on stderr, and one record in the log file when there is one.
  error(text: string): void {
    const msg = oneLine(text);
    if (this.opts.file) this.log("error", msg);
    else if (this.opts.format === "json") this.log("error", msg);
    if (this.opts.file || this.opts.format !== "json") {
      try {
        fs.writeSync(2, msg + "\n");
      } catch {
        // stderr closed: nothing left to tell
      }
    }
  }

  close(): void {
    if (this.fd !== undefined && this.fd !== 2) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

// Every message is one line, whatever it quotes (a hook's output, a file's content, a config value).
export function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, " ").trim();
}

