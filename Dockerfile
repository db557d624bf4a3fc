# The example gateway without a Rust toolchain on the host: the module is
# built in the first stage, as in Envoy's own Wasm sandboxes.
#   docker compose -f docker-compose.build.yml up --build
# Same toolchain line as the tests (Rust 1.95), same cargo profile as
# `make build` (Cargo.toml [profile.wasm]: LTO, panic=abort).

FROM docker.io/library/rust:1.95-slim AS build
RUN rustup target add wasm32-wasip1
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY core ./core
COPY cli ./cli
COPY testkit ./testkit
COPY benches ./benches
# A workspace member (the native module): cargo reads every member.
COPY native ./native
RUN cargo build --locked --profile wasm --target wasm32-wasip1 -p backstage-proxy-wasm

FROM docker.io/envoyproxy/envoy:v1.39.3
WORKDIR /work
COPY envoy.yaml /work/envoy.yaml
COPY --from=build /src/target/wasm32-wasip1/wasm/backstage_proxy_wasm.wasm /work/build/plugin.wasm
EXPOSE 10000
CMD ["envoy", "-c", "/work/envoy.yaml", "--concurrency", "2", "-l", "warning", "--component-log-level", "wasm:info"]
