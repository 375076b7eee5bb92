import DatanetCBOR
import DatanetCrypto
import DatanetRecords

/// An ∞-gram language model's artifact (schema/spans.md "∞-gram model"): the span index
/// shards of a checkpoint's training set and what the model needs beside them — the
/// checkpoint and the contributions in those shards that are not in its training set.
public struct InfiniGramArtifact: Sendable {
    public static let trainerName = "datanet-infini-gram"
    public static let version: UInt64 = 1
    static let magic = Array("DNNGRAM1".utf8)
    /// Bounds on what an artifact's header may list (a hostile one must not exhaust memory or
    /// the file and mapping limits): its bytes and its shards.
    public static let maximumHeader = 16 << 20, maximumShards = 4_096

    public var datanet: DatanetID
    public var checkpointSize: UInt64
    public var checkpointRoot: Digest
    /// Contributions the shards hold that the model leaves out.
    public var excluded: [RecordID]
    /// Each shard's intake range and where its bytes lie in the artifact.
    public var shards: [(from: UInt64, to: UInt64, offset: UInt64, length: UInt64)]

    /// The artifact's bytes: magic, header length, the header (deterministic CBOR), zeros to 8,
    /// then the shards' bytes, each padded to 8. `shards` gives their bytes in intake order.
    public static func write(datanet: DatanetID, checkpointSize: UInt64, checkpointRoot: Digest, excluded: [RecordID],
                             shards: [SpanShard], _ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        func padded(_ x: Int) -> Int { (x + 7) & ~7 }
        // The header's length depends on the offsets, which depend on its length: offsets are
        // taken past a header with the largest offsets' encoding, then fixed by re-encoding.
        var placed = shards.map { (from: $0.binding.from, to: $0.binding.to, offset: UInt64.max, length: UInt64($0.length)) }
        var header = Self(datanet: datanet, checkpointSize: checkpointSize, checkpointRoot: checkpointRoot,
                          excluded: excluded.sorted(), shards: placed).header
        while true {
            var at = UInt64(padded(16 + header.count))
            for i in placed.indices { placed[i].offset = at; at += UInt64(padded(Int(placed[i].length))) }
            let next = Self(datanet: datanet, checkpointSize: checkpointSize, checkpointRoot: checkpointRoot, excluded: excluded.sorted(), shards: placed).header
            if next.count == header.count { header = next; break }
            header = next
        }
        var start = magic
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { start += $0 }
        start += header
        start += [UInt8](repeating: 0, count: padded(start.count) - start.count)
        try start.withUnsafeBytes(sink)
        for s in shards {
            try sink(s.bytes)
            let zeros = [UInt8](repeating: 0, count: padded(s.length) - s.length)
            try zeros.withUnsafeBytes(sink)
        }
    }

    var header: [UInt8] {
        CBOR.array([.unsigned(Self.version), .bytes(datanet.bytes), .unsigned(checkpointSize), .bytes(checkpointRoot.bytes),
                    .array(excluded.map { .bytes($0.bytes) }),
                    .array(shards.map { .array([.unsigned($0.from), .unsigned($0.to), .unsigned($0.offset), .unsigned($0.length)]) })]).encoded
    }

    /// Reads an artifact's header from its first bytes and its total length; every shard must
    /// lie inside it, in order, without overlap.
    public init(prefix bytes: UnsafeRawBufferPointer, length: UInt64) throws(SpanError) {
        guard bytes.count >= 16, bytes.prefix(8).elementsEqual(Self.magic) else { throw .malformed("not an ∞-gram artifact (no DNNGRAM1 magic)") }
        let h = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        guard h <= UInt64(Self.maximumHeader) else { throw .malformed("an ∞-gram artifact's header is over \(Self.maximumHeader) bytes") }
        guard h <= UInt64(bytes.count - 16) else { throw .malformed("an ∞-gram artifact's header is cut short") }
        let raw = Array(bytes[16..<(16 + Int(h))])
        guard let item = try? CBOR.decode(raw), item.encoded == raw, let f = item.arrayValue, f.count == 6, f[0].unsignedValue == Self.version,
              let d = f[1].bytesValue.flatMap(Digest.init(bytes:)), let size = f[2].unsignedValue, let root = f[3].bytesValue.flatMap(Digest.init(bytes:)),
              let ex = f[4].arrayValue, let sh = f[5].arrayValue, sh.count <= Self.maximumShards else {
            throw .malformed("an ∞-gram artifact's header is not [1, datanet, size, root, [ids], [[from, to, offset, length]]]")
        }
        var excluded = [RecordID]()
        for e in ex {
            guard let id = e.bytesValue.flatMap(Digest.init(bytes:)).map(RecordID.init), excluded.last.map({ $0 < id }) ?? true else {
                throw .malformed("an ∞-gram artifact's excluded contributions are not 32-byte ids in ascending order")
            }
            excluded.append(id)
        }
        var shards = [(from: UInt64, to: UInt64, offset: UInt64, length: UInt64)]()
        var end = UInt64(16) + h
        for s in sh {
            guard let a = s.arrayValue, a.count == 4, let from = a[0].unsignedValue, let to = a[1].unsignedValue, let offset = a[2].unsignedValue,
                  let count = a[3].unsignedValue, offset >= end, offset <= length, count <= length - offset, from <= to else {
                throw .malformed("an ∞-gram artifact's shards overlap or lie outside it")
            }
            shards.append((from, to, offset, count))
            end = offset + count
        }
        (datanet, checkpointSize, checkpointRoot, self.excluded, self.shards) = (DatanetID(d), size, root, excluded, shards)
    }

    init(datanet: DatanetID, checkpointSize: UInt64, checkpointRoot: Digest, excluded: [RecordID], shards: [(from: UInt64, to: UInt64, offset: UInt64, length: UInt64)]) {
        (self.datanet, self.checkpointSize, self.checkpointRoot, self.excluded, self.shards) = (datanet, checkpointSize, checkpointRoot, excluded, shards)
    }
}

/// ∞-gram generation over a span index (infini-gram's longest-suffix backoff at byte level):
/// the next byte is drawn from the counts of the bytes following the longest suffix of the
/// context that occurs with a next byte in the documents (0xFF, a document's end, is never
/// drawn), with a seeded generator, so the same model, prompt and seed give the same bytes.
public struct InfiniGram: Sendable {
    public let index: SpanIndex
    public init(_ index: SpanIndex) { self.index = index }

    /// One generated byte: the suffix length matched, how many continuations it had, how many
    /// of them were this byte, and (when at most `listLimit` occurrences) the contributions
    /// holding suffix + byte, in intake order.
    public struct Step: Sendable {
        public var byte: UInt8, suffix: Int, candidates: Int, count: Int
        public var contributions: [SpanShard.Contribution]
    }

    /// Occurrences of suffix + byte past which the contributions are not listed.
    public static let listLimit = 1_000

    /// The counts of each next byte (not 0xFF) after `context`, over all shards.
    func nextCounts(_ context: UnsafeBufferPointer<UInt8>) -> [Int] {
        var counts = [Int](repeating: 0, count: 255)
        for (s, shard) in index.shards.enumerated() {
            let range = SpanIndex.range(shard, context)
            guard !range.isEmpty else { continue }
            var r = range.lowerBound
            while r < range.upperBound {
                let p = shard.entry(r) + context.count
                guard p < shard.textCount else { r += 1; continue }
                let c = shard.text[p]
                let run = SpanIndex.narrow(shard, r..<range.upperBound, depth: context.count, byte: c)
                if c != SpanIndex.separator {
                    counts[Int(c)] += index.included[s] == nil ? run.count
                        : run.reduce(0) { $0 + (index.excludes(s, position: shard.entry($1)) ? 0 : 1) }
                }
                r = max(run.upperBound, r + 1)
            }
        }
        return counts
    }

    /// Generates up to `maxBytes` bytes after `prompt` (fewer when no byte can follow the empty
    /// context: an empty index). Draws with SplitMix64 seeded by `seed`.
    public func generate(prompt: [UInt8], maxBytes: Int, seed: UInt64) -> [Step] {
        // 0xFF ends a document: no match reaches back past it.
        var context = Array(prompt.split(separator: SpanIndex.separator, omittingEmptySubsequences: false).last ?? []), steps = [Step](), state = seed
        func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        for _ in 0..<maxBytes {
            // The longest suffix with a continuation, by binary search on its length (having one
            // is monotone: a suffix of a suffix that continues also continues).
            let window = min(context.count, 4096)
            let found = context.withUnsafeBufferPointer { b -> (Int, [Int]) in
                func counts(_ l: Int) -> [Int] { nextCounts(UnsafeBufferPointer(rebasing: b[(b.count - l)...])) }
                var (lo, hi) = (0, window)
                var best = counts(0)
                guard best.contains(where: { $0 > 0 }) else { return (0, best) }
                while lo < hi {
                    let mid = (lo + hi + 1) / 2
                    let c = counts(mid)
                    if c.contains(where: { $0 > 0 }) { (lo, best) = (mid, c) } else { hi = mid - 1 }
                }
                return (lo, best)
            }
            let (length, counts) = found
            let total = counts.reduce(0, +)
            guard total > 0 else { break }
            // An exact draw: r uniform below total (rejection keeps it unbiased).
            let bound = UInt64(total), limit = UInt64.max - UInt64.max % bound
            var r = next()
            while r >= limit { r = next() }
            var pick = Int(r % bound), byte = 0
            while pick >= counts[byte] { pick -= counts[byte]; byte += 1 }
            let continuation = Array(context.suffix(length)) + [UInt8(byte)]
            var holders = [UInt64: SpanShard.Contribution]()
            if counts[byte] <= Self.listLimit { index.forEachOccurrence(continuation) { holders[index.contribution($0).intake] = index.contribution($0) } }
            steps.append(Step(byte: UInt8(byte), suffix: length, candidates: total, count: counts[byte],
                              contributions: holders.keys.sorted().map { holders[$0]! }))
            context.append(UInt8(byte))
        }
        return steps
    }
}
