/**
 * Status tells the truth about the kernel: a trap planted on a node whose kernel is led by
 * another agent counts as armed only once that leader armed its inode. A Lease held by a
 * holder that never arms anything (a stuck or foreign leader) keeps the trap "NotArmedByLeader";
 * once the Lease is free the agent leads, arms it and status says armed.
 */
import assert from "node:assert/strict";
import { AgentProcess, waitFor } from "./_cluster.ts";
import {
  applyPolicy,
  appPod,
  deletePolicy,
  KERNEL_ID,
  kube,
  nodeStatus,
  NS,
  withFixture,
} from "./_fixture.ts";

const LEASES = `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases`;

Deno.test("planted is not armed: a trap under another holder's Lease is NotArmedByLeader until this agent leads and arms it", async () => {
  await withFixture(async (fixture) => {
    const leaseName = `kivebpf-kernel-${KERNEL_ID}`;
    // Wait out any Lease an earlier test's agent left, then take it for a ghost for an hour.
    await waitFor("the kernel's Lease free", async () => {
      const lease = await kube.request("GET", `${LEASES}/${leaseName}`);
      if (lease.status === 404) return true;
      const spec = lease.body.spec ?? {};
      const renewed = Date.parse(spec.renewTime ?? 0);
      const expired = Date.now() - renewed > (spec.leaseDurationSeconds ?? 15) * 1000;
      if (!spec.holderIdentity || expired) {
        await kube.request("DELETE", `${LEASES}/${leaseName}`);
        return true;
      }
      return false;
    }, 60);
    const now = new Date().toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
    const created = await kube.request("POST", LEASES, {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: { name: leaseName, namespace: NS },
      spec: {
        holderIdentity: "ghost",
        leaseDurationSeconds: 3600,
        renewTime: now,
        acquireTime: now,
      },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    fixture.cleanups.push(() => kube.request("DELETE", `${LEASES}/${leaseName}`));

    const container = await appPod(fixture, "truth-pod");
    const agent = new AgentProcess("node-a");
    fixture.agents.push(agent);
    await applyPolicy("truth-policy", {
      traps: [{ path: "/truth.txt", create: true, matchAny: [{ pod: "truth-pod" }] }],
    });
    fixture.cleanups.push(() => deletePolicy("truth-policy"));
    const notArmed = await waitFor("status naming the missing arm", async () => {
      const entry = await nodeStatus("truth-policy", "node-a");
      const trap = entry?.traps?.[0];
      return trap?.problems?.[0]?.reason === "NotArmedByLeader" ? entry : undefined;
    }, 60);
    assert.equal(notArmed.armed, 0, "planted but not armed");
    assert.equal(agent.leading(), false);

    // The ghost goes away: this agent leads, arms the inode, and status says so.
    await kube.request("DELETE", `${LEASES}/${leaseName}`);
    await waitFor("the agent to lead", () => agent.leading(), 60);
    const armed = await waitFor("status armed", async () => {
      const entry = await nodeStatus("truth-policy", "node-a");
      return entry?.armed === 1 ? entry : undefined;
    }, 60);
    assert.equal(armed.traps[0].problems, undefined);
    await container.execOk(["cat", "/truth.txt"]);
    await waitFor("the alert", () => agent.alerts().length === 1, 30);
  });
});
