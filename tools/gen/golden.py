#!/usr/bin/env python3
"""Writes schema/vectors/objects.json: golden vectors for Datanet's content objects.

An independent implementation of schema/chunking.md and schema/objects.md using only the
Python standard library: FastCDC-2020 cut points, chunk ids, RFC 9162 Merkle roots and
inclusion proofs, blob ids, tree CBOR and tree ids, and chunk proofs (valid and mutated).

  python3 tools/gen/golden.py [OUT]     (default: schema/vectors/objects.json)

Inputs are generated here, not stored: "sha256-counter" bytes are the concatenation of
SHA-256(seed UTF-8 ‖ u64 BE counter) for counter 0, 1, 2, … truncated to size; "zeros" bytes
are size zero bytes. Same script, same output, on every machine.
"""
import hashlib
import json
import os
import sys

# ---------------------------------------------------------------- FastCDC-2020 (chunking.md)

MIN_SIZE = 16 * 1024
AVG_SIZE = 64 * 1024
MAX_SIZE = 256 * 1024
MASK64 = (1 << 64) - 1
# Reference fastcdc v2020 MASKS table entries used at normalization level 1, avg 2^16.
MASKS = {15: 0x0000D90F03530000, 17: 0x0000D90703537000}
MASK_S = MASKS[16 + 1]
MASK_L = MASKS[16 - 1]
MASK_S_LS = (MASK_S << 1) & MASK64
MASK_L_LS = (MASK_L << 1) & MASK64


def _md5(data):
    try:
        return hashlib.md5(data, usedforsecurity=False).digest()
    except TypeError:  # Python < 3.9
        return hashlib.md5(data).digest()


GEAR = [int.from_bytes(_md5(bytes([i]) * 64)[:8], "big") for i in range(256)]
GEAR_LS = [(g << 1) & MASK64 for g in GEAR]


def cut(data, start, end):
    """Length of the chunk that starts at data[start], given the input ends at `end`."""
    remaining = end - start
    if remaining <= MIN_SIZE:
        return remaining
    center = AVG_SIZE
    if remaining > MAX_SIZE:
        remaining = MAX_SIZE
    elif remaining < center:
        center = remaining
    h = 0
    index = MIN_SIZE // 2
    while index < center // 2:
        a = index * 2
        h = ((h << 2) + GEAR_LS[data[start + a]]) & MASK64
        if h & MASK_S_LS == 0:
            return a
        h = (h + GEAR[data[start + a + 1]]) & MASK64
        if h & MASK_S == 0:
            return a + 1
        index += 1
    while index < remaining // 2:
        a = index * 2
        h = ((h << 2) + GEAR_LS[data[start + a]]) & MASK64
        if h & MASK_L_LS == 0:
            return a
        h = (h + GEAR[data[start + a + 1]]) & MASK64
        if h & MASK_L == 0:
            return a + 1
        index += 1
    return remaining


def chunk_spans(data):
    """(offset, length) of every chunk; none for an empty input."""
    spans, off = [], 0
    while off < len(data):
        n = cut(data, off, len(data))
        spans.append((off, n))
        off += n
    return spans

# ---------------------------------------------------------------- RFC 9162 Merkle tree


def sha256(b):
    return hashlib.sha256(b).digest()


def leaf_hash(data):
    return sha256(b"\x00" + data)


def node_hash(left, right):
    return sha256(b"\x01" + left + right)


def mth(leaves):
    """RFC 9162 §2.1.1 MTH over leaf hashes (already leaf-hashed)."""
    n = len(leaves)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return leaves[0]
    k = 1
    while k << 1 < n:
        k <<= 1
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def inclusion_path(m, leaves):
    """RFC 9162 §2.1.3.1 PATH(m, D[n]), leaf first."""
    n = len(leaves)
    if n <= 1:
        return []
    k = 1
    while k << 1 < n:
        k <<= 1
    if m < k:
        return inclusion_path(m, leaves[:k]) + [mth(leaves[k:])]
    return inclusion_path(m - k, leaves[k:]) + [mth(leaves[:k])]


class ProofFailure(Exception):
    def __init__(self, case):
        super().__init__(case)
        self.case = case


def root_from_inclusion_proof(index, size, leaf, proof):
    """RFC 9162 §2.1.3.2 verification, returning the computed root."""
    if index >= size:
        raise ProofFailure("indexOutOfRange")
    inner = (index ^ (size - 1)).bit_length()
    want = inner + bin(index >> inner).count("1")
    if len(proof) != want:
        raise ProofFailure("wrongProofSize")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if fn & 1 == 1 or fn == sn:
            r = node_hash(p, r)
            while fn & 1 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r

# ---------------------------------------------------------------- objects (objects.md)


def u64(v):
    return v.to_bytes(8, "big")


def chunk_leaf(chunk_id, offset, length):
    return chunk_id + u64(offset) + length.to_bytes(4, "big")


def blob_id(size, root):
    return sha256(b"datanet/v1/blob\x00" + u64(size) + root)


def manifest(data):
    chunks = []
    for off, n in chunk_spans(data):
        chunks.append((off, n, sha256(data[off:off + n])))
    leaves = [leaf_hash(chunk_leaf(cid, off, n)) for off, n, cid in chunks]
    root = mth(leaves)
    return chunks, leaves, root, blob_id(len(data), root)


def cbor_head(major, value):
    m = major << 5
    if value < 24:
        return bytes([m | value])
    if value <= 0xFF:
        return bytes([m | 24, value])
    if value <= 0xFFFF:
        return bytes([m | 25]) + value.to_bytes(2, "big")
    if value <= 0xFFFFFFFF:
        return bytes([m | 26]) + value.to_bytes(4, "big")
    return bytes([m | 27]) + value.to_bytes(8, "big")


def valid_name(name):
    return name not in (b"", b".", b"..") and b"/" not in name and b"\x00" not in name


def tree_encode(entries):
    """entries: (name bytes, kind 1|2, id 32 bytes, size). Sorted by name bytes here."""
    entries = sorted(entries, key=lambda e: e[0])
    names = [e[0] for e in entries]
    assert len(set(names)) == len(names) and all(valid_name(n) for n in names)
    out = cbor_head(4, len(entries))
    for name, kind, oid, size in entries:
        assert kind in (1, 2) and len(oid) == 32
        out += cbor_head(4, 4) + cbor_head(2, len(name)) + name + cbor_head(0, kind)
        out += cbor_head(2, 32) + oid + cbor_head(0, size)
    return out


def tree_id(encoded):
    return sha256(b"datanet/v1/tree\x00" + encoded)

# ---------------------------------------------------------------- chunk proofs


PROOF_TYPE = "datanet/chunk-proof/v1"


def make_proof(bid, size, root, chunks, leaves, index):
    off, n, cid = chunks[index]
    return {
        "type": PROOF_TYPE, "blob": bid.hex(), "size": size, "root": root.hex(),
        "chunks": len(chunks), "index": index, "chunk": cid.hex(), "offset": off,
        "length": n, "proof": [p.hex() for p in inclusion_path(index, leaves)],
    }


def verify_proof(p):
    """Mirrors ChunkProof.verify's order of checks; returns None or the Swift failure case."""
    if p["type"] != PROOF_TYPE:
        return "wrongType"
    try:
        hashes = {f: bytes.fromhex(p[f]) for f in ("blob", "root", "chunk")}
        path = [bytes.fromhex(h) for h in p["proof"]]
    except ValueError:
        return "badHex"
    if any(len(h) != 32 for h in list(hashes.values()) + path):
        return "badHex"
    if p["offset"] > p["size"] or p["length"] > p["size"] - p["offset"]:
        return "chunkOutsideFile"
    if (p["index"] + 1 == p["chunks"]) != (p["offset"] + p["length"] == p["size"]):
        return "lastChunkMismatch"
    leaf = leaf_hash(chunk_leaf(hashes["chunk"], p["offset"], p["length"]))
    try:
        if root_from_inclusion_proof(p["index"], p["chunks"], leaf, path) != hashes["root"]:
            return "rootMismatch"
    except ProofFailure as e:
        return e.case
    if blob_id(p["size"], hashes["root"]) != hashes["blob"]:
        return "blobIdMismatch"
    return None


def flip_hex(h, at):
    c = "0123456789abcdef"
    return h[:at] + c[(c.index(h[at]) + 1) % 16] + h[at + 1:]

# ---------------------------------------------------------------- inputs


def sha256_counter(seed, size):
    out, counter, prefix = bytearray(), 0, seed.encode()
    while len(out) < size:
        out += sha256(prefix + u64(counter))
        counter += 1
    return bytes(out[:size])


def generate(spec):
    if spec["generator"] == "sha256-counter":
        return sha256_counter(spec["seed"], spec["size"])
    if spec["generator"] == "zeros":
        return bytes(spec["size"])
    raise ValueError(spec)


SIZES = [0, 1, 16383, 16384, 16385, 262144, 262145, 1000000, 3000000]


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else os.path.normpath(os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "schema", "vectors", "objects.json"))
    # Self-check against the reference fastcdc v2020 gear table (first and last entries).
    assert GEAR[0] == 0x3B5D3C7D207E37DC and GEAR[255] == 0xAABD2B2A451504E1
    specs = [{"generator": "sha256-counter", "seed": "datanet/golden/%d" % n, "size": n} for n in SIZES]
    # Zero bytes never satisfy either mask, so every chunk but the last is cut at MAX_SIZE.
    specs.append({"generator": "zeros", "size": 600000})

    blobs, made = [], {}
    for spec in specs:
        data = generate(spec)
        chunks, leaves, root, bid = manifest(data)
        assert sum(n for _, n, _ in chunks) == len(data)
        key = (spec["generator"], spec["size"])
        made[key] = (data, chunks, leaves, root, bid)
        blobs.append({
            "input": spec,
            "input_sha256": sha256(data).hex(),
            "size": len(data),
            "chunks": [{"offset": o, "length": n, "id": c.hex()} for o, n, c in chunks],
            "leaf_hashes": [lh.hex() for lh in leaves],
            "root": root.hex(),
            "blob": bid.hex(),
            "manifest_sha256": sha256(u64(len(data)) + root + b"".join(
                chunk_leaf(c, o, n) for o, n, c in chunks)).hex(),
        })
    zeros = made[("zeros", 600000)][1]
    assert [n for _, n, _ in zeros][:2] == [MAX_SIZE, MAX_SIZE]

    def blob_entry(name, size):
        _, _, _, _, bid = made[("sha256-counter", size)]
        return (name, 1, bid, size)

    trees = []

    def add_tree(desc, entries):
        enc = tree_encode(entries)
        tid = tree_id(enc)
        ordered = sorted(entries, key=lambda e: e[0])
        trees.append({
            "desc": desc,
            "entries": [{"name_hex": n.hex(), "name": n.decode("utf-8"), "kind": k, "id": i.hex(), "size": s}
                        for n, k, i, s in ordered],
            "size": sum(e[3] for e in entries),
            "cbor": enc.hex(),
            "id": tid.hex(),
        })
        return tid, sum(e[3] for e in entries)

    add_tree("empty folder", [])
    # Given out of order; "B" (0x42) sorts before "a" (0x61) by bytes.
    t2, t2size = add_tree("two files, sorted by name bytes",
                          [blob_entry(b"a.bin", 16384), blob_entry(b"B.txt", 1)])
    add_tree("nested: a folder entry, a non-ASCII UTF-8 name, sizes with 2- and 4-byte CBOR integer arguments",
             [blob_entry("données-é.csv".encode(), 1000000),
              (b"sub", 2, t2, t2size),
              blob_entry(b"z", 16383)])

    data, chunks, leaves, root, bid = made[("sha256-counter", 1000000)]
    valid = [make_proof(bid, len(data), root, chunks, leaves, i) for i in (0, len(chunks) - 1)]
    for p in valid:
        assert verify_proof(p) is None, p

    other_root = sha256(b"not the root")
    # (description, which valid proof, mutation). chunks + 1 on chunk 0 of these 15 chunks
    # would still verify (see "accepted" below), so it is applied to the last chunk's proof.
    mutations = [
        ("proof[0] with one hex digit changed", 0, lambda p: p["proof"].__setitem__(0, flip_hex(p["proof"][0], 5))),
        ("index + 1", 0, lambda p: p.__setitem__("index", p["index"] + 1)),
        ("index + 1, past the last leaf", 1, lambda p: p.__setitem__("index", p["index"] + 1)),
        ("index = chunks", 0, lambda p: p.__setitem__("index", p["chunks"])),
        ("offset + 1", 0, lambda p: p.__setitem__("offset", p["offset"] + 1)),
        ("length + 1", 0, lambda p: p.__setitem__("length", p["length"] + 1)),
        ("length + 1, past the end of the file", 1, lambda p: p.__setitem__("length", p["length"] + 1)),
        ("a different root", 0, lambda p: p.__setitem__("root", other_root.hex())),
        ("a different blob id", 0, lambda p: p.__setitem__("blob", flip_hex(p["blob"], 0))),
        ("size + 1", 0, lambda p: p.__setitem__("size", p["size"] + 1)),
        ("chunks + 1", 1, lambda p: p.__setitem__("chunks", p["chunks"] + 1)),
        ("chunks + 2", 0, lambda p: p.__setitem__("chunks", p["chunks"] + 2)),
        ("last proof hash removed", 0, lambda p: p["proof"].pop()),
        ("wrong type string", 0, lambda p: p.__setitem__("type", "datanet/chunk-proof/v2")),
    ]
    invalid = []
    for desc, which, mutate in mutations:
        p = json.loads(json.dumps(valid[which]))
        mutate(p)
        expect = verify_proof(p)
        assert expect is not None, desc
        invalid.append(dict(p, desc="%s (of valid[%d])" % (desc, which), expect=expect))
    # RFC 9162 roots do not commit to the leaf count, and the blob id commits to the byte size
    # and root only, so "chunks" is checked only through the proof's length and shape.
    accepted = []
    for k in (-1, 1):
        p = json.loads(json.dumps(valid[0]))
        p["chunks"] += k
        assert verify_proof(p) is None
        accepted.append(dict(p, desc="chunks %+d (of valid[0]): same proof length and shape, so verify() accepts it" % k))

    doc = {
        "format": "datanet golden object vectors v1 (schema/objects.md, schema/chunking.md)",
        "generated_by": "tools/gen/golden.py",
        "generators": {
            "sha256-counter": "bytes = SHA-256(seed UTF-8 || u64 BE counter) for counter = 0, 1, 2, ... concatenated, truncated to size",
            "zeros": "size zero bytes",
        },
        "fastcdc": {"min": MIN_SIZE, "avg": AVG_SIZE, "max": MAX_SIZE, "normalization": 1,
                    "mask_s": "%016x" % MASK_S, "mask_l": "%016x" % MASK_L},
        "gear_check": [[i, "%016x" % GEAR[i]] for i in (0, 1, 2, 3, 127, 128, 254, 255)],
        "gear_ls_check": [[i, "%016x" % GEAR_LS[i]] for i in (0, 255)],
        "empty_root": sha256(b"").hex(),
        "blobs": blobs,
        "trees": trees,
        "chunk_proofs": {
            "note": ("valid: ChunkProof JSON as `datanet prove` writes it. invalid: ChunkProof JSON plus 'desc' and "
                     "'expect' (the ChunkProof.Failure or Merkle.ProofError case verify() reports first). "
                     "accepted: altered proofs that verify() nevertheless accepts (objects.md, chunk proofs)."),
            "valid": valid,
            "invalid": invalid,
            "accepted": accepted,
        },
    }
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print("wrote %s: %d blobs, %d trees, %d valid and %d invalid proofs"
          % (out_path, len(blobs), len(trees), len(valid), len(invalid)))


if __name__ == "__main__":
    main()
