import DatanetCrypto
import DatanetLedger
import DatanetObjects
import DatanetRecords
import DatanetStore
import Dispatch
import Foundation
import Glibc
import Synchronization

/// Receives a run of bundles (`BundleTransfer.sendRun`) on a thread of its own, each into one
/// of three temporary files, so the next bundles arrive while the importer replays and
/// commits the one before: the connection and the sender never wait for the store. The
/// importer takes bundles in order with `next`; a file is written again only once the
/// importer has asked for the bundle after it.
final class RunReader: @unchecked Sendable {
    private let connection: PeerConnection
    private let request: UInt64
    private let maximum: UInt64
    private let progress: (@Sendable (_ done: UInt64, _ total: UInt64) -> Void)?
    private var files = [Int32]()
    private let free = DispatchSemaphore(value: 3), ready = DispatchSemaphore(value: 0)
    /// A received bundle or the error that ended the run (errors are handed over, never shared).
    private struct Delivered: @unchecked Sendable { let result: Result<(Int32, IncomingBundle), any Error> }
    private struct Shared {
        var queue = [Delivered]()
        var stopping = false
        /// Bytes of bundle received, and the pending records the last bundle's `end` listed.
        var received: UInt64 = 0
        var held = [PendingMark]()
        var reachedEnd = false
        /// Whether the reader has handed over its last result (the run's end or its error).
        var done = false
        /// The leaves the batches cover: the first, the checkpoint's size, and how far they have come.
        var leaves: (first: UInt64, last: UInt64, through: UInt64)?
    }
    private let shared = Mutex(Shared())
    /// Signalled once when the reader's thread ends.
    private let exited = DispatchSemaphore(value: 0)
    private var handedOut = false

    init(_ c: PeerConnection, request: UInt64, maximum: UInt64, in directory: String,
         progress: (@Sendable (_ done: UInt64, _ total: UInt64) -> Void)?) throws {
        (connection, self.request, self.maximum, self.progress) = (c, request, maximum, progress)
        for _ in 0..<3 { files.append(try BundleTransfer.temporaryFile(in: directory)) }
        // A thread of its own, not a pooled worker: it blocks on the peer for as long as the
        // socket's timeout allows, and the import's own workers must not wait behind it.
        let thread = Thread { [self] in
            self.run()
            self.exited.signal()
        }
        thread.start()
    }

    deinit { for fd in files { close(fd) } }

    /// Bytes received so far, the records the last `end` said the sender holds, and whether
    /// the run arrived to its end.
    var outcome: (received: UInt64, held: [PendingMark], reachedEnd: Bool) {
        shared.withLock { ($0.received, $0.held, $0.reachedEnd) }
    }

    /// The next bundle, its file open at its start; the file of the one before is free again.
    func next() throws -> (fd: Int32, bundle: IncomingBundle) {
        release()
        ready.wait()
        handedOut = true
        return try shared.withLock { $0.queue.removeFirst() }.result.get()
    }

    /// Whether the next bundle (or the error that ends the run) is here within `limit`,
    /// without taking it; the file of the one before is free again.
    func arrives(within limit: Duration) -> Bool {
        release()
        let (seconds, attoseconds) = limit.components
        let nanoseconds = UInt64(max(0, seconds)) * 1_000_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000)
        guard ready.wait(timeout: .now() + .nanoseconds(Int(min(nanoseconds, UInt64(Int.max))))) == .success else { return false }
        ready.signal() // put back for `next`
        return true
    }

    private func release() {
        if handedOut { free.signal() }
        handedOut = false
    }

    /// Stops the reader (ending the connection's reading if it is still mid-run) and waits for it.
    func stop() {
        let running = shared.withLock { s -> Bool in
            s.stopping = true
            return !s.done
        }
        free.signal()
        if running { shutdown(connection.socket.fd, Int32(SHUT_RD)) }
        if !joined {
            exited.wait()
            joined = true
        }
    }

    private var joined = false

    private func run() {
        var slot = 0
        while true {
            free.wait()
            if shared.withLock({ $0.stopping }) { return }
            let fd = files[slot]
            slot = (slot + 1) % files.count
            let result = Delivered(result: Result { try receive(into: fd) })
            let last: Bool, failed: Bool
            if case .success((_, .last)) = result.result { last = true } else { last = false }
            if case .failure = result.result { failed = true } else { failed = false }
            shared.withLock { s in
                s.queue.append(result)
                if last { s.reachedEnd = true }
                if last || failed { s.done = true }
            }
            ready.signal()
            if last || failed { return }
        }
    }

    /// Receives the next bundle of the run into `fd`.
    private func receive(into fd: Int32) throws -> (Int32, IncomingBundle) {
        guard ftruncate(fd, 0) == 0, lseek(fd, 0, SEEK_SET) == 0 else { throw StoreError.io(path: "sync bundle", operation: "empty", errno: errno) }
        let m = try SyncMessage(decoding: try connection.receive())
        if case .error(let code, let message) = m.body { throw SyncError.refused(code: code, message: message) }
        guard m.request == request else { throw SyncError.unexpected("a message of request \(m.request) arrived in the answer to request \(request)") }
        if case .batch(let start, let end, let note, _, _) = m.body {
            let size = (try? Checkpoint.unverified(note: note).size) ?? end
            shared.withLock { $0.leaves = ($0.leaves?.first ?? start, max(size, end), end) }
        }
        let (base, leaves) = shared.withLock { ($0.received, $0.leaves) }
        // Bytes so far, scaled by the share of the leaves they carried: the run's size, estimated.
        let report = { (done: UInt64, total: UInt64) in
            guard let l = leaves, l.through > l.first else { return self.progress?(base + done, base + total) ?? () }
            // (The note's size is the peer's word, unchecked here: the estimate is bounded.)
            let whole = min(Double(base + total) * Double(l.last - l.first) / Double(l.through - l.first), Double(1 << 62))
            self.progress?(base + done, max(base + total, UInt64(whole)))
        }
        let bundle: IncomingBundle
        let length: UInt64, held: [PendingMark]
        switch m.body {
        case .batch(let start, let end, let note, let proof, let consistency):
            (length, held) = try BundleTransfer.receiveParts(into: fd, request: request, over: connection, maximum: maximum - base, progress: report)
            bundle = .batch(BatchProof(start: start, end: end, note: note, path: proof, consistency: consistency))
        case .size(let total):
            (length, held) = try BundleTransfer.receiveParts(into: fd, request: request, over: connection, stated: total, maximum: maximum - base, progress: report)
            bundle = .last
        default:
            throw SyncError.unexpected("a \(m.typeName) message arrived where a batch or a bundle was due")
        }
        shared.withLock { s in
            s.received += length
            if case .last = bundle { s.held = held }
        }
        guard lseek(fd, 0, SEEK_SET) == 0 else { throw StoreError.io(path: "sync bundle", operation: "rewind", errno: errno) }
        return (fd, bundle)
    }
}
