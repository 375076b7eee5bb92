import DatanetCrypto
import DatanetLedger
import DatanetObjects
import DatanetRecords
import DatanetStore
import Glibc

/// Moves a bundle (schema/bundle.md) over a connection as `part` messages and an `end` that
/// states its length, through a temporary file in the store's directory: a sender exports to
/// it then streams it, a receiver writes the parts to it and imports it once complete, so what
/// is imported is exactly what bundle import checks (the one apply path; nothing unverified
/// is committed, and a cut transfer leaves the store as it was).
public enum BundleTransfer {
    /// The most a received bundle may hold unless a command says otherwise (schema/protocol.md).
    public static let defaultMaximum: UInt64 = 64 << 30

    /// A temporary file in `directory` open for reading and writing, unlinked at once (so
    /// nothing is left behind however the process ends) and closed when `body` returns.
    static func withTemporaryFile<R>(in directory: String, _ body: (Int32) throws -> R) throws -> R {
        var fd: Int32 = -1
        for _ in 0..<16 where fd < 0 {
            let path = directory + "/sync-bundle.tmp-\(getpid())-\(String(UInt64.random(in: 0 ... .max), radix: 36))"
            fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            if fd >= 0 { unlink(path) } else if errno != EEXIST { throw StoreError.io(path: path, operation: "create", errno: errno) }
        }
        guard fd >= 0 else { throw StoreError.io(path: directory, operation: "create a temporary file in", errno: EEXIST) }
        defer { close(fd) }
        return try body(fd)
    }

    /// Exports `d` from `since` into a temporary file, leaving out the pending records the
    /// receiver holds (`held`), and sends it in parts, then `end` listing `mine` (this side's
    /// pending records, when the receiver is to learn them). Returns the bundle's length.
    static func send(_ ledger: Ledger, _ d: DatanetID, since: UInt64, recordsOnly: Bool, leavingOut held: [PendingMark] = [],
                     telling mine: [PendingMark] = [], request: UInt64, over c: PeerConnection,
                     progress: ((_ done: UInt64, _ total: UInt64) -> Void)? = nil) throws -> UInt64 {
        try withTemporaryFile(in: ledger.store.directory) { fd in
            _ = try ledger.exportBundle(d, since: since, recordsOnly: recordsOnly, leavingOut: Set(held), to: fd)
            let length = UInt64(lseek(fd, 0, SEEK_END))
            guard lseek(fd, 0, SEEK_SET) == 0 else { throw StoreError.io(path: "sync bundle", operation: "rewind", errno: errno) }
            var buffer = [UInt8](repeating: 0, count: SyncMessage.maximumPart)
            var sent: UInt64 = 0
            // The receiver may refuse mid-way (a size past its bound) and close: its reason,
            // already on the way, is read and reported instead of a broken pipe.
            func sendOrReason(_ m: SyncMessage) throws {
                do {
                    if c.socket.isReadable { try refusal() }
                    try c.send(m.encoded)
                } catch let e as SocketError {
                    try refusal()
                    throw e
                }
            }
            func refusal() throws {
                guard let answer = try? SyncMessage(decoding: try c.receive()) else { return }
                if case .error(let code, let message) = answer.body { throw SyncError.refused(code: code, message: message) }
                throw SyncError.unexpected("a \(answer.typeName) message arrived while a bundle was being sent")
            }
            try sendOrReason(SyncMessage(request, .size(length)))
            while sent < length {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                guard n > 0 else { throw StoreError.io(path: "sync bundle", operation: "read", errno: n < 0 ? errno : EIO) }
                try sendOrReason(SyncMessage(request, .part(Array(buffer[0..<n]))))
                sent += UInt64(n)
                progress?(sent, length)
            }
            try sendOrReason(SyncMessage(request, .end(length, held: mine)))
            return length
        }
    }

    /// Receives parts of request `request` up to `end`, then imports them; returns the import's
    /// summary, the bundle's length and the pending records the sender said it holds.
    /// `maximum` bounds the bundle.
    static func receive(into ledger: Ledger, request: UInt64, over c: PeerConnection, maximum: UInt64 = defaultMaximum,
                        progress: ((_ done: UInt64, _ total: UInt64) -> Void)? = nil) throws -> (BundleSummary, UInt64, [PendingMark]) {
        try withTemporaryFile(in: ledger.store.directory) { fd in
            var received: UInt64 = 0
            // The sender states the length first: past the bound the bundle is refused before a
            // byte of it is written, and the parts may not pass what was stated.
            let first = try SyncMessage(decoding: try c.receive())
            if case .error(let code, let message) = first.body { throw SyncError.refused(code: code, message: message) }
            guard first.request == request, case .size(let total) = first.body else {
                throw SyncError.unexpected("a bundle began with a \(first.typeName) message, not its size")
            }
            guard total <= maximum else { throw SyncError.unexpected("the bundle of \(total) bytes passes the bound of \(maximum)") }
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
                    progress?(received, total)
                case .end(let length, let held):
                    guard length == received, length == total else {
                        throw SyncError.unexpected("the bundle ended at \(received) bytes but says it has \(length) (and stated \(total))")
                    }
                    guard lseek(fd, 0, SEEK_SET) == 0 else { throw StoreError.io(path: "sync bundle", operation: "rewind", errno: errno) }
                    return (try ledger.importBundle(from: fd), received, held)
                default:
                    throw SyncError.unexpected("a \(m.typeName) message arrived inside a bundle")
                }
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
        }
    }
}
