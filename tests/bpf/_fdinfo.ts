/** Test helper: counts this process's BPF fds by kind, from /proc/self/fdinfo. */
export function bpfFds(): { links: number[]; maps: number[]; progs: number[] } {
  const out = { links: [] as number[], maps: [] as number[], progs: [] as number[] };
  for (const entry of Deno.readDirSync("/proc/self/fdinfo")) {
    let text: string;
    try {
      text = Deno.readTextFileSync(`/proc/self/fdinfo/${entry.name}`);
    } catch {
      continue; // closed meanwhile
    }
    const fd = Number(entry.name);
    if (/^link_type:/m.test(text)) out.links.push(fd);
    else if (/^map_type:/m.test(text)) out.maps.push(fd);
    else if (/^prog_type:/m.test(text)) out.progs.push(fd);
  }
  return out;
}
