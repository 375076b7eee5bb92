import DatanetObjects
import Foundation

/// A chain of bounded write transactions for long ingests: each commits (durably) once about
/// `dirtyLimit` bytes are written or `timeLimit` has passed, so memory stays flat, other writers
/// get the lock between batches, and a crash loses at most the open batch.
///
/// The map is grown between batches, never inside one, so MDB_MAP_FULL cannot strike mid-batch
/// and no batch needs replaying.
final class WriteBatch {
    let env: Environment
    let dirtyLimit: Int
    let timeLimit: Duration
    private var txn: Transaction?
    private var opened = ContinuousClock.now
    /// Batches committed so far.
    private(set) var commits = 0
    /// Transaction id of the last batch committed (0 before the first).
    private(set) var lastCommittedID = 0

    init(env: Environment, dirtyLimit: Int = 32 << 20, timeLimit: Duration = .milliseconds(250)) {
        self.env = env
        self.dirtyLimit = dirtyLimit
        self.timeLimit = timeLimit
    }

    /// The open transaction, beginning one (after making room in the map) if needed.
    func current(extraRoom: Int = 0) throws -> Transaction {
        if let txn { return txn }
        let (pageSize, lastPage, mapSize) = try env.usage()
        let need = (lastPage + 1) * pageSize + 3 * dirtyLimit + extraRoom + (16 << 20)
        if need > mapSize { try env.growMap(atLeast: need) }
        let t = try env.beginWrite()
        txn = t
        opened = .now
        return t
    }

    /// Commits if the batch has reached its size or age bound.
    func commitIfDue() throws {
        guard let txn else { return }
        if txn.dirtyBytes >= dirtyLimit || ContinuousClock.now - opened >= timeLimit { try commit() }
    }

    /// Commits the open batch, if any.
    func commit() throws {
        guard let t = txn else { return }
        txn = nil
        let id = t.id
        try t.commit()
        commits += 1
        lastCommittedID = id
        env.dropMappedPages()
    }

    /// Drops the open batch.
    func abort() {
        txn?.abort()
        txn = nil
    }
}
