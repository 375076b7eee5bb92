import CLMDB
import DatanetObjects

/// A position in one table of a transaction, for runs of lookups, puts and deletes whose keys
/// ascend. LMDB searches only the current leaf page when the next key falls inside it, so such a
/// run costs a page search per key instead of a descent from the root.
///
/// Valid only inside the `Transaction.withCursor` call that made it; values it returns are
/// borrowed until the next write or the end of that call. The corresponding LMDB calls are
/// `mdb_cursor_get` (MDB_SET_KEY, MDB_SET_RANGE, MDB_NEXT), `mdb_cursor_put` and `mdb_cursor_del`.
public struct Cursor: ~Copyable {
    let handle: OpaquePointer
    let txn: Transaction

    /// Calls `body` with the value stored under `key`, borrowed from the map; nil if absent.
    public func withValue<K: ContiguousKey, R>(_ key: K, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R? {
        var v = MDB_val()
        let rc = key.withUnsafeBytes { kb -> Int32 in
            var k = MDB_val(mv_size: kb.count, mv_data: UnsafeMutableRawPointer(mutating: kb.baseAddress))
            return mdb_cursor_get(handle, &k, &v, MDB_SET_KEY)
        }
        if rc == MDB_NOTFOUND { return nil }
        try check(rc)
        return try body(UnsafeRawBufferPointer(start: v.mv_data, count: v.mv_size))
    }

    /// Calls `body` with each entry from the first key ≥ `key` on, in key order, until it
    /// returns false or the table ends; entries are borrowed for the call only.
    public func scan<K: ContiguousKey>(from key: K, _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool) throws {
        var k = MDB_val(), v = MDB_val()
        // LMDB refuses an empty key; every key is ≥ the empty one, so it means "from the first".
        var rc = key.withUnsafeBytes { kb -> Int32 in
            guard kb.count > 0 else { return mdb_cursor_get(handle, &k, &v, MDB_FIRST) }
            k = MDB_val(mv_size: kb.count, mv_data: UnsafeMutableRawPointer(mutating: kb.baseAddress))
            return mdb_cursor_get(handle, &k, &v, MDB_SET_RANGE)
        }
        while rc == 0 {
            guard try body(UnsafeRawBufferPointer(start: k.mv_data, count: k.mv_size),
                           UnsafeRawBufferPointer(start: v.mv_data, count: v.mv_size)) else { return }
            rc = mdb_cursor_get(handle, &k, &v, MDB_NEXT)
        }
        if rc != MDB_NOTFOUND { try check(rc) }
    }

    /// Stores `value` under `key`, replacing any old value.
    public func put<K: ContiguousKey, V: ContiguousKey>(_ key: K, _ value: V) throws {
        try txn.willWrite()
        try key.withUnsafeBytes { kb in
            try value.withUnsafeBytes { vb in
                var k = MDB_val(mv_size: kb.count, mv_data: UnsafeMutableRawPointer(mutating: kb.baseAddress))
                var v = MDB_val(mv_size: vb.count, mv_data: UnsafeMutableRawPointer(mutating: vb.baseAddress))
                try check(mdb_cursor_put(handle, &k, &v, 0))
                txn.didWrite(key: kb.count, value: vb.count)
            }
        }
    }

    /// Deletes `key` and returns what `body` made of its value first (one search); nil if absent.
    public func remove<K: ContiguousKey, R>(_ key: K, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R? {
        guard let r = try withValue(key, body) else { return nil }
        try txn.willWrite()
        try check(mdb_cursor_del(handle, 0))
        return r
    }

    /// Deletes `key`; returns false if it was absent.
    @discardableResult
    public func delete<K: ContiguousKey>(_ key: K) throws -> Bool {
        guard try withValue(key, { _ in true }) != nil else { return false }
        try txn.willWrite()
        try check(mdb_cursor_del(handle, 0))
        return true
    }
}

extension Transaction {
    /// Calls `body` with a cursor on `table`, closed when `body` returns.
    public func withCursor<R>(_ table: Table, _ body: (borrowing Cursor) throws -> R) throws -> R {
        var cur: OpaquePointer?
        try check(mdb_cursor_open(try liveHandle(), table.dbi, &cur))
        defer { mdb_cursor_close(cur) }
        return try body(Cursor(handle: cur!, txn: self))
    }
}
