import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore

/// Near-duplicate flags (schema/curation.md "Near-duplicates"), found through a band index of
/// the MinHash signatures instead of a scan of all of them: the 128 slots are cut into 16 bands
/// of 8, and each band is indexed under (Datanet, band, hash of its 8 values). Two signatures
/// agreeing in ≥ 116 slots differ in at most 12, which can spoil at most 12 of the 16 bands,
/// so they share at least 4: every pair at the threshold is found, and each candidate is then
/// compared slot by slot. Lookups cost O(bands + candidates), not O(contributions).
/// A text contribution's MinHash signature and the keys of its 16 bands.
struct TextSketch: Sendable {
    let signature: [UInt64]
    let bandKeys: [[UInt8]]
}

extension Ledger {
    static let bands = 16
    static let bandWidth = MinHash.k / bands

    /// For a contribution whose content is text (a file of at most 16 MiB that is valid
    /// UTF-8, whatever media type its author claims) and is in this store: records its MinHash
    /// signature and, if an earlier contribution of the Datanet matches ≥ 116 of 128 slots,
    /// flags it as resembling that one (an exact copy first, then the most slots, then the
    /// smallest id). Shown by
    /// `pending` and `show`; curators decide. "Earlier" is: recorded here before it, for a
    /// proposal; taken in at a lower index, for a leaf received in a bundle (`intakeIndex`).
    func flagNearDuplicate(_ txn: Transaction, _ id: RecordID, _ c: Contribution, intakeIndex: UInt64? = nil, sketched: TextSketch? = nil) throws {
        guard c.contentKind == .blob, let bands = minhashBands,
              try !txn.contains(minhashes, c.datanet.bytes + id.bytes),
              let sketch = try sketched ?? sketch(txn, c) else { return }
        let sig = sketch.signature
        var candidates = Set<RecordID>()
        for key in sketch.bandKeys {
            try txn.scan(bands, from: key) { k, _ in
                guard k.count == key.count + 32, k.starts(with: key) else { return false }
                candidates.insert(RecordID(UnsafeRawBufferPointer(rebasing: k[key.count...]))!)
                return true
            }
        }
        var best: (id: RecordID, matches: Int)?
        for other in candidates.sorted() where other != id {
            if let intakeIndex {
                guard let p = try txn.get(placed, other), p.count == 40, p[0..<32].elementsEqual(c.datanet.bytes),
                      BigEndian.u64(p, at: 32) < intakeIndex else { continue }
            }
            guard let v = try txn.get(minhashes, c.datanet.bytes + other.bytes), v.count == MinHash.k * 8 else { continue }
            var m = MinHash.matches(sig, Self.slots(v))
            guard m >= MinHash.threshold else { continue }
            // An exact copy outranks any near copy, even one whose slots all agree by chance.
            if m == MinHash.k, case .contribution(let o)? = try txn.get(records, other).flatMap({ try? Record(Envelope(encoded: $0)) }),
               o.content == c.content { m += 1 }
            if m > (best?.matches ?? 0) { best = (other, m) }
        }
        if let best { try txn.put(nearDuplicates, id, best.id) }
        try txn.put(minhashes, c.datanet.bytes + id.bytes, sig.flatMap(BigEndian.bytes))
        for key in sketch.bandKeys { try txn.put(bands, key + id.bytes, [UInt8]()) }
    }

    /// The sketch of a contribution's content as read in `txn`; nil when that content is not
    /// text held in this store. Pure work but the reads: batches compute it on every core
    /// before their write transaction.
    func sketch(_ txn: Transaction, _ c: Contribution) throws -> TextSketch? {
        guard c.contentKind == .blob, let text = try store.blobText(c.content, limit: MinHash.maximumText, in: txn),
              let sig = MinHash.signature(text) else { return nil }
        return TextSketch(signature: sig, bandKeys: Self.bandKeys(c.datanet, sig))
    }

    /// The earlier contribution a contribution resembles, if it was flagged.
    public func nearDuplicate(of id: RecordID) throws -> RecordID? {
        try env.read { txn in try txn.get(nearDuplicates, id).flatMap { RecordID(bytes: $0) } }
    }

    /// What `pending` and `show` say of a contribution's likeness to an earlier one: an exact
    /// duplicate (the same content id as a contribution taken in earlier, or as the one its
    /// MinHash flag names; rejected at intake), or a near-duplicate (MinHash).
    public func duplicateFlag(of id: RecordID) throws -> (earlier: RecordID, exact: Bool)? {
        try env.read { txn in
            guard let bytes = try txn.get(records, id), case .contribution(let c)? = try? Record(Envelope(encoded: bytes)) else { return nil }
            if let earliest = try index.earliest(txn, c.datanet, content: c.content), earliest != id {
                return (earliest, true)
            }
            guard let near = try txn.get(nearDuplicates, id).flatMap(RecordID.init(bytes:)) else { return nil }
            let other = try txn.get(records, near).flatMap { try? Record(Envelope(encoded: $0)) }
            if case .contribution(let o)? = other, o.content == c.content { return (near, true) }
            return (near, false)
        }
    }

    private func index(_ txn: Transaction, _ d: DatanetID, _ id: RecordID, _ sig: [UInt64], bands: Table) throws {
        for key in Self.bandKeys(d, sig) { try txn.put(bands, key + id.bytes, [UInt8]()) }
    }

    /// Datanet ‖ band number ‖ first 8 bytes of SHA-256 of the band's slots (big-endian): one
    /// prefix per band; a contribution's entries append its id.
    static func bandKeys(_ d: DatanetID, _ sig: [UInt64]) -> [[UInt8]] {
        var hasher = SHA256.Hasher()
        var slots = [UInt8](repeating: 0, count: bandWidth * 8)
        return (0..<bands).map { b in
            slots.withUnsafeMutableBytes { out in
                for j in 0..<bandWidth { out.storeBytes(of: sig[b * bandWidth + j].bigEndian, toByteOffset: j * 8, as: UInt64.self) }
            }
            hasher.update(slots)
            var key = [UInt8]()
            key.reserveCapacity(32 + 1 + 8 + 32)
            d.withUnsafeBytes { key += $0 }
            key.append(UInt8(b))
            hasher.finalize().withUnsafeBytes { key += $0.prefix(8) }
            return key
        }
    }

    static func slots(_ v: [UInt8]) -> [UInt64] {
        (0..<MinHash.k).map { BigEndian.u64(v, at: $0 * 8) }
    }

    /// Stores made before the band index: index every signature already recorded, once.
    func indexMinHashBands() throws {
        guard let bands = minhashBands else { return }
        let done = Array("minhash-bands-v1".utf8)
        guard try !env.read({ txn in try txn.contains(meta, done) }) else { return }
        try env.write { txn in
            guard try !txn.contains(meta, done) else { return }
            var all = [(DatanetID, RecordID, [UInt64])]()
            try txn.scan(minhashes) { k, v in
                if k.count == 64, v.count == MinHash.k * 8 {
                    all.append((DatanetID(UnsafeRawBufferPointer(rebasing: k[0..<32]))!, RecordID(UnsafeRawBufferPointer(rebasing: k[32...]))!, Self.slots(Array(v))))
                }
                return true
            }
            for (d, id, sig) in all { try index(txn, d, id, sig, bands: bands) }
            try txn.put(meta, done, [UInt8(1)])
        }
    }
}
