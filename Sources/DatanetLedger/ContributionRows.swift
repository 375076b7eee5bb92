import DatanetCBOR
import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore

/// One row per contribution taken in, with its outcome, so listings (`status`, `ls`, export's
/// accepted set) read 100,000 rows instead of 200,000 leaves (schema/log.md "The index derived
/// from the leaves"). Table `contribution-rows`, key Datanet ‖ u64 intake index, value:
///
///     record id (32) ‖ author key (32) ‖ content id (32) ‖ content kind (1) ‖ u64 size
///     ‖ sidecar hash (32) ‖ u64 created-at ‖ u64 decision leaf ‖ outcome (1)
///     ‖ u64 tombstone leaf ‖ u16 length ‖ media type ‖ u16 length ‖ license
///
/// A leaf index of 2^64 − 1 means none yet; outcome 0 undecided, 1 accepted, 2 rejected.
/// Written by `LogIndex.apply` only (intake, decision and tombstone effects), so it is log-
/// derived: fsck rebuilds and compares it like the other index tables.
struct ContributionRow: Equatable {
    var id: RecordID
    var contribution: Contribution
    var intake: UInt64
    var decision: UInt64?
    var accepted = false
    var tombstone: UInt64?

    /// Accepted by a decision below leaf `end` (a tombstone anywhere still withdraws it).
    func isAccepted(below end: UInt64) -> Bool { accepted && decision.map { $0 < end } == true }

    static let fixedWidth = 162
    private static let none = UInt64.max
    private static let decisionAt = 145, outcomeAt = 153, tombstoneAt = 154

    /// The row of a contribution just taken in.
    static func encode(_ id: RecordID, _ c: Contribution) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(fixedWidth + 4 + c.mediaType.utf8.count + c.license.utf8.count)
        out += id.bytes; out += c.author.bytes; out += c.content.bytes
        out.append(UInt8(c.contentKind.rawValue))
        BigEndian.append(c.size, 8, &out)
        out += c.sidecar.bytes
        BigEndian.append(c.createdAt, 8, &out)
        BigEndian.append(none, 8, &out)
        out.append(0)
        BigEndian.append(none, 8, &out)
        for text in [c.mediaType, c.license] {
            BigEndian.append(UInt64(text.utf8.count), 2, &out)
            out += text.utf8
        }
        return out
    }

    /// `row` with its decision recorded.
    static func decided(_ row: UnsafeRawBufferPointer, at leaf: UInt64, accepted: Bool) -> [UInt8] {
        var out = Array(row)
        overwrite(&out, decisionAt, leaf)
        out[outcomeAt] = accepted ? 1 : 2
        return out
    }

    /// `row` with its tombstone recorded.
    static func withdrawn(_ row: UnsafeRawBufferPointer, at leaf: UInt64) -> [UInt8] {
        var out = Array(row)
        overwrite(&out, tombstoneAt, leaf)
        return out
    }

    private static func overwrite(_ out: inout [UInt8], _ at: Int, _ n: UInt64) {
        for i in 0..<8 { out[at + i] = UInt8(truncatingIfNeeded: n >> (8 * UInt64(7 - i))) }
    }

    /// The media type and license last read, reused while rows repeat them (most do).
    struct Texts { var bytes = [[UInt8]](repeating: [], count: 2), strings = ["", ""] }

    /// Reads a stored row of Datanet `d`'s intake `intake`; a value of another shape is damage
    /// naming the table and key.
    init(_ v: UnsafeRawBufferPointer, _ d: DatanetID, intake: UInt64) throws {
        var texts = Texts()
        try self.init(v, d, intake: intake, texts: &texts)
    }

    init(_ v: UnsafeRawBufferPointer, _ d: DatanetID, intake: UInt64, texts: inout Texts) throws {
        func damage(_ why: String) -> LedgerError {
            .corruptEntry(table: "contribution-rows", key: Hex.encode(BigEndian.key(d, intake)), why: why)
        }
        guard v.count >= Self.fixedWidth + 4 else { throw damage("value is \(v.count) bytes, shorter than a row") }
        func slice(_ at: Int, _ n: Int) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: v[at..<at + n]) }
        var at = Self.fixedWidth
        func text(_ k: Int, _ max: Int) throws -> String {
            let n = Int(v[at]) << 8 | Int(v[at + 1])
            guard n <= max, at + 2 + n <= v.count else { throw damage("a text field is malformed") }
            let bytes = slice(at + 2, n)
            at += 2 + n
            if bytes.elementsEqual(texts.bytes[k]) { return texts.strings[k] }
            guard CBOR.isUTF8(bytes) else { throw damage("a text field is not UTF-8") }
            (texts.bytes[k], texts.strings[k]) = (Array(bytes), String(decoding: bytes, as: UTF8.self))
            return texts.strings[k]
        }
        let mediaType = try text(0, Contribution.maximumMediaType)
        guard at + 2 <= v.count else { throw damage("the license is missing") }
        let license = try text(1, Contribution.maximumLicense)
        guard at == v.count else { throw damage("value has \(v.count - at) bytes after the license") }
        guard let kind = ContentKind(rawValue: UInt64(v[96])), v[Self.outcomeAt] <= 2 else { throw damage("a content kind or outcome is out of range") }
        id = RecordID(slice(0, 32))!
        contribution = Contribution(datanet: d, author: PublicKey(slice(32, 32))!, content: ObjectID(slice(64, 32))!, contentKind: kind,
                                    size: BigEndian.u64(v, at: 97), mediaType: mediaType, license: license,
                                    sidecar: Digest(slice(105, 32))!, createdAt: BigEndian.u64(v, at: 137))
        self.intake = intake
        let (dec, ts) = (BigEndian.u64(v, at: Self.decisionAt), BigEndian.u64(v, at: Self.tombstoneAt))
        (decision, accepted, tombstone) = (dec == Self.none ? nil : dec, v[Self.outcomeAt] == 1, ts == Self.none ? nil : ts)
        guard (decision == nil) == (v[Self.outcomeAt] == 0) else { throw damage("its outcome and decision leaf disagree") }
    }
}

extension Ledger {
    static let contributionRowsFilled = Array("contribution-rows-v1".utf8)

    /// Stores made before the rows: fills them once from the leaves, on the first writable open,
    /// through the same effects `LogIndex.apply` writes.
    func fillContributionRows() throws {
        guard let rows = contributionRows, try !env.read({ txn in try txn.contains(meta, Self.contributionRowsFilled) }) else { return }
        let all = try reader.datanets()
        let tables = try all.map { try leafTable($0.id) }
        try env.write { txn in
            guard try !txn.contains(meta, Self.contributionRowsFilled) else { return }
            for (st, table) in zip(all, tables) {
                var effects = [(UInt64, LeafEffect)]()
                try table.scan(txn) { i, v in
                    let leaf = try Leaf(encoded: Array(v))
                    switch leaf.payload {
                    case .intake, .decision, .tombstone:
                        if let effect = LeafEffect(leaf, records: try leaf.records.map { ($0, try Record($0)) }) { effects.append((i, effect)) }
                    default: break
                    }
                    return true
                }
                try txn.withCursor(rows) { cursor in
                    for (i, effect) in effects { try index.applyRow(cursor, st.id, i, effect) }
                }
            }
            try txn.put(meta, Self.contributionRowsFilled, [UInt8(1)])
        }
    }
}

extension LogIndex {
    /// What an intake, decision or tombstone effect at leaf `index` writes in `contribution-rows`.
    func applyRow(_ rows: borrowing Cursor, _ d: DatanetID, _ index: UInt64, _ effect: LeafEffect) throws {
        switch effect {
        case .intake(let e, let c):
            try rows.put(BigEndian.key(d, index), ContributionRow.encode(e.id, c))
        case .decision(let intake, let accepted, _):
            try rewrite(rows, d, intake, by: "a decision") { ContributionRow.decided($0, at: index, accepted: accepted) }
        case .tombstone(_, _, let intake):
            try rewrite(rows, d, intake, by: "a tombstone") { ContributionRow.withdrawn($0, at: index) }
        case .governing, .review, .model:
            break
        }
    }

    /// Replaces the row of `d`'s intake `intake` with `change` of it; a missing or short row is
    /// damage (a leaf named by `leaf`, such as "a decision", names an intake without a row).
    private func rewrite(_ rows: borrowing Cursor, _ d: DatanetID, _ intake: UInt64, by leaf: String,
                         _ change: (UnsafeRawBufferPointer) -> [UInt8]) throws {
        let key = DigestNumberKey(d, intake)
        func damage(_ why: String) -> LedgerError {
            .corruptEntry(table: "contribution-rows", key: Hex.encode(BigEndian.key(d, intake)), why: why)
        }
        let row = try rows.withValue(key) { v throws -> [UInt8] in
            guard v.count >= ContributionRow.fixedWidth + 4 else { throw damage("value is \(v.count) bytes, shorter than a row") }
            return change(v)
        }
        guard let row else { throw damage("\(leaf) names an intake with no row") }
        try rows.put(key, row)
    }
}

extension LedgerReader {
    /// The rows of `d`'s contributions taken in below leaf `end`, in intake order; nil when this
    /// store has no rows (a read-only open of a store made before them): read the leaves then.
    func contributionRows(_ d: DatanetID, below end: UInt64) throws -> [ContributionRow]? {
        var out = [ContributionRow]()
        let held = try forEachRowBlock(d, below: end, { _, rows in rows }, consume: { out += $0 })
        return held ? out : nil
    }

    /// Leaf indexes per block of rows: a block holds the intakes among them.
    static let rowBlock: UInt64 = 8192

    /// Reads `d`'s rows below leaf `end` a block at a time on the other cores, each block in a
    /// read transaction of its own that `make` may read more from, and calls `consume` with
    /// what `make` made of each block, in intake order. False when this store has no rows.
    func forEachRowBlock<R>(_ d: DatanetID, below end: UInt64, _ make: @escaping (Transaction, [ContributionRow]) throws -> R,
                            consume: (R) throws -> Void) throws -> Bool {
        guard let table = ledger.contributionRows,
              try ledger.env.read({ txn in try txn.contains(ledger.meta, Ledger.contributionRowsFilled) }) else { return false }
        let env = ledger.env, end = min(end, try state(of: d).size)
        let blocks = stride(from: 0, to: end, by: Int(Self.rowBlock)).map { $0..<min(end, $0 + Self.rowBlock) }
        try Parallel.pipeline(blocks, chunk: 1, { slice in
            try slice.map { range in
                try env.read { txn in
                    var rows = [ContributionRow](), texts = ContributionRow.Texts()
                    try txn.scanNumbered(table, d, from: range.lowerBound) { intake, v in
                        guard intake < range.upperBound else { return false }
                        rows.append(try ContributionRow(v, d, intake: intake, texts: &texts))
                        return true
                    }
                    return try make(txn, rows)
                }
            }
        }, consume: { results, _ in for r in results { try consume(r) } })
        return true
    }
}
