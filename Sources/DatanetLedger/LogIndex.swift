import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore

/// What one appended leaf changes in the log-derived tables, as the writer knows it: the
/// sequencer from the record it just placed, an import from the leaf the replay checked.
enum LeafEffect {
    /// A contribution taken in (a duplicate's rejection follows as a decision).
    case intake(Envelope, Contribution)
    /// A contribution decided; `reviews` are the records the leaf carries, kept if not held.
    case decision(intake: UInt64, accepted: Bool, reviews: [Envelope])
    /// A genesis, policy, set-sequencer or continuation record.
    case governing(Envelope)
    /// A contribution withdrawn or taken down.
    case tombstone(Envelope, contribution: RecordID, intake: UInt64)
    /// A review sequenced once, for the decisions that cite it (the record, when not held).
    case review(RecordID, Envelope?)
    /// A model registered (the record, kept if not held).
    case model(Envelope)

    /// The effect of a leaf the replay decoded, with the records it carries decoded.
    init?(_ leaf: Leaf, records: [(Envelope, Record)]) {
        switch leaf.payload {
        case .intake:
            guard case (let e, .contribution(let c))? = records.first else { return nil }
            self = .intake(e, c)
        case .decision(let d): self = .decision(intake: d.intake, accepted: d.accepted, reviews: records.map(\.0))
        case .policy(let e), .setSequencer(let e), .continuation(let e): self = .governing(e)
        case .tombstone(let t): self = .tombstone(t.record, contribution: t.contribution, intake: t.intake)
        case .review(let e): self = .review(e.id, e)
        case .model(let m): self = .model(m.record)
        }
    }
}

/// The one writer of the log-derived index tables — `placed`, `undecided`, `decided`,
/// `contents`, `tombstones`, quotas, erasures and the records leaves carry — and the place their
/// key and value layouts are written. Every writer of leaves (create, sequencing, continuation,
/// bundle import; sync next) calls `apply` after appending them, so two stores holding one log
/// hold the same entries (LogTablesTests). Reads are length-checked: a value of the wrong shape
/// is `LedgerError.corruptEntry` naming its table and key.
struct LogIndex {
    let ledger: Ledger

    /// Where a record sits: its Datanet and the index of the leaf that placed it.
    struct Placement: Equatable { var datanet: DatanetID; var index: UInt64 }
    /// An undecided contribution's id, claimed size and author (72 bytes).
    struct Undecided { var contribution: RecordID; var size: UInt64; var author: KeyID }
    /// An author's undecided, non-duplicate proposals and their claimed bytes (16 bytes).
    struct Quota: Equatable { var count: UInt64 = 0; var bytes: UInt64 = 0 }

    // MARK: Reading

    func placement(_ txn: Transaction, _ record: RecordID) throws -> Placement? {
        try txn.withValue(ledger.placed, record) { v in
            try Self.check(v, 40, "placed", record.bytes)
            return Placement(datanet: DatanetID(UnsafeRawBufferPointer(rebasing: v[0..<32]))!, index: BigEndian.u64(v, at: 32))
        }
    }

    /// The leaf index of a number-valued entry (decided, tombstones) under Datanet ‖ intake.
    func number(_ txn: Transaction, _ table: Table, _ d: DatanetID, _ intake: UInt64) throws -> UInt64? {
        let key = BigEndian.key(d, intake)
        return try txn.withValue(table, key) { v in try Self.check(v, 8, table.name, key); return BigEndian.u64(v) }
    }

    /// The `undecided` value of Datanet `d`'s intake `intake` (the key is made only to report damage).
    func undecided(_ v: UnsafeRawBufferPointer, _ d: DatanetID, _ intake: UInt64) throws -> Undecided {
        if v.count != 72 { try Self.check(v, 72, "undecided", BigEndian.key(d, intake)) }
        return Undecided(contribution: RecordID(UnsafeRawBufferPointer(rebasing: v[0..<32]))!, size: BigEndian.u64(v, at: 32),
                         author: KeyID(UnsafeRawBufferPointer(rebasing: v[40..<72]))!)
    }

    func quota(_ txn: Transaction, _ d: DatanetID, author: KeyID) throws -> Quota {
        let key = d.bytes + author.bytes
        return try txn.withValue(ledger.meta, key) { v in
            try Self.check(v, 16, "ledger-meta (quota)", key)
            return Quota(count: BigEndian.u64(v), bytes: BigEndian.u64(v, at: 8))
        } ?? Quota()
    }

    /// The earliest contribution in `d` with this content (intake order).
    func earliest(_ txn: Transaction, _ d: DatanetID, content: ObjectID) throws -> RecordID? {
        let key = d.bytes + content.bytes
        return try txn.withValue(ledger.contents, key) { v in try Self.check(v, 32, "contents", key); return RecordID(v)! }
    }

    static func check(_ v: UnsafeRawBufferPointer, _ width: Int, _ table: String, _ key: [UInt8]) throws {
        guard v.count == width else {
            throw LedgerError.corruptEntry(table: table, key: Hex.encode(key), why: "value is \(v.count) bytes, not \(width)")
        }
    }

    // MARK: Applying

    /// Applies the effects of leaves `first`, `first + 1`, … of `d`, already appended. Returns,
    /// per intake effect, the earlier contribution with the same content if there is one (the
    /// intake is an exact duplicate, to be rejected by the next leaf). `recordsHeld`: the
    /// records the leaves carry are already in `records` (the sequencer's, stored when proposed).
    @discardableResult
    func apply(_ txn: Transaction, _ d: DatanetID, first: UInt64, recordsHeld: Bool = false, _ effects: [LeafEffect]) throws -> [RecordID?] {
        func keep(_ e: Envelope) throws { if !recordsHeld { try self.keep(txn, e) } }
        var duplicates = [RecordID?]()
        var quotas = [KeyID: Quota]()
        func adjust(_ author: KeyID, by change: (inout Quota) -> Void) throws {
            var q = try quotas[author] ?? quota(txn, d, author: author)
            change(&q)
            quotas[author] = q
        }
        // Runs of decisions (the sequencer's bulk) walk `undecided` and `decided` with one cursor each.
        var k = 0
        while k < effects.count {
            let index = first + UInt64(k)
            switch effects[k] {
            case .decision:
                var end = k
                while end < effects.count, case .decision = effects[end] { end += 1 }
                try txn.withCursor(ledger.undecided) { undecided in
                    try txn.withCursor(ledger.decided) { decided in
                        for j in k..<end {
                            guard case .decision(let intake, _, let reviews) = effects[j] else { continue }
                            let key = DigestNumberKey(d, intake)
                            try decided.put(key, BigEndianUInt64(first + UInt64(j)))
                            if let u = try undecided.remove(key, { try self.undecided($0, d, intake) }) {
                                try adjust(u.author) { $0.count -= min(1, $0.count); $0.bytes -= min(u.size, $0.bytes) }
                            }
                            for e in reviews { try keep(e) }
                        }
                    }
                }
                try withRows(txn) { rows in for j in k..<end { try applyRow(rows, d, first + UInt64(j), effects[j]) } }
                duplicates += [RecordID?](repeating: nil, count: end - k)
                k = end
                continue
            case .intake(let e, let c):
                try keep(e)
                try place(txn, e.id, d, index)
                try ledger.claimSidecar(txn, d, c.sidecar, e.id)
                let earlier = try earliest(txn, d, content: c.content)
                if earlier == nil {
                    try txn.put(ledger.contents, d.bytes + c.content.bytes, e.id)
                    try txn.put(ledger.undecided, BigEndian.key(d, index), e.id.bytes + BigEndian.bytes(c.size) + c.author.bytes)
                    let author = KeyID(c.author)
                    try adjust(author) { q in
                        let (sum, overflow) = q.bytes.addingReportingOverflow(c.size)
                        q.count &+= 1; q.bytes = overflow ? .max : sum
                    }
                }
                try withRows(txn) { try applyRow($0, d, index, effects[k]) }
                duplicates.append(earlier)
            case .review(let id, let e):
                if let e { try keep(e) }
                try place(txn, id, d, index)
                duplicates.append(nil)
            case .governing(let e), .model(let e):
                try keep(e)
                try place(txn, e.id, d, index)
                duplicates.append(nil)
            case .tombstone(let e, let contribution, let intake):
                try keep(e)
                try place(txn, e.id, d, index)
                guard let bytes = try txn.get(ledger.records, contribution),
                      case .contribution(let c) = try Record(Envelope(encoded: bytes)) else {
                    throw LedgerError.corruptEntry(table: "records", key: contribution.hex, why: "the contribution a tombstone names is not stored")
                }
                try txn.put(ledger.tombstones, BigEndian.key(d, intake), BigEndian.bytes(index))
                let ownsSidecar = try ledger.recordErasure(txn, d, contribution, c, leaf: index)
                let key = BigEndian.key(d, intake)
                if let u = try txn.withCursor(ledger.undecided, { try $0.remove(key) { try undecided($0, d, intake) } }) {
                    try adjust(u.author) { $0.count -= min(1, $0.count); $0.bytes -= min(u.size, $0.bytes) }
                }
                try withRows(txn) { try applyRow($0, d, index, effects[k]) }
                // Only the owner's tombstone erases the sidecar (a copy of its hash cannot: Erasures.swift).
                if ownsSidecar || ledger.erasures == nil { try txn.delete(ledger.sidecars, c.sidecar) }
                duplicates.append(nil)
            }
            k += 1
        }
        for (author, q) in quotas { try txn.put(ledger.meta, d.bytes + author.bytes, BigEndian.bytes(q.count) + BigEndian.bytes(q.bytes)) }
        return duplicates
    }

    /// Calls `body` with a cursor on `contribution-rows`, unless this open has no such table.
    private func withRows(_ txn: Transaction, _ body: (borrowing Cursor) throws -> Void) throws {
        guard let rows = ledger.contributionRows else { return }
        try txn.withCursor(rows) { try body($0) }
    }

    private func place(_ txn: Transaction, _ id: RecordID, _ d: DatanetID, _ index: UInt64) throws {
        try txn.put(ledger.placed, id, d.bytes + BigEndian.bytes(index))
    }

    /// Stores a record a leaf carries unless held (a held copy may carry more signatures).
    private func keep(_ txn: Transaction, _ e: Envelope) throws {
        guard try !txn.contains(ledger.records, e.id) else { return } // the sequencer's own: stored when proposed
        let bytes = e.encoded
        _ = try txn.putNew(ledger.records, e.id, size: bytes.count) { out in bytes.withUnsafeBytes { out.copyMemory(from: $0) } }
    }
}

extension Ledger {
    /// The log-derived index tables (LogIndex).
    var index: LogIndex { LogIndex(ledger: self) }
}

extension Transaction {
    /// Visits the entries of `table` under Datanet `d` keyed `d ‖ big-endian n`, from `from` on,
    /// in number order; `body` returns false to stop. A key of another length under `d` is
    /// damage (`LedgerError.corruptEntry`), never read past.
    func scanNumbered(_ table: Table, _ d: DatanetID, from: UInt64 = 0,
                      _ body: (UInt64, UnsafeRawBufferPointer) throws -> Bool) throws {
        try scan(table, from: BigEndian.key(d, from)) { k, v in
            guard k.starts(with: d.bytes) else { return false }
            guard k.count == 40 else {
                throw LedgerError.corruptEntry(table: table.name, key: Hex.encode(k), why: "key is \(k.count) bytes, not 40")
            }
            return try body(BigEndian.u64(k, at: 32), v)
        }
    }

    /// Decodes the value under `key` with `decode`; any failure is damage naming the table and key.
    func decoded<T>(_ table: Table, _ key: [UInt8], _ decode: ([UInt8]) throws -> T) throws -> T? {
        guard let bytes = try get(table, key) else { return nil }
        return try LogIndex.decode(table.name, key, bytes, decode)
    }
}

extension LogIndex {
    /// `decode(bytes)`, with any failure reported as damage of this table entry.
    static func decode<T>(_ table: String, _ key: [UInt8], _ bytes: [UInt8], _ decode: ([UInt8]) throws -> T) throws -> T {
        do { return try decode(bytes) } catch {
            throw LedgerError.corruptEntry(table: table, key: Hex.encode(key), why: "\(error)")
        }
    }
}
