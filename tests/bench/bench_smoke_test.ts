import assert from "node:assert/strict";

const REPO = decodeURIComponent(new URL("../../", import.meta.url).pathname);

const SECTIONS = [
  "## Environment",
  "## M1 non-trap open+close",
  "## M2 BPF run time per call",
  "## M1/M2 with the cgroup filter on (trapped containers)",
  "## M3 trap-hit latency",
  "## M4 flood accounting",
  "## M5 agent CPU and memory",
  "## M6 reconcile scale",
  "## M6K reconcile scale, real agent and API server",
  "## BW blind windows",
  "## M8 status and registrations at N simulated nodes",
  "## Goals (issue 6)",
];

Deno.test("bench.ts --smoke runs every measurement and writes every section", async () => {
  const out = await Deno.makeTempDir({ prefix: "kivebpf-bench-smoke-" });
  try {
    const result = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${REPO}scripts/bench/bench.ts`, "--smoke", "--out", out],
      cwd: REPO,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(result.stderr);
    assert.equal(result.code, 0, stderr);

    const markdown = await Deno.readTextFile(`${out}/results.md`);
    for (const section of SECTIONS) assert.ok(markdown.includes(section), `missing ${section}`);
    assert.match(markdown, /SMOKE RUN/);

    const json = JSON.parse(await Deno.readTextFile(`${out}/results.json`));
    for (
      const key of [
        "environment",
        "m1",
        "m2",
        "cgroup",
        "m3",
        "m4",
        "m5",
        "m6",
        "m6k",
        "blindWindows",
        "m8",
      ]
    ) {
      assert.ok(key in json, `results.json has ${key}`);
    }
    for (const key of ["cpuModel", "kernel", "backend", "mitigations", "deno", "commit"]) {
      assert.ok(key in json.environment, `environment has ${key}`);
    }
    assert.deepEqual(
      json.m1.rows.map((row: { config: string }) => row.config),
      ["baseline", "empty", "agent-0", "agent-1", "agent-1000", "agent-50000"],
    );
    // Phase CG runs wherever cgroup2 is mounted and writable (a test host as root is).
    assert.equal(json.cgroup.skipped, undefined, `phase CG skipped: ${json.cgroup.skipped}`);
    assert.deepEqual(
      json.cgroup.m1.rows.map((row: { config: string }) => row.config),
      ["baseline", "inside-no-bpf", "filter-off", "filter-outside", "filter-inside"],
    );
    assert.deepEqual(
      json.cgroup.m2.map((c: { config: string }) => c.config),
      ["filter-off", "filter-outside", "filter-inside"],
    );
    // The filter does what the measurement assumes: opens inside are seen, outside are not.
    assert.deepEqual(json.cgroup.check, { hits: json.cgroup.check.hits, inside: 20, outside: 0 });
    assert.match(markdown, /cgroup filter on, load OUTSIDE/);
    assert.match(markdown, /cgroup filter on, load INSIDE/);
    // The trapped cgroup is gone after the run.
    await assert.rejects(Deno.stat(json.cgroup.path), Deno.errors.NotFound);
    assert.equal(json.m3.paths.length, 3, "engine, stdout and callback latencies");
    // Accounting is exact whatever the timing: every access made is delivered or counted lost.
    for (const flood of json.m4.variants) {
      assert.ok(flood.made > 0);
      assert.equal(flood.unaccountedEngine, 0, JSON.stringify(flood));
      assert.equal(flood.unaccountedStdout, 0, JSON.stringify(flood));
    }
    assert.ok(json.m6.rounds[0].armed === json.m6.pods * json.m6.trapsPerPod);
    // M6K: the real agent armed every (trap, pod) pair, in the policy's status and in the
    // kernel (no timing asserted), and its cleanup (agent, processes, cgroups, API server) held.
    const { m6k } = json;
    assert.equal(m6k.expected, m6k.pods * m6k.trapsPerPod);
    assert.equal(m6k.lastStatusArmed, m6k.expected, stderr);
    assert.equal(m6k.lastInodes, m6k.expected, stderr);
    assert.ok(m6k.statusArmedMs !== null && m6k.kernelArmedMs !== null);
    assert.ok(m6k.rssKiB > 0);
    assert.doesNotMatch(stderr, /M6K cleanup of .* failed/);
    // M8: the simulated nodes converged, every write taken, the policy object small.
    const [m8] = json.m8;
    assert.equal(m8.armedSeen, m8.nodes * 10, stderr);
    assert.equal(m8.refusedWrites, 0, m8.firstRefusal);
    assert.ok(m8.policyBytes < 8192, `policy object ${m8.policyBytes} bytes`);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
