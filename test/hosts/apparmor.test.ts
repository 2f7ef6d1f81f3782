// AppArmor on a host that has it (the systemd test host, `npm run test:hosts`): a profile loaded with
// apparmor_parser that denies one file really denies it inside a container run with process.apparmorProfile,
// the container sees its profile in /proc/self/attr/current, "unconfined" runs unconfined, exec --apparmor
// confines an exec'd process, and features reports AppArmor enabled. Skipped unless TSRUN_GUEST=1.
// (On a host without AppArmor, test/lsm.test.ts checks the same writes against a stand-in attr directory.)
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { cleanup, makeBundle, ok, tsrun, work } from "../helpers";

const skip = process.env.TSRUN_GUEST === "1" ? false : "runs only in the systemd test host (npm run test:hosts)";
const PROFILE = "tsrun-test-deny";

// Everything allowed but reading /secret.
const PROFILE_TEXT = `profile ${PROFILE} flags=(attach_disconnected,mediate_deleted) {
  file,
  capability,
  network,
  signal,
  unix,
  ptrace,
  mount,
  umount,
  pivot_root,
  deny /secret r,
}
`;

interface ReadResult {
  ok: boolean;
  errno: number;
  content: string | null;
}

function parser(args: string[]): void {
  const r = spawnSync("apparmor_parser", args, { encoding: "utf8" });
  assert.equal(r.status, 0, `apparmor_parser ${args.join(" ")}: ${r.stderr}`);
}

describe("AppArmor", { skip, concurrency: false }, () => {
  let profileFile = "";
  before(() => {
    profileFile = path.join(work(), `${PROFILE}.profile`);
    fs.writeFileSync(profileFile, PROFILE_TEXT);
    parser(["-r", profileFile]);
  });
  after(() => {
    if (profileFile) spawnSync("apparmor_parser", ["-R", profileFile]);
    cleanup();
  });

  const bundle = (args: string[], profile?: string) =>
    makeBundle(args, (s) => {
      if (profile !== undefined) s.process!.apparmorProfile = profile;
    });
  const secret = (b: ReturnType<typeof makeBundle>) => fs.writeFileSync(path.join(b.rootfs, "secret"), "s3cret");
  const run = (b: ReturnType<typeof makeBundle>) => ok(tsrun(["run", "--bundle", b.dir, b.id])).stdout.split("\n")[0]!;

  test("features: AppArmor enabled", () => {
    const f = JSON.parse(ok(tsrun(["features"])).stdout) as { linux: { apparmor: { enabled: boolean } } };
    assert.equal(f.linux.apparmor.enabled, true);
  });

  test("a loaded profile denies the file inside the container, and the container sees its profile", () => {
    const b = bundle(["read", "/secret"], PROFILE);
    secret(b);
    const r = JSON.parse(run(b)) as ReadResult;
    assert.equal(r.ok, false, "the profile let /secret be read");
    assert.equal(r.errno, 13); // EACCES
    const c = bundle(["read", "/proc/self/attr/current"], PROFILE);
    assert.equal((JSON.parse(run(c)) as ReadResult).content?.trim(), `${PROFILE} (enforce)`);
  });

  test("without a profile, and with unconfined, the file is read", () => {
    for (const profile of [undefined, "unconfined"]) {
      const b = bundle(["read", "/secret"], profile);
      secret(b);
      const r = JSON.parse(run(b)) as ReadResult;
      assert.equal(r.ok, true, `profile ${profile ?? "(none)"}: errno ${r.errno}`);
      assert.equal(r.content, "s3cret");
    }
    const c = bundle(["read", "/proc/self/attr/current"], "unconfined");
    assert.equal((JSON.parse(run(c)) as ReadResult).content?.trim(), "unconfined");
  });

  test("exec --apparmor confines the exec'd process", () => {
    const b = bundle(["sleep", "60"]);
    secret(b);
    ok(tsrun(["run", "-d", "--bundle", b.dir, b.id]));
    try {
      const denied = JSON.parse(ok(tsrun(["exec", "--apparmor", PROFILE, b.id, "/probe", "read", "/secret"])).stdout.split("\n")[0]!) as ReadResult;
      assert.equal(denied.ok, false);
      const current = JSON.parse(ok(tsrun(["exec", "--apparmor", PROFILE, b.id, "/probe", "read", "/proc/self/attr/current"])).stdout.split("\n")[0]!) as ReadResult;
      assert.equal(current.content?.trim(), `${PROFILE} (enforce)`);
      const free = JSON.parse(ok(tsrun(["exec", b.id, "/probe", "read", "/secret"])).stdout.split("\n")[0]!) as ReadResult;
      assert.equal(free.ok, true);
    } finally {
      tsrun(["delete", "--force", b.id]);
    }
  });

  test("a profile that is not loaded: the container fails to start, naming the profile", () => {
    const b = bundle(["facts"], "tsrun-no-such-profile");
    const r = tsrun(["run", "--bundle", b.dir, b.id]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /unable to apply apparmor profile tsrun-no-such-profile/);
  });
});
