#!/usr/bin/env python3
"""Writes a bulk-import file of N pre-hashed users, for measuring `credgate import`.

usage: scripts/gen-import-file.py N OUT.csv|OUT.jsonl

Every row reuses one real bcrypt hash (of "Orchid-Secret-Pass-9", cost 4): import speed does
not depend on the hash. Each user has an id and an Akana alias, as a migration file would.
"""
import json
import sys

HASH = "$2b$04$etpDEhMfCYPrQYxTcLsZHuwLyPksIOjGvQ/1GuzWAqpnTptgWwDb."


def main():
    n, out = int(sys.argv[1]), sys.argv[2]
    with open(out, "w", buffering=1 << 20) as f:
        if out.endswith(".csv"):
            f.write("username,id,password_hash,aliases\n")
            for i in range(n):
                f.write(f"user{i:07d}@example.com,u-{i:07d},{HASH},akana=ak-{i:07d}.acme\n")
        else:
            for i in range(n):
                row = {"username": f"user{i:07d}@example.com", "id": f"u-{i:07d}",
                       "password_hash": HASH, "aliases": {"akana": f"ak-{i:07d}.acme"}}
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
