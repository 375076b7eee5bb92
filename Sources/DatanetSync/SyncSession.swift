import DatanetCrypto
import Dispatch
import DatanetLedger
import DatanetObjects
import DatanetRecords

/// What a node did for a peer, one line per event in `serve --json`.
public struct SyncEvent: Sendable {
    public var peer: PublicKey
    /// "hello", "list", "reconcile", "pull", "push", "fetch", "error", "bye".
    public var kind: String
    public var datanet: DatanetID?
    /// Bytes of bundle sent (pull) or received (push).
    public var bytes: UInt64 = 0
    public var leaves: Int = 0, records: Int = 0
    public var detail: String = ""
}

/// The serving side of one connection (`datanet serve`): answers a peer's requests from this
/// store. A Datanet the peer may not read is answered exactly as one this node does not hold,
/// so a private Datanet's name, id and size never reach a non-reader. A push is imported only
/// into a Datanet this node holds, through bundle import's checks.
public struct SyncServer: Sendable {
    public let ledger: Ledger
    /// Requests a peer may make per second on average, and in one burst; past them the session
    /// is answered `error` `rate` and ends.
    public let requestsPerSecond: Double, burst: Double
    /// The largest bundle a peer may push (a push stating more is refused before any part).
    public let maximumPush: UInt64
    /// A batch of a pull whose content passes this many bytes goes records-only to a peer that
    /// speaks version 4, which fetches that content in windows after the run.
    public let inlineContent: UInt64

    public init(ledger: Ledger, requestsPerSecond: Double = 1_000, burst: Double = 2_000, maximumPush: UInt64 = BundleTransfer.defaultMaximum,
                inlineContent: UInt64 = 16 << 20) {
        (self.ledger, self.requestsPerSecond, self.burst, self.maximumPush) = (ledger, requestsPerSecond, burst, maximumPush)
        self.inlineContent = inlineContent
    }

    /// The Datanets of this store `peer` may read.
    func visible(to peer: PublicKey) throws -> [DatanetState] {
        try ledger.reader.datanets().filter { $0.policy.mayRead(peer) }
    }

    /// Serves one connected peer until it says bye; a protocol error is answered with an
    /// `error` message, reported, and ends the session (thrown).
    public func serve(_ c: PeerConnection, report: (SyncEvent) -> Void) throws {
        let peer = c.peer
        do {
            let first = try SyncMessage(decoding: try c.receive())
            guard case .hello(let theirs, let kinds) = first.body else { throw SyncError.unexpected("the first message is \(first.typeName), not hello") }
            try c.send(SyncMessage(first.request, .hello(versions: SyncMessage.versions, kinds: LeafKind.allCases.map(\.rawValue))).encoded)
            guard theirs.overlaps(SyncMessage.versions) else { throw SyncError.version(ours: SyncMessage.versions, theirs: theirs) }
            let version = min(theirs.upperBound, SyncMessage.versions.upperBound)
            let replays = Set(kinds)
            report(SyncEvent(peer: peer, kind: "hello"))
            var budget = RequestBudget(perSecond: requestsPerSecond, burst: burst)
            var reach = ContentReach()
            var scoped = [DatanetID: NegentropyItems]() // a non-reader's own records, once a session
            while true {
                let m = try SyncMessage(decoding: try c.receive())
                guard budget.take() else {
                    throw SyncError.overLimit("more than \(Int(burst)) requests at once or \(Int(requestsPerSecond)) a second")
                }
                switch m.body {
                case .list:
                    let list = try visible(to: peer).map { st in
                        let note = try ledger.reader.latestCheckpoint(st.id) ?? ""
                        return SyncMessage.Listed(id: st.id, name: st.policy.name, size: st.size, checkpoint: note.utf8.count <= SyncMessage.maximumNote ? note : "")
                    }
                    try c.send(SyncMessage(m.request, .datanets(list)).encoded)
                    report(SyncEvent(peer: peer, kind: "list"))
                case .reconcile(let d, let message):
                    guard let scope = try Reconciliation.scope(ledger, d, for: peer) else {
                        try refuse(c, m.request, "unknown-datanet", "no Datanet \(d.hex) is served here to \(peer)")
                        continue
                    }
                    let reply: [UInt8]
                    do { reply = try Reconciliation.answer(ledger, d, message, scope: scope, scoped: &scoped) } catch let e as NegentropyError {
                        throw SyncError.malformed("reconcile: \(e)")
                    }
                    try c.send(SyncMessage(m.request, .reconcile(d, reply)).encoded)
                    report(SyncEvent(peer: peer, kind: "reconcile", datanet: d, bytes: UInt64(reply.count)))
                case .pull(let d, let since, let recordsOnly, let held, let wanted, let all):
                    guard let st = try visible(to: peer).first(where: { $0.id == d }) else {
                        try refuse(c, m.request, "unknown-datanet", "no Datanet \(d.hex) is served here to \(peer)")
                        continue
                    }
                    let newest = try ledger.reader.checkpoints(d).last?.size ?? 0
                    // A peer never receives a leaf it cannot replay: it is told which it lacks.
                    if let (kind, at) = try LeafKinds.first(notIn: replays, ledger, d, from: min(since, newest), to: newest) {
                        try refuse(c, m.request, "kinds", "leaf \(at) of \(d.hex) is a \(kind) leaf, which this peer does not replay (it replays kinds \(replays.sorted()))")
                        continue
                    }
                    let bytes = try BundleTransfer.sendRun(ledger, d, since: min(since, newest), recordsOnly: recordsOnly,
                                                        selection: PendingSelection(wanted: Set(wanted), held: Set(held), all: all),
                                                        telling: try ledger.reader.gatheringMarks(d), inlineContent: version >= 4 ? inlineContent : nil,
                                                        request: m.request, over: c)
                    report(SyncEvent(peer: peer, kind: "pull", datanet: st.id, bytes: bytes))
                case .push(let d):
                    // A contributor who may not read `d` may push its own pending records only.
                    guard let scope = try Reconciliation.scope(ledger, d, for: peer) else {
                        try refuse(c, m.request, "unknown-datanet", "no Datanet \(d.hex) is served here to \(peer)")
                        continue
                    }
                    let onlyBy: PublicKey? = scope == .all ? nil : peer
                    try c.send(SyncMessage(m.request, .ready(held: onlyBy == nil ? try ledger.reader.gatheringMarks(d) : [])).encoded)
                    let summary: BundleSummary, bytes: UInt64
                    var ended = false
                    do {
                        // An import's refusal is said before the reader stops reading.
                        (summary, bytes, _) = try BundleTransfer.receiveRun(into: ledger, d, request: m.request, over: c, maximum: maximumPush, onlyBy: onlyBy, ended: &ended,
                                                                            refuse: { e in try? refuse(c, m.request, "refused", "\(e)") })
                    } catch let e as SyncError {
                        throw e
                    } catch let e as SocketError {
                        throw e
                    } catch {
                        // A bundle of the run was refused (batches before it stay committed): the
                        // session goes on if the run had ended, else the sender is mid-run and it ends.
                        report(SyncEvent(peer: peer, kind: "error", datanet: d, detail: "\(error)"))
                        if ended { continue }
                        throw SyncError.ended("a pushed run was refused mid-way: \(error)")
                    }
                    if summary.records > 0 { scoped[d] = nil } // what the push brought is in the next reconciliation
                    try c.send(SyncMessage(m.request, .pushed(leaves: UInt64(summary.newLeaves), records: UInt64(summary.records))).encoded)
                    report(SyncEvent(peer: peer, kind: "push", datanet: d, bytes: bytes, leaves: summary.newLeaves, records: summary.records))
                case .fetch(let d, let parts):
                    guard try visible(to: peer).contains(where: { $0.id == d }) else {
                        try refuse(c, m.request, "unknown-datanet", "no Datanet \(d.hex) is served here to \(peer)")
                        continue
                    }
                    // Each part's objects only from its own contribution's content, decided at
                    // once (no content set is kept past its part). A contribution not served is
                    // refused whole when it is the only one asked about; among several, its
                    // objects are refused and the others answered.
                    var scoped = [(SyncMessage.ObjectRef, allowed: Bool)]()
                    var unknown: RecordID?
                    for part in parts {
                        let objects = try reach.objects(ledger, d, part.contribution)
                        if objects == nil { unknown = unknown ?? part.contribution }
                        scoped += part.wanted.map { ($0, objects?.contains($0.id) ?? false) }
                    }
                    if parts.count == 1, let unknown {
                        try refuse(c, m.request, "unknown-contribution", "no contribution \(unknown.hex) of \(d.hex) is served here")
                        continue
                    }
                    let answer = try ContentReach.sealedAnswer(ledger, scoped, request: m.request, on: c)
                    try c.sendSealed(answer.sealed)
                    report(SyncEvent(peer: peer, kind: "fetch", datanet: d, bytes: UInt64(answer.bytes)))
                case .bye:
                    report(SyncEvent(peer: peer, kind: "bye"))
                    return
                default:
                    throw SyncError.unexpected("a \(m.typeName) message is not a request")
                }
            }
        } catch let e as SyncError {
            switch e {
            case .version, .ended: break
            case .overLimit: try? refuse(c, 0, "rate", e.description)
            default: try? refuse(c, 0, "protocol", e.description)
            }
            Self.linger(c)
            report(SyncEvent(peer: peer, kind: "error", detail: e.description))
            throw e
        } catch let e as SocketError {
            report(SyncEvent(peer: peer, kind: "error", detail: e.description))
            throw e
        } catch {
            // This node's own failure (a full disk, a damaged store): said, and the session ends.
            try? refuse(c, 0, "internal", "\(error)")
            report(SyncEvent(peer: peer, kind: "error", detail: "\(error)"))
            throw error
        }
    }

    /// Ends a session gently: the answer just sent reaches the peer even while it is still
    /// sending (closing with its bytes unread would reset the connection, and could drop the
    /// answer), reading and dropping at most 4 MiB for at most about a second.
    static func linger(_ c: PeerConnection) {
        c.socket.shutdownWrite()
        c.socket.setTimeout(1)
        var drained = 0
        while drained < 4 << 20, let b = try? c.socket.receive(), !b.isEmpty { drained += b.count }
    }

    private func refuse(_ c: PeerConnection, _ request: UInt64, _ code: String, _ message: String) throws {
        try c.send(SyncMessage(request, .error(code: code, message: String(message.utf8.prefix(SyncMessage.maximumText)) ?? code)).encoded)
    }
}

/// Leaf kinds a peer replays (`hello`), checked before leaves are sent to it.
enum LeafKinds {
    /// The first leaf of `d` in `from..<to` whose kind is not in `replays`, or nil (the leaves
    /// of the kinds the peer replays are passed over by their kind alone).
    static func first(notIn replays: Set<UInt64>, _ ledger: Ledger, _ d: DatanetID, from: UInt64, to: UInt64) throws -> (LeafKind, UInt64)? {
        let unknown = Set(LeafKind.allCases.filter { !replays.contains($0.rawValue) })
        guard !unknown.isEmpty, from < to else { return nil }
        var found: (LeafKind, UInt64)?
        try ledger.reader.forEachLeafSummary(d, from: from, to: to, kinds: unknown) { i, leaf in
            found = (leaf.kind, i)
            return false
        }
        return found
    }
}

/// A token bucket over a session's requests: `burst` at once, refilled at `perSecond`.
struct RequestBudget {
    let perSecond: Double, burst: Double
    private var tokens: Double
    private var last = DispatchTime.now().uptimeNanoseconds

    init(perSecond: Double, burst: Double) { (self.perSecond, self.burst, tokens) = (perSecond, burst, burst) }

    /// Spends one request; false when none is left.
    mutating func take() -> Bool {
        let now = DispatchTime.now().uptimeNanoseconds
        tokens = min(burst, tokens + Double(now - last) / 1e9 * perSecond)
        last = now
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}

/// The connecting side (`datanet sync`): requests in turn, each answered before the next.
public final class SyncClient {
    public let connection: PeerConnection
    private var next: UInt64 = 1
    /// Round trips made (a request and its answer), for the summary.
    public private(set) var roundTrips = 0
    /// The leaf kinds the peer said it replays (every kind until `hello` says otherwise).
    private var peerReplays = Set(LeafKind.allCases.map(\.rawValue))
    /// The highest protocol version both sides speak (`hello`).
    public private(set) var version = SyncMessage.versions.lowerBound
    /// The versions this client offers in `hello` (tests offer fewer).
    var offered = SyncMessage.versions

    public init(_ connection: PeerConnection) { self.connection = connection }

    func request(_ body: SyncMessage.Body) throws -> UInt64 {
        let id = next
        next += 1
        try connection.send(SyncMessage(id, body).encoded)
        return id
    }

    func answer(_ id: UInt64) throws -> SyncMessage {
        let m = try SyncMessage(decoding: try connection.receive())
        roundTrips += 1
        if case .error(let code, let message) = m.body { throw SyncError.refused(code: code, message: message) }
        guard m.request == id else { throw SyncError.unexpected("an answer to request \(m.request) arrived for request \(id)") }
        return m
    }

    /// Agrees on a protocol version and learns the leaf kinds the peer replays.
    public func hello() throws {
        let id = try request(.hello(versions: offered, kinds: LeafKind.allCases.map(\.rawValue)))
        guard case .hello(let theirs, let kinds) = try answer(id).body else { throw SyncError.unexpected("hello was not answered with hello") }
        guard theirs.overlaps(offered) else { throw SyncError.version(ours: offered, theirs: theirs) }
        version = min(theirs.upperBound, offered.upperBound)
        peerReplays = Set(kinds)
    }

    /// The Datanets the peer serves to this identity.
    public func list() throws -> [SyncMessage.Listed] {
        let id = try request(.list)
        guard case .datanets(let list) = try answer(id).body else { throw SyncError.unexpected("list was not answered with datanets") }
        return list
    }

    /// Fetches `d` from `since` with the pending records named in `wanted` (reconciliation's
    /// `need`; or all of them, with `allPending`, for a store that holds none of `d`'s
    /// pending; more than one pull carries go in further pulls, each from where the log then
    /// stands) and those gathering signatures this store does not hold alike, and imports it;
    /// returns the import's summary, the bytes received and the marks of the records gathering
    /// signatures the peer holds pending (whether a push back has signatures to add).
    /// `progress` is told the bytes received and the bundle's length as parts arrive.
    public func pull(_ d: DatanetID, since: UInt64, recordsOnly: Bool, wanted: [RecordID] = [], allPending: Bool = false, into ledger: Ledger,
                     commitEvery: Duration = .seconds(2),
                     progress: (@Sendable (_ done: UInt64, _ total: UInt64) -> Void)? = nil) throws -> (BundleSummary, UInt64, peerHolds: [PendingMark]) {
        let mine = (try? ledger.reader.gatheringMarks(d)) ?? []
        var total: (BundleSummary, UInt64, [PendingMark])?
        var from = since
        for start in stride(from: 0, through: wanted.count, by: SyncMessage.maximumWanted) {
            if start == wanted.count, start > 0 { break }
            let slice = Array(wanted[start ..< min(wanted.count, start + SyncMessage.maximumWanted)])
            let id = try request(.pull(d, since: from, recordsOnly: recordsOnly, held: mine, wanted: slice, allPending: allPending && start == 0))
            roundTrips += 1
            var ended = false
            let got = try BundleTransfer.receiveRun(into: ledger, d, request: id, over: connection, commitEvery: commitEvery, ended: &ended, progress: progress)
            if total == nil { total = got } else { total!.0.add(got.0); total!.1 += got.1; total!.2 = got.2 }
            from = try ledger.reader.state(of: d).size
        }
        return total!
    }

    /// Sends `d` from `since`: leaves the peer lacks, the pending records named in `have`
    /// (reconciliation's) and those gathering signatures the peer does not hold alike (it
    /// marks its own in `ready`); with `signer`, only the pending records that key signed (a
    /// Datanet this identity may contribute to but not read). Returns what the peer took and
    /// the bytes sent.
    public func push(_ d: DatanetID, since: UInt64, recordsOnly: Bool, have: [RecordID] = [], signer: PublicKey? = nil, from ledger: Ledger,
                     progress: ((_ done: UInt64, _ total: UInt64) -> Void)? = nil) throws -> (leaves: UInt64, records: UInt64, bytes: UInt64) {
        let size = try ledger.reader.state(of: d).size
        if signer == nil, let (kind, at) = try LeafKinds.first(notIn: peerReplays, ledger, d, from: min(since, size), to: size) {
            throw SyncError.refused(code: "kinds", message: "leaf \(at) of \(d.hex) is a \(kind) leaf, which the peer does not replay (it replays kinds \(peerReplays.sorted()))")
        }
        let id = try request(.push(d))
        guard case .ready(let held) = try answer(id).body else { throw SyncError.unexpected("push was not answered with ready") }
        let bytes = try BundleTransfer.sendRun(ledger, d, since: since, recordsOnly: recordsOnly, selection: PendingSelection(wanted: Set(have), held: Set(held)),
                                            signer: signer, request: id, over: connection, progress: progress)
        guard case .pushed(let leaves, let records) = try answer(id).body else { throw SyncError.unexpected("a pushed bundle was not answered with pushed") }
        return (leaves, records, bytes)
    }

    public func bye() throws { _ = try request(.bye) }

    /// Checks a listed Datanet's newest checkpoint against this store's log before anything
    /// moves (`Ledger.observe`): a signed checkpoint at a size this log has with another root
    /// is a fork, kept as evidence when this store holds its own signed checkpoint of that
    /// size. Nil when this store does not hold the Datanet, the peer listed no checkpoint, or
    /// its signature cannot be checked here (signed by a key handed over past this log).
    public static func observe(_ listed: SyncMessage.Listed, in ledger: Ledger) throws -> CheckpointObservation? {
        guard !listed.checkpoint.isEmpty, (try? ledger.reader.state(of: listed.id)) != nil else { return nil }
        do { return try ledger.observe(note: listed.checkpoint, datanet: listed.id) } catch is LedgerRefusal { return nil }
    }
}
