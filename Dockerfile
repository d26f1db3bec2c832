# recd container image, built from Debian 12 packages with the same install script as the README.
#
#   docker build -t recd .
#   docker run -d --name recd -p 50051:50051 -p 9464:9464 -v recd-data:/var/lib/recd \
#     --stop-timeout 20 -e RECD_DEMO_DATA=auto recd
#
# recd listens on 0.0.0.0 inside the container (RECD_LISTEN, RECD_METRICS_LISTEN); every flag can
# be set as RECD_<FLAG> or appended to `docker run ... recd`. Give the container a stop timeout
# above --drain_seconds (10 s by default) so that SIGTERM drains in-flight calls and closes the
# store cleanly instead of ending in SIGKILL.

ARG BUILD_IMAGE=debian:12
ARG RUNTIME_IMAGE=debian:12-slim

# ---- build: compiler, -dev packages, the full source tree ---------------------------------
FROM ${BUILD_IMAGE} AS build
# pipefail: a failing step inside a pipeline fails the build.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
# The dependency layer stays cached until the script changes.
COPY tools/install-deps.sh tools/install-deps.sh
RUN tools/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DRECD_BUILD_TESTS=OFF \
 && cmake --build /build -j"$(nproc)" --target recd recctl \
 && mkdir -p /out/bin \
 && cp /build/server/recd /build/cli/recctl /out/bin/
# The runtime image gets exactly the Debian packages owning the shared libraries the binaries
# load, so this list cannot drift from the build (dpkg knows some files under /lib, others under
# /usr/lib: try the path ldd prints, then the resolved one).
RUN ldd /out/bin/recd /out/bin/recctl \
  | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u \
  | while read -r lib; do \
      dpkg -S "$lib" 2>/dev/null || dpkg -S "$(readlink -f "$lib")" 2>/dev/null \
        || dpkg -S "/usr$lib" 2>/dev/null || { echo "no package owns $lib" >&2; exit 1; }; \
    done \
  | cut -d: -f1 | sort -u > /out/runtime-packages \
 && cat /out/runtime-packages

# ---- runtime: shared libraries, recd, recctl, a non-root user ------------------------------
FROM ${RUNTIME_IMAGE}
COPY --from=build /out/runtime-packages /tmp/runtime-packages
RUN apt-get update -qq \
 && xargs -a /tmp/runtime-packages apt-get install -y -qq --no-install-recommends \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages
RUN groupadd --system --gid 10001 recd \
 && useradd --system --uid 10001 --gid recd --home-dir /var/lib/recd --no-create-home \
      --shell /usr/sbin/nologin recd \
 && mkdir -p /var/lib/recd \
 && chown recd:recd /var/lib/recd
COPY --from=build /out/bin/recd /out/bin/recctl /usr/local/bin/

# The store is a subfolder of the volume, so checkpoints (`recctl checkpoint
# --path=/var/lib/recd/ckpt-<date>`) land on the same file system and hard-link the store's
# files instead of copying them. RECD_SERVER is where recctl (and so the HEALTHCHECK) connects:
# change it together with RECD_LISTEN's port.
ENV RECD_LISTEN=0.0.0.0:50051 \
    RECD_METRICS_LISTEN=0.0.0.0:9464 \
    RECD_DATA_DIR=/var/lib/recd/store \
    RECD_SERVER=127.0.0.1:50051
# Declared after the chown so a new named volume starts owned by recd.
VOLUME ["/var/lib/recd"]
EXPOSE 50051 9464
USER 10001:10001
WORKDIR /var/lib/recd
# SERVING only once the store is open and models are loaded; NOT_SERVING while draining. A large
# store takes a while to open: the start period covers it.
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 \
  CMD ["recctl", "health", "--timeout=3"]
# recd handles SIGTERM itself (drain, then close the store) and runs fine as PID 1: it waits for
# the signal with sigwait and starts no child processes.
STOPSIGNAL SIGTERM
ENTRYPOINT ["recd"]
