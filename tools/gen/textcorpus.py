#!/usr/bin/env python3
"""A corpus of real text for the span-attribution benchmark: text files that ship on Debian
(documentation, licenses, headers, the Python and Perl libraries), valid UTF-8 without 0xFF,
at most 4 MiB each, in a fixed order, until MB megabytes. Many repeat (license texts, copyright
files), as real training sets do.

    textcorpus.py OUT MB [QUERIES]

writes OUT/part-NNN/NNNNN.txt (about 2 MB a folder: one contribution each), OUT.bin (the
documents in that order, each followed by 0xFF: what the index sorts) and, with QUERIES, that
many count queries (one a line): pieces of documents 4-40 bytes long, a tenth of them absent."""
import os, random, sys

out, limit = sys.argv[1], int(float(sys.argv[2]) * 1e6)
queries = int(sys.argv[3]) if len(sys.argv) > 3 else 0
roots = ['/usr/share/doc', '/usr/share/common-licenses', '/usr/include', '/usr/lib/python3.11', '/usr/share/perl', '/usr/share/perl5']
docs, total = [], 0
for root in roots:
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(d, f)
            if os.path.islink(p) or not os.path.isfile(p):
                continue
            try:
                b = open(p, 'rb').read()
                b.decode('utf-8')
            except (OSError, UnicodeDecodeError):
                continue
            if not b or len(b) > 4 << 20:
                continue
            docs.append(b)
            total += len(b) + 1
            if total >= limit:
                break
        if total >= limit:
            break
    if total >= limit:
        break
os.makedirs(out, exist_ok=True)
part, size = 0, 0
with open(out + '.bin', 'wb') as joined:
    for i, b in enumerate(docs):
        if size >= 2_000_000:
            part, size = part + 1, 0
        folder = os.path.join(out, f'part-{part:03d}')
        os.makedirs(folder, exist_ok=True)
        open(os.path.join(folder, f'{i:05d}.txt'), 'wb').write(b)
        joined.write(b + b'\xff')
        size += len(b)
if queries:
    r = random.Random(42)
    with open(out + '.queries', 'wb') as q:
        for k in range(queries):
            if k % 10 == 9:
                q.write(b'zq' + bytes(r.choice(b'xjvkw') for _ in range(8)) + b'\n')
                continue
            while True:
                b = r.choice(docs)
                s = r.randrange(len(b))
                piece = b[s:s + r.randint(4, 40)]
                if b'\n' not in piece and b'\r' not in piece and len(piece) >= 4:
                    break
            q.write(piece + b'\n')
print(f'{len(docs)} documents, {total} bytes with separators, {part + 1} folders')
