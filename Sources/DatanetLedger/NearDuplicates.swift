import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore

/// A text contribution's MinHash signature and the keys of its 16 bands.
public struct TextSketch: Sendable, Equatable {
    let signature: [UInt64]
    let bandKeys: [BandKey]
    /// The ids under its band keys in the committed snapshot it was made in, when a batch's
    /// workers looked them up there (nil: looked up in the writer's transaction).
    var committed: Set<RecordID>? = nil

    /// The sketch of `text` in Datanet `d`; nil when the text has no words.
    public init?(_ text: String, datanet d: DatanetID) {
        guard let sig = MinHash.signature(text) else { return nil }
        signature = sig
        bandKeys = Ledger.bandKeys(d, sig)
    }
}

/// A contribution to flag: its id, record, intake index when it arrived placed in a bundle,
/// and its sketch when computed ahead (nil: computed from the store when flagged).
struct NearDuplicateProbe {
    let id: RecordID
    let contribution: Contribution
    var intakeIndex: UInt64? = nil
    var sketch: TextSketch? = nil
}

/// Band entries a write transaction has added, by band key: what a sketch made from the
/// committed snapshot cannot see.
struct BandsAdded {
    var ids = [BandKey: [RecordID]]()
}

/// One band of a signature as the index keys it: Datanet ‖ band number ‖ first 8 bytes of
/// SHA-256 of the band's slots; a contribution's entry appends its id. Hashed and ordered
/// (as its bytes sort) from its fields, without building the bytes.
struct BandKey: Hashable, Comparable, Sendable {
    let datanet: DatanetID
    let band: UInt8
    /// The 8 bytes, read big-endian, so numeric order is byte order.
    let hash: UInt64

    static let count = 32 + 1 + 8

    /// The key prefix shared by every entry of this band value.
    var bytes: [UInt8] { entry(nil) }

    /// The index entry of contribution `id` under this band value (the prefix when nil).
    func entry(_ id: RecordID?) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Self.count + (id == nil ? 0 : 32))
        write(id, into: &out)
        return out
    }

    /// Writes `entry(id)` into `out`, which holds exactly as many bytes, in place (one buffer
    /// for a run of entries).
    func write(_ id: RecordID?, into out: inout [UInt8]) {
        out.withUnsafeMutableBytes { b in
            datanet.withUnsafeBytes { b.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: 32) }
            b[32] = band
            b.storeBytes(of: hash.bigEndian, toByteOffset: 33, as: UInt64.self)
            id?.withUnsafeBytes { (b.baseAddress! + Self.count).copyMemory(from: $0.baseAddress!, byteCount: 32) }
        }
    }

    static func < (a: BandKey, b: BandKey) -> Bool { (a.datanet, a.band, a.hash) < (b.datanet, b.band, b.hash) }
}

/// Near-duplicate flags (schema/curation.md "Near-duplicates"), found through a band index of
/// the MinHash signatures instead of a scan of all of them: the 128 slots are cut into 16 bands
/// of 8, and each band is indexed under (Datanet, band, hash of its 8 values). Two signatures
/// agreeing in ≥ 116 slots differ in at most 12, which can spoil at most 12 of the 16 bands,
/// so they share at least 4: every pair at the threshold is found, and each candidate is then
/// compared slot by slot. Lookups cost O(bands + candidates), not O(contributions).
extension Ledger {
    static let bands = 16
    static let bandWidth = MinHash.k / bands

    /// For a contribution whose content is text (a file of at most 16 MiB that is valid
    /// UTF-8, whatever media type its author claims) and is in this store: records its MinHash
    /// signature and, if an earlier contribution of the Datanet matches ≥ 116 of 128 slots,
    /// flags it as resembling that one (an exact copy first, then the most slots, then the
    /// smallest id). Shown by `pending` and `show`; curators decide. "Earlier" is: recorded
    /// here before it, for a proposal; taken in at a lower index, for a leaf received in a
    /// bundle (`intakeIndex`).
    func flagNearDuplicate(_ txn: Transaction, _ id: RecordID, _ c: Contribution, intakeIndex: UInt64? = nil, sketch: TextSketch? = nil) throws {
        var added = BandsAdded()
        try flagNearDuplicates(txn, [NearDuplicateProbe(id: id, contribution: c, intakeIndex: intakeIndex, sketch: sketch)], added: &added)
    }

    /// Flags a run of contributions in order, exactly as flagging each in turn would: each
    /// sees the stored index and the run's earlier members. `added` holds what this
    /// transaction's earlier runs indexed (a sketch's `committed` ids do not include them).
    /// The stored index is read with one cursor in key order and written at the end (in key
    /// order when the run is of one Datanet).
    /// With `memo` (a bulk flagging of one Datanet), candidates come from it while it is
    /// active in `txn` instead of from the table.
    func flagNearDuplicates(_ txn: Transaction, _ run: [NearDuplicateProbe], added: inout BandsAdded, memo: BandMemo? = nil) throws {
        guard let bands = minhashBands else { return }
        // Probes without a sketch (a bundle's intakes not sketched as they arrived, whose
        // content this transaction wrote) have their text read here, where the transaction
        // lives, and are sketched on every core; a part of the run holding at most 64 MiB of
        // such text (a sketch made already counting as 1 KiB) is flagged at a time.
        var part = [(probe: NearDuplicateProbe, sketch: TextSketch?, text: String?)]()
        var textBytes = 0
        func flagPart() throws {
            let sketches = try Parallel.map(part, grain: 8) { item in
                item.sketch ?? item.text.flatMap { TextSketch($0, datanet: item.probe.contribution.datanet) }
            }
            let sketched = zip(part, sketches).compactMap { item, sketch in sketch.map { (item.probe, $0) } }
            if !sketched.isEmpty { try flagInOrder(txn, bands, sketched, added: &added, memo: memo) }
            part.removeAll(keepingCapacity: true)
            textBytes = 0
        }
        var seen = Set<RecordID>()
        for p in run where p.contribution.contentKind == .blob && seen.insert(p.id).inserted {
            guard try !txn.contains(minhashes, p.contribution.datanet.bytes + p.id.bytes) else { continue }
            if let sketch = p.sketch {
                part.append((p, sketch, nil))
                textBytes += MinHash.k * 8
                if textBytes >= 64 << 20 { try flagPart() }
            } else if let text = try store.blobText(p.contribution.content, limit: MinHash.maximumText, in: txn) {
                part.append((p, nil, text))
                textBytes += text.utf8.count
                if textBytes >= 64 << 20 { try flagPart() }
            }
        }
        if !part.isEmpty { try flagPart() }
    }

    /// Flags sketched contributions in their order (see `flagNearDuplicates`).
    private func flagInOrder(_ txn: Transaction, _ bands: Table, _ active: [(probe: NearDuplicateProbe, sketch: TextSketch)],
                             added: inout BandsAdded, memo: BandMemo?) throws {
        var entries = [(key: BandKey, id: RecordID)]()
        entries.reserveCapacity(active.count * Self.bands)
        var throughMemo: BandMemo?
        if let memo, active.allSatisfy({ $0.probe.contribution.datanet == memo.datanet && $0.sketch.committed == nil }),
           try memo.isActive(txn, bands) {
            throughMemo = memo
            // The memo is this Datanet's whole index: no lookups, and `added` is not needed
            // (what this transaction writes is in the memo and, for a later lookup, the table).
            for (p, sketch) in active {
                try flag(txn, p, sketch.signature, among: memo.candidates(sketch.bandKeys))
                memo.add(p.id, sketch.bandKeys)
                for key in sketch.bandKeys { entries.append((key, p.id)) }
            }
        } else {
            var stored = [BandKey: [RecordID]]()
            try members(txn, bands, of: active.filter { $0.sketch.committed == nil }.flatMap(\.sketch.bandKeys)) { key, id in
                stored[key, default: []].append(id)
            }
            for (p, sketch) in active {
                var candidates = sketch.committed ?? []
                for key in sketch.bandKeys {
                    if sketch.committed == nil { candidates.formUnion(stored[key] ?? []) }
                    candidates.formUnion(added.ids[key] ?? [])
                }
                try flag(txn, p, sketch.signature, among: candidates)
                for key in sketch.bandKeys {
                    added.ids[key, default: []].append(p.id)
                    entries.append((key, p.id))
                }
            }
        }
        // Written in the table's order when they share a Datanet (band and value first: cheaper
        // to compare, and any order stores the same entries).
        entries.sort { a, b in
            (a.key.band, a.key.hash) != (b.key.band, b.key.hash) ? (a.key.band, a.key.hash) < (b.key.band, b.key.hash)
                : a.key.datanet != b.key.datanet ? a.key.datanet < b.key.datanet : a.id < b.id
        }
        var key = [UInt8](repeating: 0, count: BandKey.count + 32)
        let none = [UInt8]()
        try txn.withCursor(bands) { cursor in
            for e in entries {
                e.key.write(e.id, into: &key)
                try cursor.put(key, none)
            }
        }
        try throughMemo?.wrote(txn, bands)
    }

    /// Calls `body` with each id indexed under each of `keys`, looked up in key order with one
    /// cursor (LMDB then searches from the current leaf page when the next key is on it).
    func members(_ txn: Transaction, _ bands: Table, of keys: [BandKey], _ body: (BandKey, RecordID) -> Void) throws {
        guard !keys.isEmpty else { return }
        try txn.withCursor(bands) { cursor in
            for key in Set(keys).sorted() {
                let prefix = key.bytes
                try cursor.scan(from: prefix) { k, _ in
                    guard k.count == BandKey.count + 32, k.starts(with: prefix) else { return false }
                    body(key, RecordID(UnsafeRawBufferPointer(rebasing: k[BandKey.count...]))!)
                    return true
                }
            }
        }
    }

    /// Compares one contribution with its candidates slot by slot, flags the best match, and
    /// records its signature (unless `recording` is false: it is recorded already).
    func flag(_ txn: Transaction, _ p: NearDuplicateProbe, _ sig: [UInt64], among candidates: Set<RecordID>, recording: Bool = true) throws {
        let c = p.contribution
        var best: (id: RecordID, matches: Int)?
        for other in candidates.sorted() where other != p.id {
            if let intakeIndex = p.intakeIndex {
                guard let at = try intake(txn, c.datanet, other), at < intakeIndex else { continue }
            }
            guard let v = try txn.get(minhashes, c.datanet.bytes + other.bytes), v.count == MinHash.k * 8 else { continue }
            var m = MinHash.matches(sig, Self.slots(v))
            guard m >= MinHash.threshold else { continue }
            // An exact copy outranks any near copy, even one whose slots all agree by chance.
            if m == MinHash.k, let o = try contributionRecord(txn, other), o.content == c.content { m += 1 }
            if m > (best?.matches ?? 0) { best = (other, m) }
        }
        if let best { try txn.put(nearDuplicates, p.id, best.id) }
        if recording { try txn.put(minhashes, c.datanet.bytes + p.id.bytes, Self.signatureBytes(sig)) }
    }

    /// The sketch of a contribution's content as read in a committed snapshot, with the ids
    /// already indexed under its bands there; nil when that content is not text held in this
    /// store. Pure work but the reads: batches compute it on every core before their write
    /// transaction.
    func sketch(committed snapshot: Transaction, _ c: Contribution) throws -> TextSketch? {
        guard c.contentKind == .blob, let text = try store.blobText(c.content, limit: MinHash.maximumText, in: snapshot),
              var sketch = TextSketch(text, datanet: c.datanet) else { return nil }
        if let bands = minhashBands {
            var ids = Set<RecordID>()
            try members(snapshot, bands, of: sketch.bandKeys) { _, id in ids.insert(id) }
            sketch.committed = ids
        }
        return sketch
    }

    private func index(_ txn: Transaction, _ d: DatanetID, _ id: RecordID, _ sig: [UInt64], bands: Table) throws {
        for key in Self.bandKeys(d, sig) { try txn.put(bands, key.entry(id), [UInt8]()) }
    }

    /// The 16 band keys of a signature.
    static func bandKeys(_ d: DatanetID, _ sig: [UInt64]) -> [BandKey] {
        var hasher = SHA256.Hasher()
        var slots = [UInt8](repeating: 0, count: bandWidth * 8)
        return (0..<bands).map { b in
            slots.withUnsafeMutableBytes { out in
                for j in 0..<bandWidth { out.storeBytes(of: sig[b * bandWidth + j].bigEndian, toByteOffset: j * 8, as: UInt64.self) }
            }
            hasher.update(slots)
            let first = hasher.finalize().withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
            return BandKey(datanet: d, band: UInt8(b), hash: UInt64(bigEndian: first))
        }
    }

    /// The contribution whose record this store holds under `id` (nil: none, or another kind).
    func contributionRecord(_ txn: Transaction, _ id: RecordID) throws -> Contribution? {
        guard case .contribution(let c)? = try txn.get(records, id).flatMap({ try? Record(Envelope(encoded: $0)) }) else { return nil }
        return c
    }

    /// A signature as stored: its slots, each 8 bytes big-endian.
    static func signatureBytes(_ sig: [UInt64]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: sig.count * 8)
        out.withUnsafeMutableBytes { b in
            for (i, s) in sig.enumerated() { b.storeBytes(of: s.bigEndian, toByteOffset: i * 8, as: UInt64.self) }
        }
        return out
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
