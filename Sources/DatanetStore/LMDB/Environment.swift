import CLMDB
import DatanetObjects
import Foundation
import Glibc

/// An LMDB environment: one data file and its lock file in a directory.
///
/// Every `mdb_*` call of the project is in this file or `Transaction.swift`. The map is reserved
/// large (it is sparse on Linux, so it costs nothing) and grows on MDB_MAP_FULL; a size grown by
/// another process is adopted on MDB_MAP_RESIZED. Readers left by dead processes are cleared at
/// open. Never opened with MDB_NOSYNC or MDB_WRITEMAP: every commit is durable.
public final class Environment: @unchecked Sendable {
    let handle: OpaquePointer
    /// The directory holding `data.mdb` and `lock.mdb`.
    public let directory: String
    private var cachedMapping: (size: Int, start: UInt, length: Int)?
    #if DATANET_FAULTS
    /// Debug builds only: fails a chosen write or commit (fault-injection tests).
    public var faults: FaultPlan?
    #endif

    /// Opens (creating the files if needed) the environment in `directory`, which must exist.
    ///
    /// - Parameters:
    ///   - mapSize: bytes of address space to reserve; a larger size already recorded in the file wins.
    ///   - maxTables: how many named tables may be opened.
    /// - Throws: `LMDBError` (`.invalid` or `.versionMismatch` for a file that is not ours; errno
    ///   codes such as EACCES for an unreadable directory).
    /// The corresponding LMDB calls are `mdb_env_create`, `mdb_env_open` and `mdb_reader_check`.
    public init(directory: String, mapSize: Int, maxTables: UInt32 = 256) throws {
        var env: OpaquePointer?
        try check(mdb_env_create(&env))
        handle = env!
        self.directory = directory
        do {
            try check(mdb_env_set_maxdbs(handle, maxTables))
            try check(mdb_env_set_mapsize(handle, mapSize))
            // One reader slot per read transaction open at once, in all processes: `serve`
            // runs up to 1,024 sessions, and a listing holds a read per worker. LMDB's default
            // of 126 would refuse readers under load; a lock file made smaller by an older
            // build is used at its size until every process has closed it.
            try check(mdb_env_set_maxreaders(handle, Self.readerSlots))
            // MDB_NOTLS: read transactions are not tied to a thread's slot, so a reader may be
            // handed to a worker thread; we still never share one between threads at once.
            try check(mdb_env_open(handle, directory, UInt32(MDB_NOTLS | MDB_NORDAHEAD), 0o600))
        } catch {
            mdb_env_close(handle)
            throw error
        }
        // Frees reader slots left by processes that died holding a read transaction.
        var dead: Int32 = 0
        mdb_reader_check(handle, &dead)
    }

    deinit { mdb_env_close(handle) }

    /// Reader slots an environment asks for when it creates the lock file.
    public static let readerSlots: UInt32 = 4096

    /// Reader slots the lock file in use holds.
    public var maxReaders: UInt32 {
        var n: UInt32 = 0
        mdb_env_get_maxreaders(handle, &n)
        return n
    }

    /// The current map size in bytes.
    public var mapSize: Int {
        var info = MDB_envinfo()
        mdb_env_info(handle, &info)
        return info.me_mapsize
    }

    /// Page size, last used page number and the number of pages on the freelist.
    public func usage() throws -> (pageSize: Int, lastPage: Int, mapSize: Int) {
        var info = MDB_envinfo()
        var st = MDB_stat()
        try check(mdb_env_info(handle, &info))
        try check(mdb_env_stat(handle, &st))
        return (Int(st.ms_psize), info.me_last_pgno, info.me_mapsize)
    }

    /// Drops this process's page-table entries for the map (MADV_DONTNEED on a read-only shared
    /// file mapping: the data stays in the page cache and faults back in when read).
    ///
    /// Why: a read through the map faults in far more than the page read — the kernel maps the
    /// neighbouring pages of the page-cache folio too (measured here: 64 KiB around each B-tree
    /// lookup, up to megabytes per fault when reading chunks in order). During an ingest the
    /// neighbours are the chunks just written, so resident memory would grow with the data
    /// (420 MiB for a 1 GiB add). Long operations call this every few MiB to keep it flat.
    /// LMDB does not expose its map's address (`me_mapaddr` is set only with MDB_FIXEDMAP), so
    /// the mapping of `data.mdb` is looked up in /proc/self/maps, again whenever the map size
    /// changes (a resize moves it).
    public func dropMappedPages() {
        let size = mapSize
        if cachedMapping == nil || cachedMapping!.size != size { cachedMapping = findMapping(size: size) }
        guard let m = cachedMapping, let base = UnsafeMutableRawPointer(bitPattern: m.start) else { return }
        // Only the used part: the kernel walks the page tables of the whole range given.
        var info = MDB_envinfo()
        var st = MDB_stat()
        let used = mdb_env_info(handle, &info) == 0 && mdb_env_stat(handle, &st) == 0
            ? (info.me_last_pgno + 1) * Int(st.ms_psize) + (64 << 20) : m.length
        madvise(base, min(m.length, used), MADV_DONTNEED)
    }

    private func findMapping(size: Int) -> (size: Int, start: UInt, length: Int)? {
        guard let maps = try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8) else { return nil }
        let dataFile = URL(fileURLWithPath: directory + "/data.mdb").standardizedFileURL.resolvingSymlinksInPath().path
        for line in maps.split(separator: "\n") where line.hasSuffix(" " + dataFile) {
            let range = line.prefix(while: { $0 != " " }).split(separator: "-")
            guard range.count == 2, let lo = UInt(range[0], radix: 16), let hi = UInt(range[1], radix: 16) else { continue }
            return (size, lo, Int(hi - lo))
        }
        return nil
    }

    /// Pages on LMDB's freelist (free for reuse by later writes), summed over its records.
    public func freePages() throws -> Int {
        try read { txn in
            var total = 0
            // The freelist is database 0; each value is an ID list whose first word is its count.
            try txn.scan(Table(dbi: 0, name: "free")) { _, v in
                if v.count >= MemoryLayout<Int>.size { total += v.loadUnaligned(as: Int.self) }
                return true
            }
            return total
        }
    }

    /// Doubles the map (at least to `atLeast` bytes). Requires: no transaction open in this process.
    /// The corresponding LMDB call is `mdb_env_set_mapsize`.
    public func growMap(atLeast: Int = 0) throws {
        try check(mdb_env_set_mapsize(handle, max(mapSize * 2, atLeast)))
    }

    /// Adopts a map size grown by another process. Requires: no transaction open in this process.
    func adoptMapSize() throws {
        try check(mdb_env_set_mapsize(handle, 0))
    }

    /// Begins a read-only transaction (a consistent snapshot).
    public func beginRead() throws -> Transaction {
        try Transaction(env: self, readOnly: true)
    }

    /// Begins the write transaction. Only one exists at a time per environment, across processes.
    public func beginWrite() throws -> Transaction {
        try Transaction(env: self, readOnly: false)
    }

    /// Runs `body` in a read transaction and ends it; bytes borrowed inside must not escape.
    public func read<R>(_ body: (Transaction) throws -> R) throws -> R {
        let txn = try beginRead()
        defer { txn.abort() }
        return try body(txn)
    }

    /// Runs `body` in a write transaction and commits it durably; aborts if `body` throws.
    ///
    /// On MDB_MAP_FULL the map is grown and `body` runs again from the start in a new
    /// transaction, so `body` must only touch the database.
    public func write<R>(_ body: (Transaction) throws -> R) throws -> R {
        while true {
            do { return try writeOnce(body) } catch LMDBError.mapFull { continue } // the map has grown
        }
    }

    /// Runs `body` once in a write transaction and commits it durably; aborts if `body` throws.
    /// For a body that consumes input and so cannot run again: on MDB_MAP_FULL the map is
    /// grown and the error rethrown, for the caller to start over.
    public func writeOnce<R>(_ body: (Transaction) throws -> R) throws -> R {
        let txn = try beginWrite()
        do {
            let r = try body(txn)
            try txn.commit()
            return r
        } catch LMDBError.mapFull {
            txn.abort()
            try growMap()
            throw LMDBError.mapFull
        } catch {
            txn.abort()
            throw error
        }
    }

    /// Opens named tables in one transaction (a write one only when `create`); the handles stay
    /// valid for the environment's life. Without `create`, a missing table throws `.notFound`.
    /// The corresponding LMDB call is `mdb_dbi_open`.
    public func openTables(_ names: [String], create: Bool) throws -> [Table] {
        let txn = create ? try beginWrite() : try beginRead()
        defer { txn.abort() }
        var tables = [Table]()
        for name in names {
            var dbi: MDB_dbi = 0
            try check(mdb_dbi_open(try txn.liveHandle(), name, create ? UInt32(MDB_CREATE) : 0, &dbi))
            tables.append(Table(dbi: dbi, name: name))
        }
        // Committing (even a read transaction) is what keeps new handles open.
        try txn.commit()
        return tables
    }

    /// Writes a compacted copy of the environment into the empty directory `path`.
    /// The corresponding LMDB call is `mdb_env_copy2` with MDB_CP_COMPACT.
    public func copyCompacted(to path: String) throws {
        try check(mdb_env_copy2(handle, path, UInt32(MDB_CP_COMPACT)))
    }
}

/// A named table (LMDB database handle); valid for the life of its environment.
public struct Table: Sendable {
    let dbi: MDB_dbi
    /// The table's name.
    public let name: String
}

/// Turns an `mdb_*` return code into a thrown `LMDBError`.
@inline(__always)
func check(_ rc: Int32) throws {
    if rc != 0 { throw LMDBError(rawValue: rc) }
}
