#!/usr/bin/env python3
"""Deterministic data generators for Datanet's demo, interop checks and benchmarks.

  data.py bytes KIND SIZE SEED OUT        KIND: random | zeros | text | mixed
  data.py model SIZE SEED OUT             a safetensors-like file: JSON header + tensors
  data.py finetune IN SEED OUT [PCT]      rewrite IN's header (every offset shifts) and
                                          replace PCT% (default 5) of its tensors
  data.py dataset DIR FILES SEED          a folder of small text and binary records
  data.py edits IN OUT COUNT SIZE SEED    overwrite COUNT scattered SIZE-byte spans
  data.py insert IN OUT AT SIZE SEED      insert SIZE random bytes at offset AT
Same arguments, same bytes, on every machine.
"""
import json
import os
import random
import struct
import sys


def random_bytes(size, seed):
    # randbytes is limited to 2^31 bits per call: draw in 16 MiB pieces from one generator.
    rng, parts, left = random.Random(seed), [], size
    while left > 0:
        n = min(left, 16 << 20)
        parts.append(rng.randbytes(n))
        left -= n
    return b"".join(parts)


def text_bytes(size, seed):
    rng = random.Random(seed)
    vocab_rng = random.Random(1)
    vocab = ["".join(vocab_rng.choice("etaoinshrdlucmfwyp") for _ in range(vocab_rng.randint(2, 9)))
             for _ in range(3000)]
    out, n = [], 0
    while n < size:
        word = rng.choice(vocab) + (". " if rng.random() < 0.07 else " ")
        out.append(word)
        n += len(word)
    return "".join(out).encode()[:size]


def mixed_bytes(size, seed):
    rng = random.Random(seed)
    out, seen = bytearray(), []
    while len(out) < size:
        roll = rng.random()
        if roll < 0.5 or not seen:
            block = rng.randbytes(rng.randint(512, 200 * 1024))
            seen.append(block)
        elif roll < 0.8:
            block = rng.choice(seen)
        else:
            block = bytes(rng.randint(1, 320 * 1024))
        out += block
    return bytes(out[:size])


KINDS = {"random": random_bytes, "zeros": lambda size, seed: bytes(size),
         "text": text_bytes, "mixed": mixed_bytes}


def write_model(size, seed, path):
    """A header (u64 little-endian length + JSON) followed by float16-sized random tensors."""
    rng = random.Random(seed)
    names, offset, tensors = [], 0, {}
    layer = 0
    while offset < size:
        for part, shape in (("attn.q", (512, 512)), ("attn.k", (512, 512)), ("mlp.up", (512, 1024)), ("norm", (512,))):
            n = 2
            for d in shape:
                n *= d
            name = f"layers.{layer}.{part}"
            tensors[name] = {"dtype": "F16", "shape": list(shape), "data_offsets": [offset, offset + n]}
            names.append((name, n))
            offset += n
        layer += 1
    header = json.dumps({"__metadata__": {"format": "pt", "seed": str(seed)}, **tensors}, sort_keys=True).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)))
        f.write(header)
        for name, n in names:
            f.write(rng.randbytes(n))


def finetune(src, seed, dst, pct):
    """Keeps 100-pct % of tensors byte-identical; the header grows, so every offset shifts."""
    rng = random.Random(seed)
    with open(src, "rb") as f:
        hlen = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(hlen))
        meta = header.pop("__metadata__")
        body_start = 8 + hlen
        meta["finetuned_from"] = "base"
        meta["notes"] = "x" * rng.randint(100, 900)
        new_header = json.dumps({"__metadata__": meta, **header}, sort_keys=True).encode()
        names = sorted(header, key=lambda k: header[k]["data_offsets"][0])
        replace = set(rng.sample(names, max(1, len(names) * pct // 100)))
        with open(dst, "wb") as out:
            out.write(struct.pack("<Q", len(new_header)))
            out.write(new_header)
            for name in names:
                a, b = header[name]["data_offsets"]
                f.seek(body_start + a)
                data = f.read(b - a)
                out.write(rng.randbytes(len(data)) if name in replace else data)


def write_dataset(root, files, seed):
    rng = random.Random(seed)
    for i in range(files):
        sub = os.path.join(root, f"part-{i % 4}")
        os.makedirs(sub, exist_ok=True)
        if i % 5 == 4:
            data, ext = rng.randbytes(rng.randint(1, 300_000)), "bin"
        else:
            data, ext = text_bytes(rng.randint(10, 40_000), rng.randrange(1 << 30)), "txt"
        with open(os.path.join(sub, f"record-{i:05d}.{ext}"), "wb") as f:
            f.write(data)


def edits(src, dst, count, size, seed):
    rng = random.Random(seed)
    data = bytearray(open(src, "rb").read())
    for _ in range(count):
        at = rng.randrange(0, max(1, len(data) - size))
        data[at:at + size] = rng.randbytes(size)
    open(dst, "wb").write(data)


def insert(src, dst, at, size, seed):
    data = open(src, "rb").read()
    open(dst, "wb").write(data[:at] + random.Random(seed).randbytes(size) + data[at:])


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(argv) >= 2 else 2
    cmd, a = argv[1], argv[2:]
    if cmd == "bytes":
        kind, size, seed, out = a[0], int(a[1]), int(a[2]), a[3]
        with open(out, "wb") as f:
            f.write(KINDS[kind](size, seed))
    elif cmd == "model":
        write_model(int(a[0]), int(a[1]), a[2])
    elif cmd == "finetune":
        finetune(a[0], int(a[1]), a[2], int(a[3]) if len(a) > 3 else 5)
    elif cmd == "dataset":
        write_dataset(a[0], int(a[1]), int(a[2]))
    elif cmd == "edits":
        edits(a[0], a[1], int(a[2]), int(a[3]), int(a[4]))
    elif cmd == "insert":
        insert(a[0], a[1], int(a[2]), int(a[3]), int(a[4]))
    else:
        print(f"data.py: unknown command {cmd}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
