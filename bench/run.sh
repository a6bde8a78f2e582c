#!/usr/bin/env bash
# Builds the gateway and the benchmark in release mode, then runs the benchmark; arguments go
# to credgate-bench (e.g. --quick, --rounds 5, --sections 1,2). The table goes to stdout,
# progress to stderr. Needs nginx (Debian: apt-get install nginx-light) for the cheap-path
# comparison; without it that row is skipped with a printed reason.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p credgate -p credgate-bench
exec target/release/credgate-bench "$@"
