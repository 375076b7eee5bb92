#!/usr/bin/env python3
"""Writes schema/vectors/minhash.json: MinHash signatures computed from schema/curation.md
("Near-duplicates") by this independent implementation (Python standard library only), which
`MinHashTests.goldenSignatures` holds the Swift implementation to, slot by slot.

  python3 tools/gen/minhash.py [OUT]      (default: schema/vectors/minhash.json)

Texts are precomposed Unicode: tokens are maximal runs of letters and digits after full
lower-casing, which Python's str.lower/isalpha/isnumeric and Swift's lowercased/isLetter/
isNumber agree on for such text (see curation.md on combining marks).
"""
import hashlib
import json
import os
import sys

P = (1 << 61) - 1
K = 128


def params():
    out = []
    for i in range(K):
        h = hashlib.sha256(b"datanet/v1/minhash-params" + i.to_bytes(4, "big")).digest()
        a = int.from_bytes(h[0:8], "big") % P
        b = int.from_bytes(h[8:16], "big") % P
        out.append((a if a else 1, b))
    return out


def words(text):
    out, cur = [], ""
    for ch in text.lower():
        if ch.isalpha() or ch.isnumeric():
            cur += ch
        elif cur:
            out.append(cur)
            cur = ""
    if cur:
        out.append(cur)
    return out


def signature(text, ps):
    w = words(text)
    if not w:
        return None
    shingles = [" ".join(w)] if len(w) < 5 else [" ".join(w[i:i + 5]) for i in range(len(w) - 4)]
    sig = [(1 << 64) - 1] * K
    for s in set(shingles):
        x = int.from_bytes(hashlib.sha256(b"datanet/v1/minhash\x00" + s.encode("utf-8")).digest()[:8], "big")
        for i, (a, b) in enumerate(ps):
            v = (a * x + b) % P
            if v < sig[i]:
                sig[i] = v
    return sig


def generated(seed, n):
    # Deterministic word soup: word j is "w" + decimal of SHA-256(seed ‖ j)[0] (256 words).
    return " ".join("w%d" % hashlib.sha256(b"%d/%d" % (seed, j)).digest()[0] for j in range(n))


texts = [
    "The quick brown fox jumps over the lazy dog",
    "Hello, WORLD! Ünïcode—Straße 42",
    "Καλημέρα κόσμε, это тест номер 7 и ещё один тест; 東京 2026",
    "  ,;  ",
    generated(1, 300),
    " ".join(w if j != 150 else "changed" for j, w in enumerate(generated(1, 300).split(" "))),
]
ps = params()
doc = {
    "format": "datanet minhash golden v1 (schema/curation.md Near-duplicates); slots as 16 hex digits",
    "k": K,
    "threshold": 116,
    "params": [["%016x" % a, "%016x" % b] for a, b in ps[:4]],
    "cases": [{"text": t, "words": len(words(t)),
               "signature": None if signature(t, ps) is None else ["%016x" % v for v in signature(t, ps)]} for t in texts],
}
sigs = [c["signature"] for c in doc["cases"]]
doc["matches_4_5"] = sum(1 for a, b in zip(sigs[4], sigs[5]) if a == b)
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "schema", "vectors", "minhash.json")
with open(out, "w", encoding="utf-8") as f:
    json.dump(doc, f, indent=1, ensure_ascii=False)
    f.write("\n")
