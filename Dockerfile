# kivebpf node agent image: one `deno compile`d executable plus libbpf.
#
#   docker build -t kivebpf:dev .
#
# The build stage compiles the BPF programs and the agent; the runtime stage carries only the
# executable, the BPF object and libbpf. (On machines without internet access `deno compile`
# cannot fetch its runtime; scripts/ build an equivalent image that runs `deno run` on the
# vendored program instead. See docs/DEVELOPMENT.md.)
FROM debian:bookworm AS bpf
RUN apt-get update && apt-get install -y --no-install-recommends clang-19 llvm-19 libbpf-dev bpftool \
    linux-image-amd64 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY bpf/ bpf/
COPY scripts/build_bpf.sh scripts/
RUN KIVEBPF_VMLINUX_BTF="$(ls /usr/lib/debug/boot/vmlinux-* /sys/kernel/btf/vmlinux 2>/dev/null | head -1)" \
    bash scripts/build_bpf.sh

FROM denoland/deno:2.9.6 AS agent
WORKDIR /src
COPY deno.json deno.lock mod.ts ./
COPY src/ src/
RUN deno compile --allow-all --output /out/kivebpf mod.ts

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libbpf1 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=agent /out/kivebpf /usr/local/bin/kivebpf
COPY --from=bpf /src/.cache/bpf/*.bpf.o /usr/lib/kivebpf/
ENV KIVEBPF_BPF_OBJECT=/usr/lib/kivebpf/trap.bpf.o
ENTRYPOINT ["/usr/local/bin/kivebpf"]
CMD ["agent"]
