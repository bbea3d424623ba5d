import assert from "node:assert/strict";
import {
  cgroupPathIds,
  ContainerRegistry,
  findProcess,
  findProcesses,
  parseContainerId,
} from "../../src/containers/mod.ts";
import { check, randomHex, RuncContainer } from "./_runc.ts";

const ID = "4f1c7e3a9b2d40c8a1e5f6b7c8d9e0a1b2c3d4e5f60718293a4b5c6d7e8f9012";

/** The inode of a path as the host's stat(1) prints it. */
async function hostIno(path: string): Promise<bigint> {
  return BigInt((await check("stat", ["-L", "-c", "%i", path])).trim());
}

/** The cgroup2 mount of this host (hybrid: /sys/fs/cgroup/unified). */
async function cgroup2Root(): Promise<string> {
  const mounts = await Deno.readTextFile("/proc/self/mounts");
  const line = mounts.split("\n").find((l) => l.split(" ")[2] === "cgroup2");
  assert.ok(line, "no cgroup2 mount on this host");
  return line.split(" ")[1];
}

Deno.test("parseContainerId() strips the CRI scheme and rejects what is not an id", () => {
  const table: [string, string][] = [
    [`containerd://${ID}`, ID],
    [`cri-o://${ID}`, ID],
    [`docker://${ID}`, ID],
    [ID, ID],
    ["my-runc_container.1", "my-runc_container.1"],
  ];
  for (const [input, want] of table) assert.equal(parseContainerId(input), want, input);
  for (const bad of ["", "containerd://", "a/b", "../x", "-x", "id with space"]) {
    assert.throws(() => parseContainerId(bad), TypeError, bad);
  }
});

Deno.test("cgroupPathIds() finds the id in every runtime's cgroup layout, but not in conmon's", () => {
  const uid = "pod0a1b2c3d_4e5f_6789_abcd_ef0123456789";
  const named = [
    `/kubepods/besteffort/${uid}/${ID}`, // containerd/CRI-O, cgroupfs driver, v1 or v2
    `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-${uid}.slice/cri-containerd-${ID}.scope`,
    `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-${uid}.slice/crio-${ID}.scope`,
    `/system.slice/containerd.service/kubepods-besteffort-${uid}.slice:cri-containerd:${ID}`,
    `/kubepods/burstable/${uid}/crio-${ID}`,
    `/system.slice/docker-${ID}.scope`,
    `/docker/${ID}`,
    `/${ID}`, // runc's default
    `/../../kubepods-besteffort-${uid}.slice/cri-containerd-${ID}.scope`, // other cgroupns
  ];
  for (const path of named) assert.ok(cgroupPathIds(path).includes(ID), path);
  const notNamed = [
    `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-${uid}.slice/crio-conmon-${ID}.scope`,
    `/kubepods/besteffort/${uid}`,
    `/system.slice/containerd.service`,
    `/${ID}x`,
    `/`,
  ];
  for (const path of notNamed) assert.ok(!cgroupPathIds(path).includes(ID), path);
});

Deno.test("findProcess() finds a runc container's init from its id, with or without scheme", async () => {
  await using container = await RuncContainer.start();
  const found = await findProcess(container.id);
  assert.ok(found, "container not found");
  assert.equal(found.pid, container.pid);
  assert.equal(found.containerId, container.id);
  assert.equal((await findProcess(`containerd://${container.id}`))?.pid, container.pid);
});

Deno.test("findProcess() returns the init, not a process started later with runc exec", async () => {
  await using container = await RuncContainer.start();
  await container.execDetached(["sleep", "3600"]);
  await container.execDetached(["sh", "-c", "sleep 3600 & sleep 3600"]);
  const procs = (await check("runc", ["ps", "--format", "json", container.id])).trim();
  assert.ok(JSON.parse(procs).length >= 3, `expected 3+ processes in the container: ${procs}`);
  assert.equal((await findProcess(container.id))?.pid, container.pid);
});

Deno.test("findProcess() gives the cgroup2 directory's inode and the mount namespace inode", async () => {
  await using container = await RuncContainer.start();
  const found = await findProcess(container.id);
  assert.ok(found);
  const v2Line = (await Deno.readTextFile(`/proc/${container.pid}/cgroup`)).split("\n")
    .find((line) => line.startsWith("0::"));
  assert.equal(found.cgroupPath, v2Line?.slice(3));
  assert.ok(found.cgroupPath?.includes(container.id), `${found.cgroupPath}`);
  assert.equal(found.cgroupId, await hostIno(`${await cgroup2Root()}${found.cgroupPath}`));
  const link = await Deno.readLink(`/proc/${container.pid}/ns/mnt`);
  assert.equal(link, `mnt:[${found.mntNs}]`);
  assert.notEqual(found.mntNs, await findProcessSelfNs());
});

async function findProcessSelfNs(): Promise<number> {
  return Number(/\[(\d+)\]/.exec(await Deno.readLink("/proc/self/ns/mnt"))?.[1]);
}

Deno.test("findProcess() returns undefined for a container that does not run", async () => {
  assert.equal(await findProcess(randomHex(32)), undefined);
  assert.equal((await findProcesses([])).size, 0);
  await assert.rejects(
    findProcesses([ID], { procRoot: "/nonexistent-proc" }),
    (error: Error) =>
      error.message.startsWith('Cannot list the processes in "/nonexistent-proc"') &&
      error.cause instanceof Deno.errors.NotFound,
  );
});

Deno.test("findProcesses() picks the process whose parent is outside, not the lowest pid", async () => {
  // A fake procfs: pids wrapped around, so the container's init (900) is not its lowest pid.
  const proc = await Deno.makeTempDir({ prefix: "kivebpf-fakeproc-" });
  try {
    const processes: [number, number, string, string][] = [
      // pid, ppid, NSpid, cgroup v2 path
      [5, 900, "5 2", `/kubepods/besteffort/pod1/${ID}`], // a child of init
      [7, 300, "7 3", `/kubepods/besteffort/pod1/${ID}`], // runc exec'd: parent outside too
      [900, 300, "900 1", `/kubepods/besteffort/pod1/${ID}`], // the init
      [300, 1, "300", `/system.slice/containerd.service`], // the shim
      [12, 1, "12", `/kubepods/besteffort/pod1/crio-conmon-${ID}`],
    ];
    for (const [pid, ppid, nspid, cgroup] of processes) {
      const dir = `${proc}/${pid}`;
      await Deno.mkdir(`${dir}/ns`, { recursive: true });
      await Deno.writeTextFile(`${dir}/cgroup`, `1:cpu:${cgroup}\n0::${cgroup}\n`);
      await Deno.writeTextFile(`${dir}/status`, `Name:\tx\nPPid:\t${ppid}\nNSpid:\t${nspid}\n`);
      const start = pid === 900 ? 100 : 50; // the exec'd process even looks older
      await Deno.writeTextFile(
        `${dir}/stat`,
        `${pid} (s l) S ${ppid} ${Array(17).fill(0).join(" ")} ${start} 0 0\n`,
      );
      await Deno.writeTextFile(`${dir}/ns/mnt`, "");
    }
    const found = await findProcess(`cri-o://${ID}`, { procRoot: proc, cgroupRoot: proc });
    assert.equal(found?.pid, 900);
    assert.equal(found?.mntNs, (await Deno.stat(`${proc}/900/ns/mnt`)).ino);
    assert.equal(found?.cgroupId, undefined); // no such cgroup directory
  } finally {
    await Deno.remove(proc, { recursive: true });
  }
});

Deno.test("ContainerRegistry looks containers up by id, cgroup id and mount namespace", async () => {
  await using first = await RuncContainer.start();
  await using second = await RuncContainer.start();
  const missing = randomHex(32);
  const registry = new ContainerRegistry<{ pod: string }>();
  const result = await registry.refresh([
    [`containerd://${first.id}`, { pod: "default/first" }],
    [second.id, { pod: "default/second" }],
    [missing, { pod: "default/missing" }],
  ]);
  assert.deepEqual(result.added.toSorted(), [first.id, second.id].toSorted());
  assert.deepEqual(result.missing, [missing]);
  assert.equal(registry.size, 2);

  const root = await cgroup2Root();
  for (const [container, pod] of [[first, "default/first"], [second, "default/second"]] as const) {
    const cgroupId = await hostIno(`${root}/${container.id}`);
    const mntNs = Number(await hostIno(`/proc/${container.pid}/ns/mnt`));
    assert.equal(registry.get(container.id)?.pid, container.pid);
    assert.equal(registry.getByCgroupId(cgroupId)?.containerId, container.id);
    assert.equal(registry.getByCgroupId(cgroupId)?.data.pod, pod);
    assert.equal(registry.getByMntNs(mntNs)?.containerId, container.id);
  }
  assert.equal(registry.getByMntNs(await findProcessSelfNs()), undefined);

  // Known and alive: kept without a scan; gone: removed; no longer wanted: removed.
  const firstEntry = registry.get(first.id);
  await second.delete();
  const after = await registry.refresh([
    [first.id, { pod: "default/first-renamed" }],
    [second.id, { pod: "default/second" }],
  ]);
  assert.deepEqual(after, { added: [], removed: [second.id], missing: [second.id] });
  assert.equal(registry.get(first.id)?.data.pod, "default/first-renamed");
  assert.equal(registry.get(first.id)?.mntNs, firstEntry?.mntNs);
  assert.equal(registry.get(second.id), undefined);
  assert.equal(registry.getByMntNs(firstEntry?.mntNs ?? 0)?.data.pod, "default/first-renamed");

  assert.deepEqual(await registry.refresh([]), { added: [], removed: [first.id], missing: [] });
  assert.equal(registry.size, 0);
});
