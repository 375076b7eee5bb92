import DatanetCrypto
import DatanetLedger
import DatanetObjects
import DatanetRecords
import DatanetStore
import Glibc

/// Moves a Datanet's leaves and records over a connection as a run of bundles (schema/bundle.md),
/// each as `size`, `part` messages and an `end`, through a temporary file in the store's
/// directory: a sender exports each to it then streams it, a receiver writes the parts to it
/// and imports each once complete, so what is imported is exactly what bundle import checks
/// (the one apply path). Leaves travel in batches proven against a checkpoint, each committed
/// once proven and replayed: nothing unverified is committed, and a cut transfer keeps the
/// batches committed before it.
public enum BundleTransfer {
    /// The most a received bundle may hold unless a command says otherwise (schema/protocol.md).
    public static let defaultMaximum: UInt64 = 64 << 30

    /// A temporary file in `directory` open for reading and writing, unlinked at once (so
    /// nothing is left behind however the process ends) and closed when `body` returns.
    static func withTemporaryFile<R>(in directory: String, _ body: (Int32) throws -> R) throws -> R {
        let fd = try temporaryFile(in: directory)
        defer { close(fd) }
        return try body(fd)
    }

    /// A temporary file in `directory` open for reading and writing, unlinked at once; the
    /// caller closes it.
    static func temporaryFile(in directory: String) throws -> Int32 {
        for _ in 0..<16 {
            let path = directory + "/sync-bundle.tmp-\(getpid())-\(String(UInt64.random(in: 0 ... .max), radix: 36))"
            let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            if fd >= 0 { unlink(path); return fd }
            if errno != EEXIST { throw StoreError.io(path: path, operation: "create", errno: errno) }
        }
        throw StoreError.io(path: directory, operation: "create a temporary file in", errno: EEXIST)
    }

    /// Sends `d` from `since` as a run of bundles (schema/protocol.md "Leaves in proven
    /// batches"): the leaves up to the newest checkpoint in aligned batches, each announced by
    /// a `batch` message with its subtree proof, then the last bundle (leaves the log gained
    /// meanwhile, checkpoints, the pending records `selection` includes, and `end` telling
    /// `mine`). With `signer`, one bundle of the pending records that key signed and nothing
    /// else (a contributor who may not read `d`). With `inlineContent`, a batch whose intakes'
    /// content passes that many bytes goes records-only, its content left for the receiver to
    /// fetch (protocol version 4). Returns the bytes of bundle sent.
    static func sendRun(_ ledger: Ledger, _ d: DatanetID, since: UInt64, recordsOnly: Bool, selection: PendingSelection, signer: PublicKey? = nil,
                        telling mine: [PendingMark] = [], inlineContent: UInt64? = nil, request: UInt64, over c: PeerConnection,
                        progress: ((_ done: UInt64, _ total: UInt64) -> Void)? = nil) throws -> UInt64 {
        var sent: UInt64 = 0
        var last = since
        if signer == nil, let note = try ledger.reader.latestCheckpoint(d), note.utf8.count <= SyncMessage.maximumNote,
           let size = try? Checkpoint.unverified(note: note).size, size > since {
            for (start, end) in BatchProof.batches(from: since, to: size) {
                let proof = try ledger.subtreeProof(d, start: start, end: end, size: size)
                let consistency = start == since && since > 0 ? try ledger.consistencyProof(d, from: since, to: size) : []
                try sendOrReason(SyncMessage(request, .batch(start: start, end: end, checkpoint: note, proof: proof, consistency: consistency)), over: c)
                let base = sent
                var withoutContent = recordsOnly
                if !recordsOnly, let limit = inlineContent { withoutContent = try ledger.contentPasses(limit, d, from: start, to: end) }
                sent += try send(ledger, d, since: start, end: end, recordsOnly: withoutContent, request: request, over: c) {
                    progress?(base + $0, base + $1)
                }
            }
            last = size
        }
        let base = sent
        return sent + (try send(ledger, d, since: last, recordsOnly: recordsOnly, selection: selection, signer: signer, telling: mine, request: request, over: c) {
            progress?(base + $0, base + $1)
        })
    }

    /// Exports `d` from `since` (to `end`, for a batch) into a temporary file, with the pending
    /// records `selection` includes (`exportBundle`), and sends it in parts, then `end` listing
    /// `mine`. Returns the bundle's length.
    static func send(_ ledger: Ledger, _ d: DatanetID, since: UInt64, end: UInt64? = nil, recordsOnly: Bool, selection: PendingSelection? = nil,
                     signer: PublicKey? = nil, telling mine: [PendingMark] = [], request: UInt64, over c: PeerConnection,
                     progress: ((_ done: UInt64, _ total: UInt64) -> Void)? = nil) throws -> UInt64 {
        try withTemporaryFile(in: ledger.store.directory) { fd in
            _ = try ledger.exportBundle(d, since: since, end: end, recordsOnly: recordsOnly, selection: selection, signer: signer, to: fd)
            let length = UInt64(lseek(fd, 0, SEEK_END))
            guard lseek(fd, 0, SEEK_SET) == 0 else { throw StoreError.io(path: "sync bundle", operation: "rewind", errno: errno) }
            var buffer = [UInt8](repeating: 0, count: SyncMessage.maximumPart)
            var sent: UInt64 = 0
            try sendOrReason(SyncMessage(request, .size(length)), over: c)
            while sent < length {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                guard n > 0 else { throw StoreError.io(path: "sync bundle", operation: "read", errno: n < 0 ? errno : EIO) }
                try sendOrReason(SyncMessage(request, .part(Array(buffer[0..<n]))), over: c)
                sent += UInt64(n)
                progress?(sent, length)
            }
            try sendOrReason(SyncMessage(request, .end(length, held: mine)), over: c)
            return length
        }
    }

    /// Sends `m`; the receiver may refuse mid-way (a size past its bound, a batch it cannot
    /// use) and close: its reason, already on the way, is read and thrown instead of a broken pipe.
    static func sendOrReason(_ m: SyncMessage, over c: PeerConnection) throws {
        func refusal() throws {
            guard let answer = try? SyncMessage(decoding: try c.receive()) else { return }
            if case .error(let code, let message) = answer.body { throw SyncError.refused(code: code, message: message) }
            throw SyncError.unexpected("a \(answer.typeName) message arrived while a bundle was being sent")
        }
        do {
            if c.socket.isReadable { try refusal() }
            try c.send(m.encoded)
        } catch let e as SocketError {
            try refusal()
            throw e
        }
    }

    /// Receives the run of bundles of `d` answering request `request` (`sendRun`) and imports
    /// each as it arrives (`Ledger.importBundles`: batches are committed once proven and
    /// replayed), the next bundles arriving meanwhile (`RunReader`); returns the summary, the
    /// bytes received and the pending records the sender said it holds. `maximum` bounds the
    /// bytes of the whole run. `ended` tells, when it throws, whether the run had arrived to its
    /// end (the connection is then still in step). `refuse` is told an import's refusal while
    /// the connection is still whole, before the reader's side of it is shut.
    static func receiveRun(into ledger: Ledger, _ d: DatanetID, request: UInt64, over c: PeerConnection, maximum: UInt64 = defaultMaximum,
                           commitEvery: Duration = .milliseconds(500), onlyBy: PublicKey? = nil, ended: inout Bool, refuse: ((any Error) -> Void)? = nil,
                           progress: (@Sendable (_ done: UInt64, _ total: UInt64) -> Void)? = nil) throws -> (BundleSummary, UInt64, [PendingMark]) {
        let reader = try RunReader(c, request: request, maximum: maximum, in: ledger.store.directory, progress: progress)
        defer { reader.stop() }
        do {
            let summary = try ledger.importBundles(d, commitEvery: commitEvery, onlyBy: onlyBy, next: reader.next, arrives: reader.arrives(within:))
            let outcome = reader.outcome
            ended = outcome.reachedEnd
            return (summary, outcome.received, outcome.held)
        } catch {
            if !(error is SyncError) && !(error is SocketError) { refuse?(error) }
            reader.stop()
            ended = reader.outcome.reachedEnd
            throw error
        }
    }

    /// Receives one bundle's parts up to its `end` into `fd`: its `size` first (unless already
    /// read: `stated`), refused past `maximum` before a byte of it is written; the parts may not
    /// pass what was stated. Returns its length and the records `end` says the sender holds.
    static func receiveParts(into fd: Int32, request: UInt64, over c: PeerConnection, stated: UInt64? = nil, maximum: UInt64,
                             progress: (_ done: UInt64, _ total: UInt64) -> Void) throws -> (length: UInt64, held: [PendingMark]) {
        let total: UInt64
        if let stated {
            total = stated
        } else {
            let first = try SyncMessage(decoding: try c.receive())
            if case .error(let code, let message) = first.body { throw SyncError.refused(code: code, message: message) }
            guard first.request == request, case .size(let n) = first.body else {
                throw SyncError.unexpected("a bundle began with a \(first.typeName) message, not its size")
            }
            total = n
        }
        guard total <= maximum else { throw SyncError.unexpected("the bundle of \(total) bytes passes the bound of \(maximum) bytes left") }
        var received: UInt64 = 0
        while true {
            let m = try SyncMessage(decoding: try c.receive())
            if case .error(let code, let message) = m.body { throw SyncError.refused(code: code, message: message) }
            guard m.request == request else { throw SyncError.unexpected("a message of request \(m.request) arrived inside the bundle of request \(request)") }
            switch m.body {
            case .part(let bytes):
                received += UInt64(bytes.count)
                guard received <= total else { throw SyncError.unexpected("the bundle's parts pass the \(total) bytes it stated") }
                try bytes.withUnsafeBytes { buf in
                    var at = 0
                    while at < buf.count {
                        let n = write(fd, buf.baseAddress! + at, buf.count - at)
                        guard n > 0 else { throw StoreError.io(path: "sync bundle", operation: "write", errno: errno) }
                        at += n
                    }
                }
                progress(received, total)
            case .end(let length, let held):
                guard length == received, length == total else {
                    throw SyncError.unexpected("the bundle ended at \(received) bytes but says it has \(length) (and stated \(total))")
                }
                return (length, held)
            default:
                throw SyncError.unexpected("a \(m.typeName) message arrived inside a bundle")
            }
        }
    }
}

extension SyncMessage {
    /// The message type's name, as schema/protocol.md spells it.
    var typeName: String {
        switch body {
        case .hello: "hello"
        case .list: "list"
        case .datanets: "datanets"
        case .pull: "pull"
        case .push: "push"
        case .ready: "ready"
        case .size: "size"
        case .fetch: "fetch"
        case .objects: "objects"
        case .part: "part"
        case .end: "end"
        case .pushed: "pushed"
        case .error: "error"
        case .bye: "bye"
        case .batch: "batch"
        case .reconcile: "reconcile"
        }
    }
}
