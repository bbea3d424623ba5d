import assert from "node:assert/strict";
import { BpfObject } from "../../src/bpf/mod.ts";
import { TRAP_EVENT_LAYOUT, TRAP_EVENT_SIZE } from "../../src/engine/mod.ts";
import { bpfObjectPath } from "../bpf/_object.ts";

Deno.test("the TypeScript decoder's layout matches struct trap_event in the object's BTF", async () => {
  using obj = BpfObject.open(await bpfObjectPath());
  const btf = obj.structLayout("trap_event");
  assert.equal(btf.size, TRAP_EVENT_SIZE);
  assert.deepEqual(
    btf.members.map((m) => [m.name, m.offset, m.size]),
    Object.entries(TRAP_EVENT_LAYOUT).map(([name, [offset, size]]) => [name, offset, size]),
  );
});

Deno.test("the key, value, config and learn structs have the sizes user space writes", async () => {
  using obj = BpfObject.open(await bpfObjectPath());
  const sizes = Object.fromEntries(
    ["trap_key", "trap_value", "trap_config", "trap_learned"].map((
      s,
    ) => [s, obj.structLayout(s).size]),
  );
  assert.deepEqual(sizes, { trap_key: 16, trap_value: 16, trap_config: 24, trap_learned: 24 });
  assert.deepEqual(
    obj.structLayout("trap_value").members.map((m) => [m.name, m.offset]),
    [["trap_id", 0], ["flags", 4], ["slot", 8], ["pad", 12]],
  );
  assert.deepEqual(
    obj.structLayout("trap_config").members.map((m) => [m.name, m.offset]),
    [
      ["agent_tgid", 0],
      ["learn_tgid", 4],
      ["learn_pid", 8],
      ["armed", 12],
      ["cgroup_filter", 16],
      ["pad", 20],
    ],
  );
});
