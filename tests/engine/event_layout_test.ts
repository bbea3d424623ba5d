import assert from "node:assert/strict";
import { BpfObject } from "../../src/bpf/mod.ts";
import { KERNEL_STRUCT_LAYOUTS } from "../../src/engine/mod.ts";
import { bpfObjectPath } from "../bpf/_object.ts";

Deno.test("every struct user space shares with the kernel matches the object's BTF, member by member", async () => {
  using obj = BpfObject.open(await bpfObjectPath());
  for (const [name, layout] of Object.entries(KERNEL_STRUCT_LAYOUTS)) {
    const btf = obj.structLayout(name);
    assert.equal(btf.size, layout.size, `sizeof(struct ${name})`);
    assert.deepEqual(
      btf.members.map((m) => [m.name, m.offset, m.size]),
      Object.entries(layout.members).map(([member, [offset, size]]) => [member, offset, size]),
      `members of struct ${name}`,
    );
  }
  assert.deepEqual(
    Object.keys(KERNEL_STRUCT_LAYOUTS),
    ["trap_key", "trap_value", "trap_config", "trap_learned", "trap_event"],
  );
});
