import CLMDB
import DatanetCrypto
import DatanetObjects

/// Bytes usable as an LMDB key or value without copying.
public protocol ContiguousKey {
    /// Calls `body` with the key's bytes.
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R
}
extension Array: ContiguousKey where Element == UInt8 {}
extension Digest: ContiguousKey {}
extension ID: ContiguousKey {}

/// An LMDB transaction, read-only or read-write. Not `Sendable`: it belongs to the thread that
/// began it (write transactions always; read ones by our choice) and must end before any `await`
/// or network I/O. Bytes borrowed from it are valid only inside the closure that received them
/// (from a read transaction, LMDB keeps them in place until it ends: `borrowedObject` relies on it).
public final class Transaction {
    var handle: OpaquePointer?
    unowned let env: Environment
    /// True for a read-only snapshot.
    public let readOnly: Bool
    /// Bytes of values written in this transaction, for bounding dirty memory.
    public private(set) var dirtyBytes = 0

    init(env: Environment, readOnly: Bool) throws {
        self.env = env
        self.readOnly = readOnly
        var txn: OpaquePointer?
        var rc = mdb_txn_begin(env.handle, nil, readOnly ? UInt32(MDB_RDONLY) : 0, &txn)
        if rc == MDB_MAP_RESIZED {
            // Another process grew the map: adopt its size, then the begin succeeds.
            try env.adoptMapSize()
            rc = mdb_txn_begin(env.handle, nil, readOnly ? UInt32(MDB_RDONLY) : 0, &txn)
        }
        try check(rc)
        handle = txn
    }

    deinit { abort() }

    func liveHandle() throws -> OpaquePointer { try live() }

    /// Opens (or, in a write transaction, creates) a named table inside this transaction; the
    /// handle outlives it only if it commits, and a created table exists only then. The
    /// corresponding LMDB call is `mdb_dbi_open`.
    public func openTable(_ name: String, create: Bool) throws -> Table {
        var dbi: MDB_dbi = 0
        try check(mdb_dbi_open(try live(), name, create && !readOnly ? UInt32(MDB_CREATE) : 0, &dbi))
        return Table(dbi: dbi, name: name)
    }

    private func live() throws -> OpaquePointer {
        guard let h = handle else { throw LMDBError(rawValue: MDB_BAD_TXN) }
        return h
    }

    /// Called before a cursor writes: the transaction must be live; faults are injected as for puts.
    func willWrite() throws {
        _ = try live()
        try injectFault()
    }

    /// Called after a cursor wrote an entry.
    func didWrite(key: Int, value: Int) { dirtyBytes += Transaction.dirtyEstimate(key: key, value: value) }

    private func injectFault() throws {
        #if DATANET_FAULTS
        if !readOnly { try env.faults?.tick() }
        #endif
    }

    /// LMDB's transaction id: a write transaction's id is one more than the last committed one.
    /// The corresponding LMDB call is `mdb_txn_id`.
    public var id: Int { handle.map { Int(mdb_txn_id($0)) } ?? 0 }

    /// Commits durably (fsync) and ends the transaction; on failure it is aborted.
    /// - Throws: `.mapFull`, `.noSpace`, EFBIG, EIO: nothing of this transaction was written.
    /// The corresponding LMDB call is `mdb_txn_commit`.
    public func commit() throws {
        let h = try live()
        handle = nil
        do { try injectFault() } catch { mdb_txn_abort(h); throw error }
        try check(mdb_txn_commit(h))
    }

    /// Discards the transaction; harmless when already ended.
    public func abort() {
        if let h = handle { mdb_txn_abort(h) }
        handle = nil
    }

    /// Calls `body` with the value stored under `key`, borrowed from the map; nil if absent.
    /// The buffer is valid only inside `body` (and, in a write transaction, only until the next write).
    public func withValue<K: ContiguousKey, R>(_ table: Table, _ key: K,
                                               _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R? {
        let h = try live()
        var v = MDB_val()
        let rc = key.withUnsafeBytes { kb -> Int32 in
            var k = MDB_val(mv_size: kb.count, mv_data: UnsafeMutableRawPointer(mutating: kb.baseAddress))
            return mdb_get(h, table.dbi, &k, &v)
        }
        if rc == MDB_NOTFOUND { return nil }
        try check(rc)
        return try body(UnsafeRawBufferPointer(start: v.mv_data, count: v.mv_size))
    }

    /// A copy of the value under `key`, or nil.
    public func get<K: ContiguousKey>(_ table: Table, _ key: K) throws -> [UInt8]? {
        try withValue(table, key) { Array($0) }
    }

    /// True when `key` is present.
    public func contains<K: ContiguousKey>(_ table: Table, _ key: K) throws -> Bool {
        try withValue(table, key) { _ in true } ?? false
    }

    /// Stores `value` under `key`, replacing any old value.
    public func put<K: ContiguousKey, V: ContiguousKey>(_ table: Table, _ key: K, _ value: V,
                                                        append: Bool = false) throws {
        let h = try live()
        try injectFault()
        try key.withUnsafeBytes { kb in
            try value.withUnsafeBytes { vb in
                var k = MDB_val(mv_size: kb.count, mv_data: UnsafeMutableRawPointer(mutating: kb.baseAddress))
                var v = MDB_val(mv_size: vb.count, mv_data: UnsafeMutableRawPointer(mutating: vb.baseAddress))
                try check(mdb_put(h, table.dbi, &k, &v, append ? UInt32(MDB_APPEND) : 0))
                dirtyBytes += Transaction.dirtyEstimate(key: kb.count, value: vb.count)
            }
        }
    }

    /// Reserves `size` bytes for a new value under `key` and lets `fill` write them in place
    /// (MDB_RESERVE), so bytes are copied once, from the caller's buffer into the map.
    /// Returns false, without calling `fill`, if the key already exists (MDB_NOOVERWRITE).
    public func putNew<K: ContiguousKey>(_ table: Table, _ key: K, size: Int,
                                         fill: (UnsafeMutableRawBufferPointer) -> Void) throws -> Bool {
        let h = try live()
        try injectFault()
        return try key.withUnsafeBytes { kb in
            var k = MDB_val(mv_size: kb.count, mv_data: UnsafeMutableRawPointer(mutating: kb.baseAddress))
            var v = MDB_val(mv_size: size, mv_data: nil)
            let rc = mdb_put(h, table.dbi, &k, &v, UInt32(MDB_RESERVE | MDB_NOOVERWRITE))
            if rc == MDB_KEYEXIST { return false }
            try check(rc)
            fill(UnsafeMutableRawBufferPointer(start: v.mv_data, count: size))
            dirtyBytes += Transaction.dirtyEstimate(key: kb.count, value: size)
            return true
        }
    }

    /// Bytes a put adds to the transaction: its key, value and LMDB's node header. (Counting a
    /// whole leaf page per small put bounds memory harder but tripled the commits, and so the
    /// rewritten pages, of an add of many small files; the 250 ms bound caps those batches.)
    static func dirtyEstimate(key: Int, value: Int) -> Int {
        key + value + 8
    }

    /// Deletes `key`; returns false if it was absent.
    @discardableResult
    public func delete<K: ContiguousKey>(_ table: Table, _ key: K) throws -> Bool {
        let h = try live()
        try injectFault()
        let rc = key.withUnsafeBytes { kb -> Int32 in
            var k = MDB_val(mv_size: kb.count, mv_data: UnsafeMutableRawPointer(mutating: kb.baseAddress))
            return mdb_del(h, table.dbi, &k, nil)
        }
        if rc == MDB_NOTFOUND { return false }
        try check(rc)
        return true
    }

    /// Visits entries in key order, starting at the first key ≥ `from` (or the first key);
    /// `body` returns false to stop. Both buffers are borrowed for the call only.
    public func scan(_ table: Table, from: [UInt8]? = nil,
                     _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool) throws {
        // Not `withCursor { $0.scan(from:) }`: specializing that through the ~Copyable cursor
        // crashed Swift 6.3.1's optimizer ("Cannot initialize a nonCopyable type with a
        // guaranteed value") in a clean release build.
        let h = try live()
        var cur: OpaquePointer?
        try check(mdb_cursor_open(h, table.dbi, &cur))
        defer { mdb_cursor_close(cur) }
        var k = MDB_val(), v = MDB_val()
        var rc: Int32
        // LMDB refuses an empty key; every key is ≥ the empty one, so it means "from the first".
        if let from, !from.isEmpty {
            rc = from.withUnsafeBytes { fb -> Int32 in
                k = MDB_val(mv_size: fb.count, mv_data: UnsafeMutableRawPointer(mutating: fb.baseAddress))
                return mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)
            }
        } else {
            rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)
        }
        while rc == 0 {
            let more = try body(UnsafeRawBufferPointer(start: k.mv_data, count: k.mv_size),
                                UnsafeRawBufferPointer(start: v.mv_data, count: v.mv_size))
            if !more { return }
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)
        }
        if rc != MDB_NOTFOUND { try check(rc) }
    }

    /// The number of entries in a table.
    public func count(_ table: Table) throws -> Int {
        var st = MDB_stat()
        try check(mdb_stat(try live(), table.dbi, &st))
        return st.ms_entries
    }

    /// Bytes of the pages a table occupies: an upper bound on its keys and values together,
    /// for sizing a buffer that will hold a scan of it.
    public func footprint(_ table: Table) throws -> Int {
        var st = MDB_stat()
        try check(mdb_stat(try live(), table.dbi, &st))
        return (st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages) * Int(st.ms_psize)
    }
}

extension Transaction {
    /// Opens an existing named table inside this transaction; throws `.notFound` if absent.
    /// The corresponding LMDB call is `mdb_dbi_open`.
    public func openTable(_ name: String) throws -> Table {
        var dbi: MDB_dbi = 0
        try check(mdb_dbi_open(try liveHandle(), name, 0, &dbi))
        return Table(dbi: dbi, name: name)
    }
}

extension Transaction {
    /// The greatest key of `table` that starts with `prefix`, or nil if none does.
    /// The corresponding LMDB calls are `mdb_cursor_get` with MDB_SET_RANGE, MDB_PREV and MDB_LAST.
    public func lastKey(_ table: Table, prefix: [UInt8]) throws -> [UInt8]? {
        var cur: OpaquePointer?
        try check(mdb_cursor_open(try liveHandle(), table.dbi, &cur))
        defer { mdb_cursor_close(cur) }
        var k = MDB_val(), v = MDB_val()
        // The first key past every key with this prefix: the prefix plus one, as a big number.
        var bound = prefix
        while let last = bound.last, last == 0xff { bound.removeLast() }
        var rc: Int32
        if bound.isEmpty {
            rc = mdb_cursor_get(cur, &k, &v, MDB_LAST)
        } else {
            bound[bound.count - 1] += 1
            rc = bound.withUnsafeBytes { b -> Int32 in
                k = MDB_val(mv_size: b.count, mv_data: UnsafeMutableRawPointer(mutating: b.baseAddress))
                return mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)
            }
            rc = rc == MDB_NOTFOUND ? mdb_cursor_get(cur, &k, &v, MDB_LAST) : (rc == 0 ? mdb_cursor_get(cur, &k, &v, MDB_PREV) : rc)
        }
        if rc == MDB_NOTFOUND { return nil }
        try check(rc)
        let key = UnsafeRawBufferPointer(start: k.mv_data, count: k.mv_size)
        return key.starts(with: prefix) ? Array(key) : nil
    }

    /// Names of the named tables that start with `prefix` (LMDB keeps them as keys of its main table).
    public func tableNames(prefix: String) throws -> [String] {
        var names = [String]()
        let p = Array(prefix.utf8)
        var main: MDB_dbi = 0
        try check(mdb_dbi_open(try liveHandle(), nil, 0, &main))
        try scan(Table(dbi: main, name: "main"), from: p) { k, _ in
            guard k.starts(with: p) else { return false }
            names.append(String(decoding: k, as: UTF8.self))
            return true
        }
        return names
    }

    /// Deletes a named table and everything in it; its handle is closed.
    /// The corresponding LMDB call is `mdb_drop` with del = 1.
    public func drop(_ table: Table) throws {
        try willWrite()
        try check(mdb_drop(try liveHandle(), table.dbi, 1))
    }
}
