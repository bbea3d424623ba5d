/**
 * The libbpf symbol table and the lazily opened library; libc comes from src/common/libc.ts.
 *
 * Private to src/bpf/.
 *
 * @module
 */
import { dlopenFirst } from "../common/libc.ts";

/** libbpf symbols (libbpf 1.1, Debian 12), C names verbatim. */
export const LIBBPF_SYMBOLS = {
  // struct bpf_object *bpf_object__open_file(const char *path, const struct bpf_object_open_opts *opts);
  bpf_object__open_file: { parameters: ["buffer", "pointer"], result: "pointer" },
  // int bpf_object__load(struct bpf_object *obj);
  bpf_object__load: { parameters: ["pointer"], result: "i32" },
  // void bpf_object__close(struct bpf_object *obj);
  bpf_object__close: { parameters: ["pointer"], result: "void" },
  // struct bpf_program *bpf_object__next_program(const struct bpf_object *obj, struct bpf_program *prog);
  bpf_object__next_program: { parameters: ["pointer", "pointer"], result: "pointer" },
  // struct bpf_map *bpf_object__next_map(const struct bpf_object *obj, const struct bpf_map *map);
  bpf_object__next_map: { parameters: ["pointer", "pointer"], result: "pointer" },
  // struct btf *bpf_object__btf(const struct bpf_object *obj);
  bpf_object__btf: { parameters: ["pointer"], result: "pointer" },
  // const char *bpf_program__name(const struct bpf_program *prog);
  bpf_program__name: { parameters: ["pointer"], result: "pointer" },
  // const char *bpf_program__section_name(const struct bpf_program *prog);
  bpf_program__section_name: { parameters: ["pointer"], result: "pointer" },
  // int bpf_program__set_autoload(struct bpf_program *prog, bool autoload);
  bpf_program__set_autoload: { parameters: ["pointer", "bool"], result: "i32" },
  // int bpf_program__fd(const struct bpf_program *prog);
  bpf_program__fd: { parameters: ["pointer"], result: "i32" },
  // struct bpf_link *bpf_program__attach(const struct bpf_program *prog);
  bpf_program__attach: { parameters: ["pointer"], result: "pointer" },
  // int bpf_link__fd(const struct bpf_link *link);
  bpf_link__fd: { parameters: ["pointer"], result: "i32" },
  // int bpf_link__destroy(struct bpf_link *link);
  bpf_link__destroy: { parameters: ["pointer"], result: "i32" },
  // int bpf_link__pin(struct bpf_link *link, const char *path);
  bpf_link__pin: { parameters: ["pointer", "buffer"], result: "i32" },
  // struct bpf_link *bpf_link__open(const char *path);
  bpf_link__open: { parameters: ["buffer"], result: "pointer" },
  // int bpf_map__reuse_fd(struct bpf_map *map, int fd);
  bpf_map__reuse_fd: { parameters: ["pointer", "i32"], result: "i32" },
  // int bpf_obj_get(const char *pathname);
  bpf_obj_get: { parameters: ["buffer"], result: "i32" },
  // int bpf_obj_pin(int fd, const char *pathname);
  bpf_obj_pin: { parameters: ["i32", "buffer"], result: "i32" },
  // const char *bpf_map__name(const struct bpf_map *map);
  bpf_map__name: { parameters: ["pointer"], result: "pointer" },
  // int bpf_map__fd(const struct bpf_map *map);
  bpf_map__fd: { parameters: ["pointer"], result: "i32" },
  // enum bpf_map_type bpf_map__type(const struct bpf_map *map);
  bpf_map__type: { parameters: ["pointer"], result: "u32" },
  // __u32 bpf_map__key_size(const struct bpf_map *map);
  bpf_map__key_size: { parameters: ["pointer"], result: "u32" },
  // __u32 bpf_map__value_size(const struct bpf_map *map);
  bpf_map__value_size: { parameters: ["pointer"], result: "u32" },
  // __u32 bpf_map__max_entries(const struct bpf_map *map);
  bpf_map__max_entries: { parameters: ["pointer"], result: "u32" },
  // int bpf_map__set_max_entries(struct bpf_map *map, __u32 max_entries);
  bpf_map__set_max_entries: { parameters: ["pointer", "u32"], result: "i32" },
  // int bpf_map_update_elem(int fd, const void *key, const void *value, __u64 flags);
  bpf_map_update_elem: { parameters: ["i32", "buffer", "buffer", "u64"], result: "i32" },
  // int bpf_map_lookup_elem(int fd, const void *key, void *value);
  bpf_map_lookup_elem: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  // int bpf_map_delete_elem(int fd, const void *key);
  bpf_map_delete_elem: { parameters: ["i32", "buffer"], result: "i32" },
  // int bpf_map_get_next_key(int fd, const void *key, void *next_key);
  bpf_map_get_next_key: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  // struct ring_buffer *ring_buffer__new(int map_fd, ring_buffer_sample_fn sample_cb, void *ctx,
  //                                      const struct ring_buffer_opts *opts);
  ring_buffer__new: { parameters: ["i32", "function", "pointer", "pointer"], result: "pointer" },
  // int ring_buffer__poll(struct ring_buffer *rb, int timeout_ms);
  ring_buffer__poll: { parameters: ["pointer", "i32"], result: "i32" },
  // int ring_buffer__consume(struct ring_buffer *rb);
  ring_buffer__consume: { parameters: ["pointer"], result: "i32" },
  // void ring_buffer__free(struct ring_buffer *rb);
  ring_buffer__free: { parameters: ["pointer"], result: "void" },
  // __s32 btf__find_by_name_kind(const struct btf *btf, const char *type_name, __u32 kind);
  btf__find_by_name_kind: { parameters: ["pointer", "buffer", "u32"], result: "i32" },
  // const struct btf_type *btf__type_by_id(const struct btf *btf, __u32 id);
  btf__type_by_id: { parameters: ["pointer", "u32"], result: "pointer" },
  // const char *btf__name_by_offset(const struct btf *btf, __u32 offset);
  btf__name_by_offset: { parameters: ["pointer", "u32"], result: "pointer" },
  // __s64 btf__resolve_size(const struct btf *btf, __u32 type_id);
  btf__resolve_size: { parameters: ["pointer", "u32"], result: "i64" },
  // int libbpf_num_possible_cpus(void);
  libbpf_num_possible_cpus: { parameters: [], result: "i32" },
  // int libbpf_strerror(int err, char *buf, size_t size);
  libbpf_strerror: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  // libbpf_print_fn_t libbpf_set_print(libbpf_print_fn_t fn);
  libbpf_set_print: { parameters: ["function"], result: "function" },
  // const char *libbpf_version_string(void);
  libbpf_version_string: { parameters: [], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The opened libbpf. */
export type Libbpf = Deno.DynamicLibrary<typeof LIBBPF_SYMBOLS>["symbols"];

const LIBBPF_CANDIDATES = [
  "libbpf.so.1",
  "/usr/lib/x86_64-linux-gnu/libbpf.so.1",
  "/usr/lib/aarch64-linux-gnu/libbpf.so.1",
  "/usr/lib64/libbpf.so.1",
  "/usr/lib/libbpf.so.1",
];

// One handle per isolate (the main thread and each Worker open their own): the
// libraries stay loaded for the life of the process anyway, like dlopen's own cache.
const cache: {
  libbpf?: { path: string; lib: Libbpf };
} = {};

/** The libbpf path that would be tried first: env KIVEBPF_LIBBPF, else the soname. */
export function libbpfCandidates(): string[] {
  const env = Deno.env.get("KIVEBPF_LIBBPF");
  return env ? [env] : LIBBPF_CANDIDATES;
}

/** Opens libbpf once per isolate: env KIVEBPF_LIBBPF, then libbpf.so.1, then distro paths. */
export function libbpf(): Libbpf {
  if (!cache.libbpf) {
    const { path, lib } = dlopenFirst(libbpfCandidates(), LIBBPF_SYMBOLS, "libbpf");
    cache.libbpf = { path, lib: lib.symbols };
  }
  return cache.libbpf.lib;
}

/** The path libbpf was opened from (opens it if needed). */
export function libbpfPath(): string {
  libbpf();
  return cache.libbpf!.path;
}

export { cString, errno, libc, readCString } from "../common/libc.ts";
