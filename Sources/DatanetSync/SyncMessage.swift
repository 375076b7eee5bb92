import DatanetCBOR
import DatanetCrypto
import DatanetLedger
import DatanetObjects
import DatanetRecords

/// One message of the sync protocol (schema/protocol.md): a deterministic-CBOR map whose key 0
/// is the message type and key 1 the request id it belongs to, fields from key 2 on. Decoding
/// is strict: a non-canonical map, an unknown type or field, a value of the wrong type or past
/// its bound is refused with a message naming it, before anything acts on the message.
public struct SyncMessage: Equatable, Sendable {
    /// Protocol versions this build speaks: 3 (a `fetch` may name several contributions;
    /// version 2 named one, and version 1 listed pending records by marks, its `pull` without
    /// fields 6 and 7) and 4 (the same messages; a pull's batches whose content is large may
    /// come records-only, that content then fetched).
    public static let versions: ClosedRange<UInt64> = 3...4
    /// Bounds every decoder checks (schema/protocol.md "Bounds").
    public static let maximumPart = 1 << 20, maximumDatanets = 10_000, maximumKinds = 64
    public static let maximumCode = 64, maximumText = 1024, maximumName = 256, maximumNote = 4096
    /// Pending records a side may list as held (`pull`, `ready`, `end`: those that gather signatures).
    public static let maximumMarks = 1_000_000
    /// Pending records one `pull` may ask for by id (more go in further pulls).
    public static let maximumWanted = 100_000
    /// The bytes of one Negentropy message in `reconcile` (a side's frame-size limit is below it).
    public static let maximumReconcile = 1 << 20
    /// Objects one `fetch` may ask for, and the bytes of objects one `objects` answer carries
    /// (one object larger than that goes alone, up to `maximumObject`).
    public static let maximumFetch = 256, maximumObjectsBytes = 32 << 20, maximumObject = 60 << 20
    /// Hashes in a batch's proof: at most two a level of a 64-bit tree.
    public static let maximumProof = 128

    /// An object named in a `fetch`: its kind and id.
    public struct ObjectRef: Hashable, Sendable {
        public var kind: ObjectKind, id: ObjectID
        public init(_ kind: ObjectKind, _ id: ObjectID) { (self.kind, self.id) = (kind, id) }
    }

    /// The objects a `fetch` asks for under one contribution's content.
    public struct FetchPart: Equatable, Sendable {
        public var contribution: RecordID, wanted: [ObjectRef]
        public init(_ contribution: RecordID, _ wanted: [ObjectRef]) { (self.contribution, self.wanted) = (contribution, wanted) }
    }

    /// An object sent in answer: its kind and stored bytes (the receiver derives its id).
    public struct SentObject: Equatable, Sendable {
        public var kind: ObjectKind, bytes: [UInt8]
        public init(_ kind: ObjectKind, _ bytes: [UInt8]) { (self.kind, self.bytes) = (kind, bytes) }
    }

    /// A Datanet as `list` shows it to a peer allowed to read it, with the newest checkpoint
    /// note the server holds ("" when none): the peer checks it against its own log first.
    public struct Listed: Equatable, Sendable {
        public var id: DatanetID, name: String, size: UInt64, checkpoint: String
        public init(id: DatanetID, name: String, size: UInt64, checkpoint: String = "") {
            (self.id, self.name, self.size, self.checkpoint) = (id, name, size, checkpoint)
        }
    }

    public enum Body: Equatable, Sendable {
        /// Versions spoken (a range) and the leaf kinds this side can replay.
        case hello(versions: ClosedRange<UInt64>, kinds: [UInt64])
        /// Asks for the Datanets this peer may read.
        case list
        case datanets([Listed])
        /// Asks for a bundle of a Datanet's leaves from `since` on, the pending records named in
        /// `wanted` (what reconciliation found the asker lacks), those that gather signatures
        /// which the asker does not hold as `held` marks them (every pending record, with
        /// `allPending`: an asker that holds none) and, unless `recordsOnly`, the content they name.
        case pull(DatanetID, since: UInt64, recordsOnly: Bool, held: [PendingMark], wanted: [RecordID], allPending: Bool)
        /// Asks to send a bundle of this Datanet; the parts follow the peer's `ready`.
        case push(DatanetID)
        /// Accepts a push, marking the pending records that gather signatures this side holds
        /// (the pusher leaves out those it holds alike).
        case ready(held: [PendingMark])
        /// The length of the bundle whose parts follow (for progress; `end` must agree).
        case size(UInt64)
        /// A slice of a bundle in transit.
        case part([UInt8])
        /// The end of a bundle: its length in bytes, checked against the parts, and the marks of
        /// the records that gather signatures the sender holds pending in that Datanet (in a
        /// pull's answer: whether a push back has any to add; empty from a pusher).
        case end(UInt64, held: [PendingMark])
        /// What a pushed bundle brought: new leaves and pending records.
        case pushed(leaves: UInt64, records: UInt64)
        case error(code: String, message: String)
        case bye
        /// Asks for objects of the content of one or more contributions of a Datanet (at least
        /// one part; `maximumFetch` objects in all, none twice, no contribution twice).
        case fetch(DatanetID, parts: [FetchPart])
        /// Answers a fetch: objects sent, and those refused (not held, or not in that
        /// contribution's content). Any asked for in neither list is to be asked for again.
        case objects(sent: [SentObject], refused: [ObjectRef])
        /// Announces the bundle that follows as the batch of leaves [start, end), with the
        /// checkpoint note it is proven against and the subtree consistency proof.
        /// The first batch of a run past leaf 0 adds the consistency proof from `start`.
        case batch(start: UInt64, end: UInt64, checkpoint: String, proof: [Digest], consistency: [Digest])
        /// One Negentropy V1 message reconciling the pending records of a Datanet
        /// (schema/negentropy.md); the client's, and the server's answer to it.
        case reconcile(DatanetID, [UInt8])
    }

    public var request: UInt64
    public var body: Body

    public init(_ request: UInt64, _ body: Body) { (self.request, self.body) = (request, body) }

    var type: UInt64 {
        switch body {
        case .hello: 1
        case .list: 2
        case .datanets: 3
        case .pull: 4
        case .push: 5
        case .part: 6
        case .end: 7
        case .pushed: 8
        case .error: 9
        case .bye: 10
        case .ready: 11
        case .size: 12
        case .fetch: 13
        case .objects: 14
        case .batch: 15
        case .reconcile: 16
        }
    }

    public var encoded: [UInt8] {
        var b = BodyBuilder()
        b.set(0, .unsigned(type))
        b.set(1, .unsigned(request))
        switch body {
        case .hello(let v, let kinds):
            b.set(2, .unsigned(v.lowerBound)); b.set(3, .unsigned(v.upperBound)); b.set(4, .array(kinds.map { .unsigned($0) }))
        case .list, .bye:
            break
        case .ready(let held):
            b.set(2, Self.marks(held))
        case .datanets(let list):
            b.set(2, .array(list.map { .array([.bytes($0.id.bytes), .string($0.name), .unsigned($0.size), .string($0.checkpoint)]) }))
        case .pull(let d, let since, let recordsOnly, let held, let wanted, let all):
            b.set(2, .bytes(d.bytes)); b.set(3, .unsigned(since)); b.set(4, .unsigned(recordsOnly ? 1 : 0)); b.set(5, Self.marks(held))
            b.set(6, .array(wanted.map { .bytes($0.bytes) })); b.set(7, .unsigned(all ? 1 : 0))
        case .reconcile(let d, let message):
            b.set(2, .bytes(d.bytes)); b.set(3, .bytes(message))
        case .push(let d):
            b.set(2, .bytes(d.bytes))
        case .part(let bytes):
            b.set(2, .bytes(bytes))
        case .size(let n):
            b.set(2, .unsigned(n))
        case .fetch(let d, let parts):
            // The first part in fields 3 and 4 (a one-contribution fetch is just those), the
            // rest in field 5 as [contribution, objects] pairs. At least one part, by contract.
            precondition(!parts.isEmpty, "a fetch names at least one contribution")
            b.set(2, .bytes(d.bytes)); b.set(3, .bytes(parts[0].contribution.bytes)); b.set(4, Self.refs(parts[0].wanted))
            if parts.count > 1 { b.set(5, .array(parts.dropFirst().map { .array([.bytes($0.contribution.bytes), Self.refs($0.wanted)]) })) }
        case .objects(let sent, let refused):
            b.set(2, .array(sent.map { .array([.unsigned(UInt64($0.kind.rawValue)), .bytes($0.bytes)]) })); b.set(3, Self.refs(refused))
        case .end(let n, let held):
            b.set(2, .unsigned(n)); b.set(3, Self.marks(held))
        case .pushed(let leaves, let records):
            b.set(2, .unsigned(leaves)); b.set(3, .unsigned(records))
        case .batch(let start, let end, let note, let proof, let consistency):
            b.set(2, .unsigned(start)); b.set(3, .unsigned(end)); b.set(4, .string(note)); b.set(5, Self.hashes(proof)); b.set(6, Self.hashes(consistency))
        case .error(let code, let message):
            b.set(2, .string(code)); b.set(3, .string(message))
        }
        return b.encoded
    }

    /// Decodes one message strictly; any failure is `SyncError.malformed` naming the problem.
    public init(decoding bytes: [UInt8]) throws(SyncError) {
        do {
            var f = try BodyFields(bytes, kind: "sync message")
            let type = try f.uint(0, "type")
            request = try f.uint(1, "request id")
            switch type {
            case 1:
                let low = try f.uint(2, "lowest version"), high = try f.uint(3, "highest version")
                guard low <= high else { throw SyncError.malformed("hello's lowest version \(low) is above its highest \(high)") }
                let kinds = try Self.list(&f, 4, "leaf kinds", maximum: Self.maximumKinds,
                                          wrong: "hello field 4 (leaf kinds) is not a list of at most \(Self.maximumKinds) integers") { s throws(CBORError) in
                    try s.unsigned()
                }
                body = .hello(versions: low...high, kinds: kinds)
            case 2: body = .list
            case 3:
                let list = try Self.list(&f, 2, "datanets", maximum: Self.maximumDatanets,
                                         wrong: "datanets field 2 is not a list of at most \(Self.maximumDatanets) [id, name, size, checkpoint] entries") {
                    s throws(CBORError) -> Listed? in
                    guard try s.arrayCount() == 4, let id = DatanetID(try s.bytes()) else { return nil }
                    let name = try s.text()
                    guard name.count <= Self.maximumName else { return nil }
                    let size = try s.unsigned()
                    let note = try s.text()
                    guard note.count <= Self.maximumNote else { return nil }
                    return Listed(id: id, name: String(decoding: name, as: UTF8.self), size: size, checkpoint: String(decoding: note, as: UTF8.self))
                }
                body = .datanets(list)
            case 4:
                body = .pull(try f.id(2, "datanet"), since: try f.uint(3, "since"), recordsOnly: try f.uint(4, "records-only", max: 1) == 1,
                             held: try Self.marks(&f, 5, "pull"), wanted: try Self.wanted(&f, 6), allPending: try f.uint(7, "all-pending", max: 1) == 1)
            case 5: body = .push(try f.id(2, "datanet"))
            case 6:
                let part = try f.field(2, "bytes", wrong: { _ in "part field 2 is not bytes of at most \(Self.maximumPart)" }) { s throws(CBORError) -> [UInt8]? in
                    let b = try s.bytes()
                    return b.count <= Self.maximumPart ? Array(b) : nil
                }
                body = .part(part)
            case 7: body = .end(try f.uint(2, "length"), held: try Self.marks(&f, 3, "end"))
            case 8: body = .pushed(leaves: try f.uint(2, "leaves"), records: try f.uint(3, "records"))
            case 9: body = .error(code: try f.text(2, "code", maxBytes: Self.maximumCode), message: try f.text(3, "message", maxBytes: Self.maximumText))
            case 10: body = .bye
            case 11: body = .ready(held: try Self.marks(&f, 2, "ready"))
            case 12: body = .size(try f.uint(2, "length"))
            case 13: body = .fetch(try f.id(2, "datanet"), parts: try Self.fetchParts(&f))
            case 14:
                var total = 0
                let sent = try Self.list(&f, 2, "objects", maximum: Self.maximumFetch,
                                         wrong: "objects field 2 is not a list of at most \(Self.maximumFetch) [kind, bytes] entries within \(Self.maximumObject) bytes") {
                    s throws(CBORError) -> SentObject? in
                    guard try s.arrayCount() == 2, let kind = ObjectKind(rawValue: UInt8(clamping: try s.unsigned())) else { return nil }
                    let b = try s.bytes()
                    total += b.count
                    return total <= Self.maximumObject ? SentObject(kind, Array(b)) : nil
                }
                body = .objects(sent: sent, refused: try Self.refs(&f, 3, "objects"))
            case 15:
                let start = try f.uint(2, "start"), end = try f.uint(3, "end")
                guard start < end else { throw SyncError.malformed("batch [\(start), \(end)) holds no leaf") }
                let note = try f.text(4, "checkpoint", maxBytes: Self.maximumNote)
                body = .batch(start: start, end: end, checkpoint: note, proof: try Self.hashes(&f, 5, "proof"),
                              consistency: try Self.hashes(&f, 6, "consistency proof"))
            case 16:
                let d: DatanetID = try f.id(2, "datanet")
                let message = try f.field(3, "message", wrong: { _ in "reconcile field 3 is not bytes of at most \(Self.maximumReconcile)" }) { s throws(CBORError) -> [UInt8]? in
                    let b = try s.bytes()
                    return b.count <= Self.maximumReconcile ? Array(b) : nil
                }
                body = .reconcile(d, message)
            default: throw SyncError.malformed("message type \(type) is unknown to this build")
            }
            try f.finish()
        } catch let e as SyncError {
            throw e
        } catch {
            throw SyncError.malformed("\(error)")
        }
    }
}

extension SyncMessage {
    /// Field `key` as a list of at most `maximum` entries, each read by `entry` (nil: not one);
    /// any other value fails with `wrong`. The one reader of every list a message carries.
    static func list<T>(_ f: inout BodyFields, _ key: UInt64, _ name: String, maximum: Int, wrong: String,
                        _ entry: (inout CBOR.Scanner) throws(CBORError) -> T?) throws -> [T] {
        try f.field(key, name, wrong: { _ in wrong }) { s throws(CBORError) -> [T]? in
            let n = try s.arrayCount()
            guard n <= maximum else { return nil }
            var out = [T]()
            out.reserveCapacity(min(n, 1 << 16))
            for _ in 0..<n {
                guard let e = try entry(&s) else { return nil }
                out.append(e)
            }
            return out
        }
    }

    /// Object references as sent: a list of `[kind, id]`.
    static func refs(_ list: [ObjectRef]) -> CBOR {
        .array(list.map { .array([.unsigned(UInt64($0.kind.rawValue)), .bytes($0.id.bytes)]) })
    }

    /// One object reference, `[kind, id]`; nil when it is not one.
    static func ref(_ s: inout CBOR.Scanner) throws(CBORError) -> ObjectRef? {
        guard try s.arrayCount() == 2, let kind = ObjectKind(rawValue: UInt8(clamping: try s.unsigned())), let id = ObjectID(try s.bytes()) else { return nil }
        return ObjectRef(kind, id)
    }

    /// Field `key` of a `what` message as object references: at most `maximumFetch`, none twice.
    static func refs(_ f: inout BodyFields, _ key: UInt64, _ what: String) throws -> [ObjectRef] {
        let list = try Self.list(&f, key, "objects", maximum: Self.maximumFetch,
                                 wrong: "\(what) field \(key) is not a list of at most \(Self.maximumFetch) [kind, id] entries") { s throws(CBORError) in
            try Self.ref(&s)
        }
        guard Set(list).count == list.count else { throw SyncError.malformed("\(what) names an object twice") }
        return list
    }

    /// A `fetch`'s parts: fields 3 and 4, then field 5's further [contribution, objects] pairs
    /// (present only when there are any; every part names at least one object);
    /// `maximumFetch` objects in all, none and no contribution twice.
    static func fetchParts(_ f: inout BodyFields) throws -> [FetchPart] {
        var parts = [FetchPart(try f.id(3, "contribution"), try Self.refs(&f, 4, "fetch"))]
        guard !parts[0].wanted.isEmpty else { throw SyncError.malformed("fetch field 4 names no object") }
        let wrong = "fetch field 5 is not a non-empty list of [contribution, objects] pairs, each naming 1 to \(Self.maximumFetch) objects"
        let more = try f.optional(5, wrong: wrong) { s throws(CBORError) -> [FetchPart]? in
            let n = try s.arrayCount()
            guard n >= 1, n <= Self.maximumFetch else { return nil }
            var out = [FetchPart]()
            for _ in 0..<n {
                guard try s.arrayCount() == 2, let c = RecordID(try s.bytes()) else { return nil }
                let k = try s.arrayCount()
                guard k >= 1, k <= Self.maximumFetch else { return nil }
                var refs = [ObjectRef]()
                for _ in 0..<k {
                    guard let r = try Self.ref(&s) else { return nil }
                    refs.append(r)
                }
                out.append(FetchPart(c, refs))
            }
            return out
        }
        parts += more ?? []
        let refs = parts.flatMap(\.wanted)
        guard refs.count <= Self.maximumFetch else { throw SyncError.malformed("fetch names \(refs.count) objects in all, more than \(Self.maximumFetch)") }
        guard Set(refs).count == refs.count else { throw SyncError.malformed("fetch names an object twice") }
        guard Set(parts.map(\.contribution)).count == parts.count else { throw SyncError.malformed("fetch names a contribution twice") }
        return parts
    }

    /// Proof hashes as sent: a list of 32-byte strings.
    static func hashes(_ list: [Digest]) -> CBOR { .array(list.map { .bytes($0.bytes) }) }

    /// Field `key` of a `batch` as proof hashes: at most `maximumProof` of 32 bytes.
    static func hashes(_ f: inout BodyFields, _ key: UInt64, _ what: String) throws -> [Digest] {
        try Self.list(&f, key, what, maximum: Self.maximumProof,
                      wrong: "batch field \(key) (\(what)) is not a list of at most \(Self.maximumProof) hashes of 32 bytes") { s throws(CBORError) in
            Digest(try s.bytes())
        }
    }

    /// Field `key` of a `pull` as the record ids it asks for: at most `maximumWanted`, none twice.
    static func wanted(_ f: inout BodyFields, _ key: UInt64) throws -> [RecordID] {
        let ids = try Self.list(&f, key, "wanted records", maximum: Self.maximumWanted,
                                wrong: "pull field \(key) is not a list of at most \(Self.maximumWanted) record ids") { s throws(CBORError) in
            RecordID(try s.bytes())
        }
        guard Set(ids).count == ids.count else { throw SyncError.malformed("pull asks for a record twice") }
        return ids
    }

    /// Marks as sent: a list of `[record id, signers]`.
    static func marks(_ held: [PendingMark]) -> CBOR {
        .array(held.map { .array([.bytes($0.id.bytes), .unsigned($0.signers)]) })
    }

    /// Field `key` of a `what` message as marks: at most `maximumMarks`, ids of 32 bytes, none twice.
    static func marks(_ f: inout BodyFields, _ key: UInt64, _ what: String) throws -> [PendingMark] {
        let held = try Self.list(&f, key, "held records", maximum: Self.maximumMarks,
                                 wrong: "\(what) field \(key) is not a list of at most \(Self.maximumMarks) [record id, signers] entries") { s throws(CBORError) -> PendingMark? in
            guard try s.arrayCount() == 2, let id = RecordID(try s.bytes()) else { return nil }
            return PendingMark(id: id, signers: try s.unsigned())
        }
        guard Set(held).count == held.count else { throw SyncError.malformed("\(what) lists a held record twice") }
        return held
    }
}

/// Why a sync session ended or a request failed.
public enum SyncError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The peer sent bytes that are not a message of this protocol.
    case malformed(String)
    /// The peer sent a well-formed message out of turn.
    case unexpected(String)
    /// The peer answered with an error.
    case refused(code: String, message: String)
    /// No protocol version in common.
    case version(ours: ClosedRange<UInt64>, theirs: ClosedRange<UInt64>)
    /// The peer went past one of this node's limits (its request rate).
    case overLimit(String)
    /// This side ended the session after telling the peer why.
    case ended(String)

    public var description: String {
        switch self {
        case .malformed(let why): "the peer sent a malformed message: \(why)"
        case .unexpected(let why): "the peer broke the protocol: \(why)"
        case .refused(let code, let message): "the peer refused (\(code)): \(message)"
        case .overLimit(let why): "the peer went past a limit: \(why)"
        case .ended(let why): "the session ended: \(why)"
        case .version(let ours, let theirs):
            "no protocol version in common (this build speaks \(ours.lowerBound)–\(ours.upperBound), the peer \(theirs.lowerBound)–\(theirs.upperBound))"
        }
    }
}
