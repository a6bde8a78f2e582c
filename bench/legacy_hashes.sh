#!/usr/bin/env bash
# Issue 17 benchmarks (BENCHMARKS.md, "Legacy hash formats"):
#  1. `credgate import` of ROWS (default 1,000,000) JSON Lines rows cycling through every
#     fixture of tests/fixtures/hashes/fixtures.jsonl (mixed legacy formats, no bcrypt at
#     import) into an empty SQLite database;
#  2. `credgate rehash` of WEAK (default 2,000) weak-format users at bcrypt COST (default 10),
#     against the bcrypt bound: hash threads (nproc) / one bcrypt's time at COST, that time
#     being the median the verify_times example prints for bcrypt at cost 10 (COST 10 only).
# Needs the release build: cargo build --release -p credgate (CARGO_TARGET_DIR honoured).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-1000000}
WEAK=${WEAK:-2000}
COST=${COST:-10}
TARGET=${CARGO_TARGET_DIR:-target}
BIN=$(realpath "$TARGET/release/credgate")
REPO=$PWD
WORK=$(mktemp -d /tmp/credgate-bench-legacy.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

python3 - "$ROWS" "$WORK/mixed.jsonl" "$WEAK" "$WORK/weak.jsonl" <<'PY'
import json, sys
rows, out, weak, weak_out = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
fx = [json.loads(l) for l in open("tests/fixtures/hashes/fixtures.jsonl", encoding="utf-8")]
def row(i, f):
    r = {"username": f"user{i}@example.com", "id": f"u-{i}", "password_hash": f["hash"]}
    if f["hint"]:
        r["password_hash_format"] = f["hint"]
    return json.dumps(r, ensure_ascii=False) + "\n"
with open(out, "w", encoding="utf-8") as o:
    o.writelines(row(i, fx[i % len(fx)]) for i in range(rows))
# Weak formats: the fast digests (wrapped by rehash).
strong = ("argon2", "scrypt", "pbkdf2", "sha256-crypt", "sha512-crypt", "bcrypt", "aspnet-identity-v3")
wk = [f for f in fx if not any(s in f["format"] for s in strong) and not f["hash"].startswith("{CRYPT}$6$")
      and f["format"] != "phpass"]
with open(weak_out, "w", encoding="utf-8") as o:
    o.writelines(row(i, wk[i % len(wk)]) for i in range(weak))
PY

cd "$WORK" # the binary writes its digest key under ./data
echo "machine: nproc=$(nproc), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== import of $ROWS mixed-format rows into SQLite"
CREDGATE_DATABASE_URL="$WORK/import.db" /usr/bin/time -f "%e s wall, %U s user, %M KiB max RSS" \
    "$BIN" import "$WORK/mixed.jsonl" | tail -3

echo "== rehash of $WEAK weak users at bcrypt cost $COST"
CREDGATE_DATABASE_URL="$WORK/weak.db" "$BIN" import "$WORK/weak.jsonl" | tail -1
start=$(date +%s.%N)
CREDGATE_DATABASE_URL="$WORK/weak.db" CREDGATE_BCRYPT_COST=$COST "$BIN" rehash | tail -2
end=$(date +%s.%N)
echo "rehash wall: $(echo "$end - $start" | bc) s, $(echo "$WEAK / ($end - $start)" | bc -l | cut -c1-7) users/s"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== one bcrypt (cost 10) on this machine, for the bound (verify_times, release)"
(cd "$REPO" && cargo run -q --release -p credgate-legacy-hash --example verify_times 2>/dev/null) | grep -E '^\| bcrypt \| cost 10'
