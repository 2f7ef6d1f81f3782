// runc parity for the process, its credentials and its namespaces (issue 12): what a script in the
// container or an engine around it can tell. Each test pins what runc HEAD does.
import * as assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import { cleanup, makeBundle, ok, probe, tsrun, waitFor, work, type Bundle } from "./helpers";

after(cleanup);

interface LsEntry {
  path: string;
  exists: boolean;
  uid: number;
  gid: number;
  mode: number;
}

// A --console-socket receiver (the probe's console-recv, run on the host): everything the container writes
// to its terminal lands in `out`.
function consoleReceiver(name: string): { sock: string; out: string; child: ChildProcess } {
  const sock = path.join(work(), `${name}.sock`);
  const out = path.join(work(), `${name}.out`);
  const child = spawn(probe(), ["console-recv", sock, out], { stdio: "ignore" });
  waitFor(() => fs.existsSync(sock), 5000, 10);
  return { sock, out, child };
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null ? resolve() : child.on("exit", () => resolve())));
}

// The first JSON line the container wrote to its terminal.
function firstJsonLine<T>(text: string): T {
  const line = text.split(/\r?\n/).find((l) => l.startsWith("[") || l.startsWith("{"));
  if (!line) throw new Error(`no JSON in the terminal output: ${JSON.stringify(text)}`);
  return JSON.parse(line) as T;
}

async function runOnTerminal(b: Bundle, name: string): Promise<string> {
  const rx = consoleReceiver(name);
  try {
    ok(tsrun(["create", "--console-socket", rx.sock, "--bundle", b.dir, b.id]));
    ok(tsrun(["start", b.id]));
    await exited(rx.child);
    return fs.readFileSync(rx.out, "utf8");
  } finally {
    rx.child.kill();
    tsrun(["delete", "-f", b.id]);
  }
}

describe("runc parity: the process", () => {
  test("terminal: the pty's owner becomes the process's uid, its group stays devpts' tty group (runc's fixStdioPermissions)", async () => {
    const b = makeBundle(["ls", "/dev/pts/0"], (s) => {
      s.process!.terminal = true;
      s.process!.user = { uid: 1000, gid: 1000 };
    });
    const [pts] = firstJsonLine<LsEntry[]>(await runOnTerminal(b, "pty-owner"));
    assert.equal(pts!.exists, true);
    assert.equal(pts!.uid, 1000);
    assert.equal(pts!.gid, 5, "devpts' gid=5 (tty) is kept");
  });

  test("process.cwd is entered as root first: a 0700 /root works for a non-root user (runc's finalizeNamespace)", () => {
    const b = makeBundle(["facts"], (s) => {
      s.process!.user = { uid: 1000, gid: 1000 };
      s.process!.cwd = "/root";
    });
    fs.mkdirSync(path.join(b.rootfs, "root"), { mode: 0o700 });
    fs.chmodSync(path.join(b.rootfs, "root"), 0o700);
    const r = ok(tsrun(["run", "--bundle", b.dir, b.id]));
    const facts = JSON.parse(r.stdout.split("\n")[0]!) as { cwd: string; uid: number };
    assert.equal(facts.cwd, "/root");
    assert.equal(facts.uid, 1000);
    // the same for exec
    const c = makeBundle(["sleep", "30"], (s) => {
      s.process!.user = { uid: 1000, gid: 1000 };
    });
    fs.mkdirSync(path.join(c.rootfs, "root"), { mode: 0o700 });
    ok(tsrun(["run", "-d", "--bundle", c.dir, c.id]));
    try {
      const e = JSON.parse(ok(tsrun(["exec", "--cwd", "/root", "--user", "1000:1000", c.id, "/probe", "facts"])).stdout) as { cwd: string };
      assert.equal(e.cwd, "/root");
    } finally {
      tsrun(["delete", "-f", c.id]);
    }
  });
});
