/**
 * Random valid policies for round-trip tests, from a seeded generator so a failure can be
 * replayed with the seed it prints.
 *
 * @module
 */

/** A deterministic pseudo-random source (mulberry32). */
export function randomSource(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Builds random valid specs for one version. */
export function randomSpec(
  random: () => number,
  version: "v1" | "v2alpha1",
): Record<string, unknown> {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const chance = (p: number) => random() < p;
  const word = () => pick(["alpha", "beta", "gamma", "delta", "web", "db", "cache", "x1"]);
  const group = (): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    if (chance(0.5)) out.pod = `${word()}-pod`;
    if (chance(0.5)) out.namespace = word();
    if (chance(0.3)) out.matchLabels = { [`app.io/${word()}`]: word(), tier: word() };
    if (chance(0.3)) {
      out.matchExpressions = [
        { key: "tier", operator: pick(["In", "NotIn"]), values: [word(), word()] },
        { key: `app.io/${word()}`, operator: pick(["Exists", "DoesNotExist"]) },
      ];
    }
    if (chance(0.3)) out.containerName = pick(["nginx", "regex:web-[0-9]+", "glob:db-*"]);
    if (chance(0.2)) out.ip = pick(["10.244.0.0/16", "10.0.0.7", "fd00::/64"]);
    if (Object.keys(out).length === 0) out.pod = word();
    return out;
  };
  const traps = Array.from({ length: 1 + Math.floor(random() * 4) }, (_, index) => {
    const trap: Record<string, unknown> = {
      path: `/${word()}/${word()}-${index}.txt`,
      create: chance(0.5),
      mode: pick([400, 444, 600, 640, 755, 4755]),
      matchAny: Array.from({ length: 1 + Math.floor(random() * 3) }, group),
    };
    if (chance(0.3)) trap.callback = `http://${word()}.example.svc:9376/ingest`;
    if (chance(0.5)) trap.metadata = { severity: pick(["low", "medium", "high"]), owner: word() };
    if (version === "v2alpha1") {
      trap.action = pick(["alert", "block"]);
      const filled = chance(0.6);
      if (filled && chance(0.4)) trap.content = `token-${word()}-${Math.floor(random() * 1e6)}\n`;
      else if (filled && chance(0.5)) {
        trap.create = true;
        trap.contentFrom = chance(0.5)
          ? { generate: "kubeconfig", options: { cluster: word(), user: word() } }
          : { secretKeyRef: { name: `${word()}-decoys`, key: word() } };
      }
      if (chance(0.5)) {
        trap.owner = { uid: Math.floor(random() * 2000), gid: Math.floor(random() * 2000) };
      }
      if (chance(0.3)) trap.callbackHeadersFrom = { secretName: `${word()}-headers` };
      if (chance(0.2)) {
        trap.callbackCABundle = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
      }
    }
    return trap;
  });
  return { alertVersion: pick(["v1", "v2alpha1"]), traps };
}
