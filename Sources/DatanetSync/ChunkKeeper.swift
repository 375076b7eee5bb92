import DatanetCrypto
import DatanetObjects
import DatanetStore
import Dispatch
import Synchronization

/// Stores a fetch's chunks on a thread of its own, a durable transaction a batch, so the fetch
/// goes on receiving and hashing while the disk catches up. One batch is written at a time;
/// while it is, the fetch gathers the next, so the slower the disk, the larger the batches and
/// the fewer the commits.
final class ChunkKeeper: Sendable {
    private let store: ObjectStore
    private let queue = DispatchQueue(label: "datanet.fetch.keep")
    /// Signalled while no batch is being written.
    private let free = DispatchSemaphore(value: 1)
    private let writing = Mutex(false)
    private let failure = Mutex<(any Error)?>(nil)

    init(_ store: ObjectStore) { self.store = store }

    /// Whether no batch is being written: one handed over now is written at once.
    var isIdle: Bool { !writing.withLock { $0 } }

    /// Hands `batch` (chunks already checked against their ids) to the writing thread, first
    /// waiting for the batch it is writing; throws what an earlier batch failed with.
    func keep(_ batch: [(ObjectKind, ObjectID, [UInt8])]) throws {
        guard !batch.isEmpty else { return }
        free.wait()
        if let e = failure.withLock({ $0 }) {
            free.signal()
            throw e
        }
        writing.withLock { $0 = true }
        queue.async { [self] in
            do { try store.keep(batch) } catch { failure.withLock { $0 = $0 ?? error } }
            writing.withLock { $0 = false }
            free.signal()
        }
    }

    /// Waits until every batch handed over is stored; throws what one failed with.
    func finish() throws {
        free.wait()
        free.signal()
        if let e = failure.withLock({ $0 }) { throw e }
    }
}
