import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore
import Foundation

/// The store's bound on its queue: the content bytes of every contribution pending here, all
/// Datanets together. Per-author quotas bound what a sequencer takes in, but what they defer,
/// and what bundles bring, waits in the queue; `propose` refuses a contribution that would take
/// the queue past the bound (setting `max-queued-bytes`, schema/identity.md). The count is kept
/// in `ledger-meta` under "queued-bytes" (u64 big-endian) by the one place that queues a record
/// and the one that takes it out; a store that kept none counts its queue once.
extension Ledger {
    static let queuedBytesKey = Array("queued-bytes".utf8)
    /// The bound when the store sets none: 16 GiB, sixteen default author quotas.
    public static let defaultMaxQueuedBytes: UInt64 = 16 << 30

    /// A store's bound, from its settings file.
    public static func maxQueuedBytes(storeDirectory: String) throws -> UInt64 {
        guard let text = try StoreConfig(storeDirectory: storeDirectory).value("max-queued-bytes") else { return defaultMaxQueuedBytes }
        guard let bound = StoreConfig.byteCount(text) else {
            throw IdentityError.badFile(storeDirectory + "/config.json", "max-queued-bytes is '\(text)', not a byte count (e.g. 500000000, 512MiB, 16GiB)")
        }
        return bound
    }

    /// The bound on queued records when the store sets none: keys are free, so per-author quotas
    /// do not bound how many authors queue records (nor do bytes bound records without content).
    public static let defaultMaxQueuedRecords = 1_000_000

    /// A store's bound on queued records, from its settings file.
    public static func maxQueuedRecords(storeDirectory: String) throws -> Int {
        guard let text = try StoreConfig(storeDirectory: storeDirectory).value("max-queued-records") else { return defaultMaxQueuedRecords }
        guard let bound = StoreConfig.count(text) else {
            throw IdentityError.badFile(storeDirectory + "/config.json", "max-queued-records is '\(text)', not a count from 1 to 1000000000")
        }
        return bound
    }

    /// Refuses one more queued record when the queue, all Datanets together, holds the bound.
    func checkQueuedRecords(_ txn: Transaction) throws {
        let bound = try queueRecordBound.get()
        let held = try txn.count(pending)
        guard held < bound else { throw LedgerRefusal.queueFullOfRecords(held: held, bound: bound) }
    }

    /// The content bytes of the contributions pending in this store.
    func queuedBytes(_ txn: Transaction) throws -> UInt64 {
        if let kept = try txn.withValue(meta, Self.queuedBytesKey, { $0.count == 8 ? BigEndian.u64($0) : nil }) ?? nil { return kept }
        var total: UInt64 = 0
        try txn.scan(pending) { k, v in
            total = total.addingReportingOverflow(try queuedSize(txn, v, key: k)).partialValue
            return true
        }
        return total
    }

    /// Queues `bytes` more content, or refuses when that would pass the bound.
    func addQueued(_ txn: Transaction, _ bytes: UInt64) throws {
        let bound = try queueBound.get()
        let queued = try queuedBytes(txn)
        let (total, overflow) = queued.addingReportingOverflow(bytes)
        guard !overflow, total <= bound else { throw LedgerRefusal.queueFull(queued: queued, adding: bytes, bound: bound) }
        try txn.put(meta, Self.queuedBytesKey, BigEndian.bytes(total))
    }

    /// Takes the pending entry at `key` out of the count (before it is deleted).
    func removeQueued(_ txn: Transaction, key: [UInt8]) throws {
        guard let size = try txn.withValue(pending, key, { v in try queuedSize(txn, v, key: key) }), size > 0 else { return }
        let queued = try queuedBytes(txn)
        try txn.put(meta, Self.queuedBytesKey, BigEndian.bytes(queued >= size ? queued - size : 0))
    }

    /// The content size a pending entry (record id ‖ envelope, or the id alone) counts for:
    /// a contribution's size, 0 for any other record.
    private func queuedSize(_ txn: Transaction, _ value: UnsafeRawBufferPointer, key: some Collection<UInt8>) throws -> UInt64 {
        if value.count > 32, let body = Envelope.body(of: UnsafeRawBufferPointer(rebasing: value[32...]), kind: .contribution),
           let c = Contribution.scanned(body) {
            return c.size
        }
        guard let bytes = try pendingRecord(txn, value, key: key).1, let e = try? Envelope(encoded: bytes),
              case .contribution(let c)? = try? Record(e) else { return 0 }
        return c.size
    }
}

extension StoreConfig {
    /// A byte count: digits, optionally followed by KiB, MiB, GiB or TiB (powers of 1024), or
    /// KB, MB, GB, TB (powers of 1000); nil for anything else or a count past 2^64.
    public static func byteCount(_ text: String) -> UInt64? {
        let units: [(String, UInt64)] = [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("TiB", 1 << 40),
                                         ("KB", 1_000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("TB", 1_000_000_000_000), ("B", 1), ("", 1)]
        let t = text.trimmingCharacters(in: .whitespaces)
        for (suffix, scale) in units where t.hasSuffix(suffix) {
            let digits = t.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)
            guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let n = UInt64(digits) else { continue }
            let (v, overflow) = n.multipliedReportingOverflow(by: scale)
            return overflow ? nil : v
        }
        return nil
    }
}
