import assert from "node:assert/strict";
import { kernelDev, makedev as sourceMakedev } from "../../src/common/dev.ts";
import { splitKernelDev, toKernelDev } from "../../src/engine/mod.ts";

/** glibc's makedev(), the user-space encoding of st_dev. */
function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return (mi & 0xffn) | ((ma & 0xfffn) << 8n) | ((mi & ~0xffn) << 12n) | ((ma & ~0xfffn) << 32n);
}

Deno.test("toKernelDev() converts glibc st_dev to major << 20 | minor", () => {
  const cases: [major: number, minor: number][] = [
    [0, 0],
    [1, 3],
    [8, 1],
    [254, 0],
    [0, 39], // anonymous devices (overlayfs, tmpfs)
    [259, 65536], // NVMe partitions past minor 255
    [4095, 1048575], // the kernel's largest
  ];
  for (const [major, minor] of cases) {
    const kernel = toKernelDev(makedev(major, minor));
    assert.equal(kernel, major * 2 ** 20 + minor, `${major}:${minor}`);
    assert.deepEqual(splitKernelDev(kernel), { major, minor });
  }
  assert.equal(toKernelDev(0xfe00), 254 * 2 ** 20);
  assert.throws(() => toKernelDev(makedev(4096, 0)), RangeError);
});

Deno.test("toKernelDev() of stat matches /proc/self/mountinfo for / and /dev/null's rdev", () => {
  const info = Deno.readTextFileSync("/proc/self/mountinfo").split("\n");
  const root = info.map((l) => l.split(" ")).find((f) => f[4] === "/");
  assert.ok(root, "mountinfo has /");
  const [major, minor] = root[2].split(":").map(Number);
  assert.equal(toKernelDev(Deno.statSync("/").dev), major * 2 ** 20 + minor);
  assert.equal(toKernelDev(Deno.statSync("/dev/null").rdev!), 1 * 2 ** 20 + 3);
});

Deno.test("makedev() and kernelDev() agree with toKernelDev() for small and large numbers", () => {
  for (const [major, minor] of [[254, 0], [8, 17], [0, 0], [4095, 1048575], [259, 70000]]) {
    assert.equal(sourceMakedev(major, minor), makedev(major, minor), `${major}:${minor}`);
    assert.equal(toKernelDev(makedev(major, minor)), kernelDev(major, minor), `${major}:${minor}`);
  }
});
