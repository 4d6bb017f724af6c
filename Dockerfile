# The operator and runner images for real registries:
#   docker build --target operator -t taskyard/taskyard-operator:0.1.0 .
#   docker build --target runner   -t taskyard/job-runner:0.1.0 .
#   docker build --target gateway  -t taskyard/taskyard-gateway:0.1.0 .
#
# The final stages are also the description the offline image build of the local test
# cluster follows (tests/cluster/images/build-image.sh reads their COPY, USER and
# ENTRYPOINT lines), so the two cannot drift: the binary, its shared libraries and CA
# certificates on a minimal base, run as the unprivileged user 65532.

FROM rust:1.95-bookworm AS build
# The runner's libjpeg-turbo is built from source and linked static: CMake, and NASM for its
# SIMD code. Nothing of it is needed at run time.
RUN apt-get update && apt-get install -y --no-install-recommends cmake nasm && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p taskyard-operator -p job-runner -p taskyard-gateway --bins \
 && mkdir -p /out \
 && cp target/release/taskyard-operator target/release/job-runner target/release/taskyard-gateway /out/

FROM gcr.io/distroless/cc-debian12:nonroot AS operator
COPY --from=build /out/taskyard-operator /usr/local/bin/taskyard-operator
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/taskyard-operator"]

FROM gcr.io/distroless/cc-debian12:nonroot AS runner
COPY --from=build /out/job-runner /usr/local/bin/job-runner
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/job-runner"]

FROM gcr.io/distroless/cc-debian12:nonroot AS gateway
COPY --from=build /out/taskyard-gateway /usr/local/bin/taskyard-gateway
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/taskyard-gateway"]
