import DatanetCBOR
import DatanetCrypto
import DatanetLedger
import DatanetObjects
import DatanetRecords
import DatanetStore

/// The server's side of on-demand content (schema/protocol.md `fetch`, `objects`; the
/// receiver's is `SyncClient.fetch`): it answers only with objects of the content each is
/// asked under, in a Datanet the peer may read.
struct ContentReach {
    /// The objects of the contributions asked about in this session, with the Datanet each was
    /// asked under (a few kept).
    private var known = [RecordID: (DatanetID, Set<ObjectID>)]()

    /// The objects of `contribution`'s content this node serves in `d`, or nil.
    mutating func objects(_ ledger: Ledger, _ d: DatanetID, _ contribution: RecordID) throws -> Set<ObjectID>? {
        if let (asked, hit) = known[contribution], asked == d { return hit }
        guard let objects = try ledger.reader.servableContent(d, contribution: contribution) else { return nil }
        if known.count >= 16 { known.removeAll() }
        known[contribution] = (d, objects)
        return objects
    }

    /// What answers a fetch of `wanted`, each allowed or not (in the content it is asked under),
    /// read in `txn`: the objects held, within the answer's byte bound (at least one object),
    /// their bytes borrowed from the map (valid while `txn` lives); refused, what is not held or
    /// not allowed. Past the bound: neither sent nor refused, so asked for again.
    static func select(_ ledger: Ledger, _ wanted: [(SyncMessage.ObjectRef, allowed: Bool)], in txn: Transaction,
                       limit: Int = SyncMessage.maximumObjectsBytes) throws -> (sent: [(ObjectKind, UnsafeRawBufferPointer)], refused: [SyncMessage.ObjectRef]) {
        var sent = [(ObjectKind, UnsafeRawBufferPointer)](), refused = [SyncMessage.ObjectRef](), bytes = 0
        for (w, allowed) in wanted {
            guard allowed, let b = try ledger.store.borrowedObject(w.kind, w.id, in: txn), b.count <= SyncMessage.maximumObject else {
                refused.append(w)
                continue
            }
            if !sent.isEmpty && bytes + b.count > limit { continue }
            sent.append((w.kind, b))
            bytes += b.count
        }
        return (sent, refused)
    }

    /// The answer to a fetch of `wanted`, sealed on `connection` as the `objects` message of
    /// request `request`: each object is copied from the map straight into the sealed message,
    /// and the read ends before anything is sent. Returns the bytes to send (with
    /// `sendSealed`, before any other message), and the bytes of objects they carry.
    static func sealedAnswer(_ ledger: Ledger, _ wanted: [(SyncMessage.ObjectRef, allowed: Bool)], request: UInt64,
                             on connection: PeerConnection) throws -> (sealed: [UInt8], bytes: Int) {
        try ledger.store.env.read { txn in
            let (sent, refused) = try select(ledger, wanted, in: txn)
            let message = SyncMessage.ObjectsWriter(request: request, sent: sent, refused: refused)
            return (try connection.seal(count: message.count, message.write), sent.reduce(0) { $0 + $1.1.count })
        }
    }
}

extension SyncMessage {
    /// An `objects` message written in place (`SecureChannel.seal(count:_:)`) from bytes held
    /// elsewhere (the store's map): the bytes `encoded` gives for `.objects(sent, refused)`,
    /// each object copied once.
    struct ObjectsWriter {
        /// The map's head and fields 0 and 1, and field 2's list head; field 3.
        private let head: [UInt8], tail: [UInt8]
        private let sent: [(prefix: [UInt8], bytes: UnsafeRawBufferPointer)]
        /// The message's size.
        let count: Int

        init(request: UInt64, sent: [(ObjectKind, UnsafeRawBufferPointer)], refused: [ObjectRef]) {
            // Keys in order: 0 type, 1 request, 2 the [kind, bytes] list, 3 the refused refs.
            var head = [UInt8]()
            CBOR.appendHead(5, 4, to: &head)
            CBOR.unsigned(0).encode(into: &head)
            CBOR.unsigned(SyncMessage(request, .objects(sent: [], refused: [])).type).encode(into: &head)
            CBOR.unsigned(1).encode(into: &head)
            CBOR.unsigned(request).encode(into: &head)
            CBOR.unsigned(2).encode(into: &head)
            CBOR.appendHead(4, UInt64(sent.count), to: &head)
            var tail = [UInt8]()
            CBOR.unsigned(3).encode(into: &tail)
            SyncMessage.refs(refused).encode(into: &tail)
            self.sent = sent.map { kind, bytes in
                var prefix = [UInt8]()
                CBOR.appendHead(4, 2, to: &prefix)
                CBOR.unsigned(UInt64(kind.rawValue)).encode(into: &prefix)
                CBOR.appendHead(2, UInt64(bytes.count), to: &prefix)
                return (prefix, bytes)
            }
            (self.head, self.tail) = (head, tail)
            count = head.count + self.sent.reduce(0) { $0 + $1.prefix.count + $1.bytes.count } + tail.count
        }

        func write(_ w: inout SecureChannel.MessageWriter) {
            w.append(head)
            for (prefix, bytes) in sent {
                w.append(prefix)
                w.append(bytes)
            }
            w.append(tail)
        }
    }
}
